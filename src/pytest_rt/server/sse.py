"""Live changes for ``GET /api/events``: a hub of subscriber queues, and the wire format.

Publishing is cheap: the app asks :meth:`Hub.relevant` before building any
message, so with no dashboard open a write costs nothing extra, and a test's
snapshot is read only when a subscriber follows its job.

Changes are coalesced: the hub collects them for FLUSH_SECONDS, then sends one
message per changed job, carrying the Job once and each test that moved once,
in its latest state. A subscriber of one job gets that job's message with its
tests; a subscriber of the jobs list gets every changed job's message without
tests (the list shows jobs, not tests). Each message is encoded once per flush,
and one flush's bytes are shared by every subscriber that gets them: fifty runs
of 500 tests into 100 dashboards used to be five million messages of ~1 kB,
each repeating the whole Job, more than two cores can write.

A subscriber that cannot keep up (MAX_BEHIND_BYTES queued) is dropped: its
stream ends and the browser's EventSource reconnects and reloads.
:meth:`Hub.close` ends every stream, so a server shutdown never waits on an
open dashboard.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PING_SECONDS = 15.0
FLUSH_SECONDS = 0.2
MAX_BEHIND_BYTES = 64 * 1024 * 1024
_END = None  # the sentinel that ends a stream
# When a window holds several kinds, the message's `kind` is the one a client acts on most.
_RANK = {"test_started": 0, "test_finished": 1, "job_started": 2, "job_finished": 3,
         "job_deleted": 4}

ChangeId = tuple[str, str, str | None]  # (kind, job id, test key or None), as the writer says


@dataclass
class Change:
    """One change of a write, its JSON encoded already (off the event loop)."""

    kind: str
    job_id: str
    job: str  # the Job after the write, as JSON ("null" for a deleted job)
    nodeid: str | None = None  # the test's, for test kinds whose test was read
    test: str | None = None  # the Test after the write, as JSON


@dataclass
class _Pending:
    """One job's changes since the last flush."""

    kinds: list[str] = field(default_factory=list)
    job: str = "null"
    tests: dict[str, str] = field(default_factory=dict)  # nodeid -> latest Test JSON

    def message(self, job_id: str, with_tests: bool) -> str:
        kind = max(self.kinds, key=_RANK.__getitem__)
        head = (f'{{"kind":{_dumps(kind)},"kinds":{_dumps(self.kinds)},'
                f'"job_id":{_dumps(job_id)},"job":{self.job}')
        if not with_tests:
            return f"data: {head}}}\n\n"
        return f'data: {head},"tests":[{",".join(self.tests.values())}]}}\n\n'


class Subscriber:
    def __init__(self, job: str | None) -> None:
        self.job = job
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.behind = 0  # bytes queued and not yet written


class Hub:
    def __init__(
        self, ping_seconds: float = PING_SECONDS, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self.ping_seconds = ping_seconds
        self.flush_seconds = flush_seconds
        self._subscribers: set[Subscriber] = set()
        self._pending: dict[str, _Pending] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    def wants(self, job_ids: Iterable[str]) -> bool:
        """Whether any subscriber would receive a change of one of ``job_ids``."""
        return bool(self.relevant([("job_changed", job_id, None) for job_id in job_ids]))

    def relevant(self, changes: Sequence[ChangeId]) -> list[ChangeId]:
        """The changes worth a snapshot: none without a subscriber for them, and a test's
        key only when a subscriber follows its job (the jobs list gets no tests)."""
        # Called from writer threads: copy the set, and keep everything if it was
        # changing under us (a wasted snapshot is harmless, a lost one is not).
        try:
            subscribers = tuple(self._subscribers)
        except RuntimeError:
            return list(changes)
        if not subscribers:
            return []
        everything = any(s.job is None for s in subscribers)
        followed = {s.job for s in subscribers if s.job is not None}
        kept: list[ChangeId] = []
        job_level: set[tuple[str, str]] = set()
        for kind, job_id, key in changes:
            if job_id in followed:
                kept.append((kind, job_id, key))
            elif everything and (kind, job_id) not in job_level:
                job_level.add((kind, job_id))
                kept.append((kind, job_id, None))
        return kept

    def publish(self, changes: Iterable[Change]) -> None:
        """Add a write's changes to the next flush (event loop only), in commit order."""
        for c in changes:
            pending = self._pending.get(c.job_id)
            if pending is not None and "job_deleted" in pending.kinds:
                # The job came back after its deletion: the deletion goes out first.
                self.flush()
                pending = None
            if pending is None:
                pending = self._pending[c.job_id] = _Pending()
            if c.kind == "job_deleted":
                pending.tests.clear()
            if c.kind not in pending.kinds:
                pending.kinds.append(c.kind)
            pending.job = c.job
            if c.nodeid is not None and c.test is not None:
                pending.tests[c.nodeid] = c.test
        if self._pending and self._timer is None and not self.closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_seconds, self.flush)

    def flush(self) -> None:
        """Send what changed since the last flush: one message per job, encoded once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        subscribers = list(self._subscribers)
        if not pending or not subscribers:
            return
        followed = {s.job for s in subscribers if s.job is not None}
        per_job = {
            job_id: p.message(job_id, with_tests=True).encode()
            for job_id, p in pending.items() if job_id in followed
        }
        listing = b""
        if any(s.job is None for s in subscribers):
            listing = "".join(
                p.message(job_id, with_tests=False) for job_id, p in pending.items()
            ).encode()
        for sub in subscribers:
            data = listing if sub.job is None else per_job.get(sub.job, b"")
            if not data:
                continue
            sub.behind += len(data)
            if sub.behind > MAX_BEHIND_BYTES:
                self._drop(sub)
            else:
                sub.queue.put_nowait(data)

    def reset(self) -> None:
        """End every stream but take new ones: changes may have been missed (the LISTEN
        connection was lost), and a reconnecting dashboard reloads what it shows."""
        self._pending.clear()
        for sub in list(self._subscribers):
            self._drop(sub)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        for sub in list(self._subscribers):
            self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        while not sub.queue.empty():  # what it will never write is freed now
            sub.queue.get_nowait()
        sub.behind = 0
        sub.queue.put_nowait(_END)

    async def stream(self, job: str | None) -> AsyncIterator[bytes]:
        """The bytes of one ``text/event-stream`` response, until close or disconnect."""
        sub = Subscriber(job)
        if self.closed:
            return
        self._subscribers.add(sub)
        try:
            yield b": connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), self.ping_seconds)
                except asyncio.TimeoutError:
                    yield b": ping\n\n"
                    continue
                if item is _END:
                    return
                sub.behind -= len(item)
                yield item
        finally:
            self._subscribers.discard(sub)


def encode_changes(messages: Iterable[dict[str, Any]]) -> list[Change]:
    """Each snapshot message (Store.change_messages) as a :class:`Change` for the hub.

    JSON never contains a raw newline, so one ``data:`` line always holds a message.
    The messages of one write share their Job object: it is encoded once.
    """
    encoded_jobs: dict[int, str] = {}
    changes = []
    for m in messages:
        job = m["job"]
        if id(job) not in encoded_jobs:
            encoded_jobs[id(job)] = _dumps(job)
        test = m.get("test")
        changes.append(Change(
            m["kind"], m["job_id"], encoded_jobs[id(job)],
            m.get("nodeid") if test is not None else None,
            _dumps(test) if test is not None else None,
        ))
    return changes


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
