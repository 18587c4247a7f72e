"""Helpers of the delivery fault tests: receivers that die, inner test files, replay.

Everything talks to real sockets on 127.0.0.1 and free ports. What a test
asserts is what the receiver recorded, after dropping duplicate event_ids as
docs/protocol.md tells receivers to.
"""

from __future__ import annotations

import os
import runpy
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The helpers' asserts explain themselves too (the package is `delivery`: tests/ is no package).
pytest.register_assert_rewrite("delivery.helpers")

# PYTEST_RT_TEST_NO_FCNTL=1: the delivery tests as on Windows (no fcntl, no os.pread), in
# this process and in every Python they start. (Conftests load before test modules import
# pytest_rt.spool; the plugin's entry point imports no more than plugin.py and settings.py.)
AS_ON_WINDOWS = os.environ.get("PYTEST_RT_TEST_NO_FCNTL") == "1"
SITE = Path(__file__).with_name("as_on_windows")
if AS_ON_WINDOWS:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE),
                                                             os.environ.get("PYTHONPATH")]))
    runpy.run_path(str(SITE / "sitecustomize.py"))
    if getattr(sys.modules.get("pytest_rt.spool"), "_flock", None) is not None:
        raise pytest.UsageError("PYTEST_RT_TEST_NO_FCNTL=1: pytest_rt.spool was imported "
                                "with fcntl; put tests/delivery/as_on_windows on PYTHONPATH")

NEEDS_FLOCK = ("needs flock: without fcntl the lock is a lock file, which Windows keeps while "
               "it is open but Linux lets replay remove")
SKIPPED_AS_ON_WINDOWS = {
    "test_a_journal_in_use_is_left_alone": NEEDS_FLOCK,
    "test_replay_leaves_the_journal_of_a_running_pytest_alone": NEEDS_FLOCK,
    "test_a_sender_that_fails_inside_stops_delivery_not_the_tests":
        "breaks reads through journal.fd, which reads don't use without os.pread "
        "(test_portability breaks the reader's own fd instead)",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not AS_ON_WINDOWS:
        return
    here = Path(__file__).parent
    for item in items:
        reason = SKIPPED_AS_ON_WINDOWS.get(getattr(item, "originalname", item.name))
        if reason is not None and here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=f"as on Windows: {reason}"))


def _killable(rec: Any) -> Any:
    """Give the shared receiver `kill()` and a `token` check, on the instance.

    A killed receiver answers nothing, not even on connections it had kept
    alive (the stdlib server's stop() leaves those to their handler threads),
    as a killed process would. `start()` brings it back on the same port.
    With `token` set, a request without that bearer token gets 401.
    """
    decide = rec._decide
    start = rec.start
    rec.dead = False
    rec.token = None
    rec.times = []  # when each request came in (time.monotonic())

    def _decide(body: bytes, headers: dict[str, str]) -> int | None:
        rec.times.append(time.monotonic())
        if rec.dead:
            return None
        if rec.token is not None and headers.get("Authorization") != f"Bearer {rec.token}":
            with rec.lock:
                rec.requests += 1
            return 401
        result: int | None = decide(body, headers)
        return result

    stop = rec.stop
    held: list[socket.socket] = []

    def kill() -> None:
        rec.dead = True
        stop()
        # Hold the port while dead (bound, not listening: connections are refused). Freed,
        # it could go to another xdist worker's receiver, and this test's events with it.
        hold = socket.socket()
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", rec.port))
        held.append(hold)

    def release() -> None:
        while held:
            held.pop().close()

    def restart() -> Any:
        release()
        rec.dead = False
        return start()

    def stop_for_good() -> None:
        release()
        stop()

    rec._decide = _decide
    rec.kill = kill
    rec.start = restart
    rec.stop = stop_for_good
    return rec


@pytest.fixture
def receiver(receiver: Any) -> Any:
    """The shared recording receiver, able to be killed and to check a token."""
    return _killable(receiver)


@pytest.fixture
def other_receiver(receiver: Any) -> Iterator[Any]:
    """A second recording receiver, on its own free port."""
    other = _killable(type(receiver)().start())
    yield other
    other.stop()
