"""Python imports ``sitecustomize`` at start-up from anywhere on its path, before pytest, its
plugins or xdist's rewriting of sys.path: with this folder on PYTHONPATH (tests/conftest.py
puts it there for everything the tests start), every Python the tests start has port 8765
guarded (rt_port_guard.py). Then the sitecustomize this one hides, if any, runs as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

import rt_port_guard  # noqa: F401  (importing it guards the sockets)


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


_run_the_next_sitecustomize()
