"""Run the sitecustomize that a sitecustomize of the tests' hides (one helper for both)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def run_after(path: str) -> None:
    """Import the sitecustomize found after `path`'s folder on sys.path, as Python would."""
    here = os.path.dirname(os.path.abspath(path))
    folders = [os.path.abspath(p or os.curdir) for p in sys.path]
    if here not in folders:
        return
    rest = sys.path[folders.index(here) + 1:]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
