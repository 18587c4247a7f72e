"""Python as pytest-rt finds it on Windows: no ``fcntl``, no ``os.pread``.

Python imports ``sitecustomize`` at start-up from anywhere on its path, before
pytest and any plugin entry point; so with this directory on PYTHONPATH and
``PYTEST_RT_TEST_NO_FCNTL=1`` set, every Python the delivery tests start (inner
pytest runs, ``pytest-rt replay``, xdist workers) lacks both, as on Windows.
tests/delivery/conftest.py sets both for the delivery tests' own process too.
"""

from __future__ import annotations

import os
import sys


def hide() -> None:
    """Make `import fcntl` fail and `os.pread` absent, in this process."""
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # ImportError on import
    if hasattr(os, "pread"):
        del os.pread


if os.environ.get("PYTEST_RT_TEST_NO_FCNTL") == "1":
    hide()
