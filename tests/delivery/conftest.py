"""Helpers of the delivery fault tests: receivers that die, inner test files, replay.

Everything talks to real sockets on 127.0.0.1 and free ports. What a test
asserts is what the receiver recorded, after dropping duplicate event_ids as
docs/protocol.md tells receivers to.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

# The helpers' asserts explain themselves too (the package is `delivery`: tests/ is no package).
pytest.register_assert_rewrite("delivery.helpers")


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

    def kill() -> None:
        rec.dead = True
        rec.stop()

    def restart() -> Any:
        rec.dead = False
        return start()

    rec._decide = _decide
    rec.kill = kill
    rec.start = restart
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
