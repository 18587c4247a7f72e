"""Test descriptions under pytest-xdist: the workers import the tests, the controller sends.

The xdist controller never imports a test module, so it has no docstrings for
startTestRun; its workers have them. xdist's channel carries only xdist's own
events (its "collectionfinish" only the node ids), so the docstrings go through
a file instead, by xdist's public hooks:

- the controller's ``pytest_configure_node`` puts a path into ``node.workerinput``
  (one file per worker, in a private directory made for the run);
- the worker writes ``{nodeid: description}`` there as its collection finishes,
  before xdist sends "collectionfinish" (so before the controller can ask);
- the controller's ``pytest_xdist_node_collection_finished`` reads and removes it.

A file that is missing or unreadable (a remote ``--tx`` worker, a full disk)
costs the descriptions, never the run: they are then sent as null.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_rt import events

KEY = "pytest_rt_descriptions"  # in node.workerinput: the file this worker writes


class WorkerDescriptions:
    """The worker side, registered by plugin.py when the controller asked for the file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    # tryfirst: xdist's own pytest_collection_finish sends "collectionfinish" to the
    # controller, which then reads the file; it has to be there by then.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        try:
            found = {item.nodeid: events.description_of(item) for item in session.items}
        except Exception:  # a test object that fails on inspection: never the user's run
            return
        write(self.path, found)


def write(path: Path, descriptions: dict[str, str | None]) -> None:
    """Write atomically (a temporary file, then rename): the reader sees all or nothing."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(descriptions), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError):  # no directory (a remote worker), disk full, bad text
        with contextlib.suppress(OSError):
            tmp.unlink()


def read(path: Path) -> dict[str, str]:
    """The descriptions in a worker's file; empty when it is missing or not what we wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


class DescriptionFiles:
    """The controller side: one private directory per run, one file per worker."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.directory: Path | None = None
        self.count = 0

    def configure(self, node: Any) -> None:
        """pytest_configure_node: tell this worker where to write."""
        workerinput = getattr(node, "workerinput", None)
        if not isinstance(workerinput, dict):
            return
        if self.directory is None:
            try:  # made on the first worker only: a run without workers makes nothing
                # mkdtemp: mode 0700, a name nobody else holds; the run id names the owner.
                self.directory = Path(tempfile.mkdtemp(prefix=f"pytest-rt-{self.run_id}-"))
            except OSError:
                return  # no file: this run's descriptions are null
        self.count += 1  # a worker that replaces a crashed one gets a file of its own
        workerinput[KEY] = str(self.directory / f"{self.count}.json")

    def take(self, node: Any, *, wanted: bool) -> dict[str, str]:
        """The descriptions a worker wrote (when `wanted`); its file is removed either way."""
        path = (getattr(node, "workerinput", None) or {}).get(KEY)
        if not isinstance(path, str):
            return {}
        found = read(Path(path)) if wanted else {}
        with contextlib.suppress(OSError):
            os.unlink(path)
        return found

    def close(self) -> None:
        """The end of the run: leave nothing behind, whatever a worker left."""
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
