"""Live changes for ``GET /api/events``: a hub of subscriber queues, and the wire format.

Publishing is cheap: the app asks :meth:`Hub.wants` before building any
message, so with no dashboard open a write costs nothing extra. A subscriber
that cannot keep up (its queue is full) is dropped: its stream ends and the
browser's EventSource reconnects and reloads. :meth:`Hub.close` ends every
stream, so a server shutdown never waits on an open dashboard.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

PING_SECONDS = 15.0
QUEUE_SIZE = 10_000
_END = None  # the sentinel that ends a stream


class Subscriber:
    def __init__(self, job: str | None) -> None:
        self.job = job
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_SIZE)


class Hub:
    def __init__(self, ping_seconds: float = PING_SECONDS) -> None:
        self.ping_seconds = ping_seconds
        self._subscribers: set[Subscriber] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    def wants(self, job_ids: Iterable[str]) -> bool:
        """Whether any subscriber would receive a change of one of ``job_ids``."""
        # Called from the writer thread: copy the set, and say yes if it was
        # changing under us (a wasted snapshot is harmless, a lost one is not).
        try:
            subscribers = tuple(self._subscribers)
        except RuntimeError:
            return True
        if not subscribers:
            return False
        ids = set(job_ids)
        return any(s.job is None or s.job in ids for s in subscribers)

    def publish(self, events: Iterable[tuple[str, str]]) -> None:
        """Queue each (job_id, encoded event) for the subscribers of that job (event loop only)."""
        for job_id, data in events:
            for sub in list(self._subscribers):
                if sub.job is not None and sub.job != job_id:
                    continue
                try:
                    sub.queue.put_nowait(data)
                except asyncio.QueueFull:
                    self._drop(sub)

    def reset(self) -> None:
        """End every stream but take new ones: changes may have been missed (the LISTEN
        connection was lost), and a reconnecting dashboard reloads what it shows."""
        for sub in list(self._subscribers):
            self._drop(sub)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed = True
        for sub in list(self._subscribers):
            self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        while True:  # make room for the sentinel
            try:
                sub.queue.put_nowait(_END)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()

    async def stream(self, job: str | None) -> AsyncIterator[str]:
        """The text of one ``text/event-stream`` response, until close or disconnect."""
        sub = Subscriber(job)
        if self.closed:
            return
        self._subscribers.add(sub)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), self.ping_seconds)
                except asyncio.TimeoutError:
                    yield ": ping\n\n"
                    continue
                if item is _END:
                    return
                yield item
        finally:
            self._subscribers.discard(sub)


def encode_changes(messages: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each message as (job_id, SSE event text): one ``data:`` line of JSON.

    JSON never contains a raw newline, so one line always holds the message.
    The messages of one write share their Job object: it is encoded once.
    """
    encoded_jobs: dict[int, str] = {}
    events = []
    for m in messages:
        job = m["job"]
        if id(job) not in encoded_jobs:
            encoded_jobs[id(job)] = _dumps(job)
        data = (
            f'{{"kind":{_dumps(m["kind"])},"job_id":{_dumps(m["job_id"])},'
            f'"nodeid":{_dumps(m["nodeid"])},"job":{encoded_jobs[id(job)]},'
            f'"test":{_dumps(m["test"])}}}'
        )
        events.append((m["job_id"], f"data: {data}\n\n"))
    return events


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
