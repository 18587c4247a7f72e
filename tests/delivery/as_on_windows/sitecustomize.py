"""Python as pytest-rt finds it on Windows: no ``fcntl``, no ``os.pread``.

Python imports ``sitecustomize`` at start-up from anywhere on its path, before
pytest and any plugin entry point; so with this directory on PYTHONPATH and
``PYTEST_RT_TEST_NO_FCNTL=1`` set, every Python the delivery tests start (inner
pytest runs, ``pytest-rt replay``, xdist workers) lacks both, as on Windows.
tests/delivery/conftest.py sets both for the delivery tests' own process too. Then the
sitecustomize this one hides, if any (tests/port_guard's), runs as usual.
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


if __name__ == "sitecustomize":  # not when tests/delivery/conftest.py runs it as a file
    # tests/port_guard is on PYTHONPATH for every Python the tests start (tests/conftest.py).
    try:
        import rt_next_sitecustomize
    except ImportError:  # started by hand, without it: nothing of the tests' to run next
        pass
    else:
        rt_next_sitecustomize.run_after(__file__)
