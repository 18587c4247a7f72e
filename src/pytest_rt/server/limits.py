"""Bounds on what slow or greedy clients can hold: connections, time, file descriptors, memory.

uvicorn (0.29-0.54 checked) times out only idle keep-alive connections: a
connection that sends half a request head is kept forever, and
``limit_concurrency`` only answers 503 once a head is complete, so it neither
caps connections nor frees a file descriptor. With 1,100 half-sent heads the
process ran out of descriptors and stopped accepting anyone. uvicorn takes an
HTTP protocol *class* (``Config(http=...)``), so :func:`bounded_protocol`
subclasses its own with what is missing:

- a deadline for each request head (from the connection, or from the first
  byte of the next request on a kept-alive one), and a cap on a head's size;
- a cap on open connections, kept below the open-file limit: past it, the
  connection that has waited longest for a head (a slow client, or an idle
  kept-alive one) is closed to make room; only when every connection is in
  the middle of a request is the newcomer closed instead.

Bodies are bounded in the ASGI layer (the loader reads them): a deadline for
the whole body and :class:`BodyBudget`, the bytes of all bodies in flight.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn uses h11
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

# Descriptors kept for the process itself: the database (SQLite opens 3 per
# connection, and the pool holds up to 15), logs, the event loop, threads.
FD_RESERVE = 128
# The listen backlog, and so the most connections asyncio accepts in one go before any
# protocol code runs: kept out of the cap too.
BACKLOG = 256
MAX_HEAD_BYTES = 64 * 1024


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise the soft open-file limit to the hard one; the (soft, hard) now in force.

    None where the platform has no ``resource`` module (Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # macOS refuses RLIM_INFINITY: keep the soft limit
            pass
    return soft, hard


def connection_plan(wanted: int) -> tuple[int, int]:
    """The connection cap and listen backlog: ``wanted`` and BACKLOG, lowered so that the
    connections, plus what asyncio accepts in one go, never exhaust the open-file limit."""
    try:
        import resource
    except ImportError:
        return wanted, BACKLOG
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted, BACKLOG
    backlog = max(8, min(BACKLOG, soft // 8))
    headroom = min(FD_RESERVE + backlog, soft // 2)
    return max(1, min(wanted, soft - headroom)), backlog


class BodyBudget:
    """Bytes of request bodies held in memory at once, over every connection.

    Used from the event loop only (no lock): a body takes its bytes as they
    arrive and gives them back once it was written (or refused).
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.total:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class _Bounded:
    """Head deadlines and a connection cap, mixed into uvicorn's HTTP protocol class by
    bounded_protocol(). The attributes below are uvicorn's (its protocol instances')."""

    head_timeout: float  # set by bounded_protocol()
    max_connections: int
    cycle: Any
    connections: Any
    loop: Any
    transport: Any
    # Set when the connection began to wait for a request head; None while a request
    # is being read or answered.
    _waiting_since: float | None = None
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._wait_for_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        idle = before is None or before.response_complete
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:  # a head is complete: the request runs
            self._head_done()
            return
        if not idle:  # body bytes of the request in progress
            return
        if self._waiting_since is None:  # the first bytes of the next request
            self._wait_for_head()
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)  # type: ignore[misc]

    def _wait_for_head(self) -> None:
        self._waiting_since = time.monotonic()
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

    def _head_done(self) -> None:
        self._waiting_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _evictable_since(self) -> float | None:
        """When this connection began to wait (for a head, or idle), or None if busy."""
        if self._waiting_since is not None:
            return self._waiting_since
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return 0.0  # kept alive and idle: the first to go
        return None

    def _make_room(self) -> None:
        victim, oldest = None, None
        for conn in self.connections:
            if conn is self or conn.transport.is_closing():
                continue
            since = getattr(conn, "_evictable_since", lambda: None)()
            if since is not None and (oldest is None or since < oldest):
                victim, oldest = conn, since
        (victim or self).transport.close()


def bounded_protocol(
    head_timeout: float, max_connections: int, base: Any = None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol ``base`` (default: httptools when installed, else h11) with
    head deadlines and a connection cap.

    uvicorn has no public way to do this: _Bounded relies on its protocols' attributes
    (``cycle`` and its ``response_complete``, ``connections``, ``loop``, ``transport``)
    and on a new ``cycle`` object per request head. tests/server/test_uvicorn_internals.py
    fails, for h11 and httptools alike, the day uvicorn changes them.
    """
    if base is None:
        base = HttpToolsProtocol if HttpToolsProtocol is not None else H11Protocol
    name = f"Bounded{base.__name__}"
    made: type[asyncio.Protocol] = type(name, (_Bounded, base), {
        "head_timeout": head_timeout, "max_connections": max_connections})
    return made
