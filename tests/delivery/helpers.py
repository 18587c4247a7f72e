"""Helpers of the delivery fault tests: inner test files, stream checks, replay."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def module_with(n: int, sleep: float = 0.0, extra: str = "") -> str:
    """An inner test module with n passing tests that sleep a bit each."""
    body = ["import time, os, pathlib", extra]
    for i in range(n):
        body.append(f"def test_{i:03d}():\n    time.sleep({sleep})\n")
    return "\n".join(body)


def nodeids_of(module: str, n: int) -> list[str]:
    return [f"{module}.py::test_{i:03d}" for i in range(n)]


def assert_whole_stream(events: list[dict[str, Any]], nodeids: list[str]) -> None:
    """One run's events, deduplicated: seq 1..N in order, one start and stop per test."""
    assert events, "nothing arrived"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["run_id"] for e in events}) == 1
    types = [e["type"] for e in events]
    assert types[0] == "startTestRun"
    assert types[-1] == "stopTestRun"
    starts = [e["test"] for e in events if e["type"] == "startTestItem"]
    stops = [e["test"] for e in events if e["type"] == "stopTestItem"]
    assert starts == nodeids
    assert stops == nodeids
    assert len(events) == 2 + 2 * len(nodeids)


def pytest_rt_command() -> list[str]:
    """The `pytest-rt` console script of this environment."""
    script = Path(sys.executable).with_name("pytest-rt")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pytest_rt.cli"]


def replay(*args: str, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pytest-rt replay ARGS` as a user would; bounded in time."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_RT_TOKEN"}
    environ.update(env or {})
    return subprocess.run([*pytest_rt_command(), "replay", *args], capture_output=True,
                          text=True, timeout=60, env=environ, cwd=cwd)


def journals(spool: Path) -> list[Path]:
    return sorted(spool.rglob("*.jsonl")) if spool.exists() else []


def journal_events(path: Path) -> list[str]:
    """The event lines of a journal (its first line is a header)."""
    return path.read_text().splitlines()[1:]


def in_background(fn: Callable[[], None]) -> threading.Thread:
    """Run fn in a thread; the test joins it (and sees its failure) at the end."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
