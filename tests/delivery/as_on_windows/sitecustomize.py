"""Python as pytest-rt finds it on Windows: no ``fcntl``, no ``os.pread``.

Python imports ``sitecustomize`` at start-up from anywhere on its path, before
pytest and any plugin entry point; so with this directory on PYTHONPATH and
``PYTEST_RT_TEST_NO_FCNTL=1`` set, every Python the delivery tests start (inner
pytest runs, ``pytest-rt replay``, xdist workers) lacks both, as on Windows.
tests/delivery/conftest.py sets both for the delivery tests' own process too. Then the
sitecustomize this one hides, if any (tests/port_guard's), runs as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def hide() -> None:
    """Make `import fcntl` fail and `os.pread` absent, in this process."""
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # ImportError on import
    if hasattr(os, "pread"):
        del os.pread


if os.environ.get("PYTEST_RT_TEST_NO_FCNTL") == "1":
    hide()


def _run_the_next_sitecustomize() -> None:
    """Import the sitecustomize found after this one's folder on sys.path, as Python would."""
    here = os.path.dirname(os.path.abspath(__file__))
    folders = [os.path.abspath(p or os.curdir) for p in sys.path]
    if here not in folders:
        return
    rest = sys.path[folders.index(here) + 1:]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


if __name__ == "sitecustomize":  # not when tests/delivery/conftest.py runs it as a file
    _run_the_next_sitecustomize()
