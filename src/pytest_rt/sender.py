"""Delivery: read events from the spool in order and POST them, with retries.

The test thread only appends to the spool and sets an Event; everything that
can wait on the network happens here, in one background thread (or, for
``pytest-rt replay``, in the caller's thread). Rules, as docs/protocol.md says:

- 2xx acknowledges; ``X-Pytest-RT-Batch: 1`` in an answer switches to batches.
- connection errors, timeouts, 408, 429, 5xx: the receiver is *down*. Nothing
  is dropped; the head of the stream is retried after an exponential backoff
  with jitter (or the server's Retry-After), one probe at a time, so a dead
  receiver costs no timeout per event. It resumes in order when back.
- 401/403/407, a proxy's 4xx to CONNECT, a redirect, or a 404/405 before any
  event was taken: delivery stops for the run; events stay in the spool for
  replay. A 404/405 once events were taken is a receiver mid-deploy (behind a
  load balancer): retried like a 503.
- other 4xx: the event is rejected and not retried (a batch is first split,
  so one bad event does not take its neighbours with it).
- ``X-Pytest-RT-Heartbeat: N`` in an answer: while the run is live and nothing
  was sent for N seconds, a ``heartbeat`` event says the run is still alive (a
  long test, a slow fixture), so the receiver does not take it for abandoned.
  Heartbeats are not spooled and carry no ``seq``: never resent, never a gap.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_rt.protocol import FW, HEARTBEAT
from pytest_rt.settings import redact_url
from pytest_rt.spool import Source
from pytest_rt.transport import Answer, HttpTarget, Transport, TransportError

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1 << 20
LINGER = 0.05  # seconds a batch waits for company
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 15.0
RETRY_AFTER_MAX = 60.0
ACKED_SAVE_INTERVAL = 1.0
PIPELINE = 32  # requests in flight on one connection, for a receiver that doesn't batch
# Bounds on the heartbeat interval a receiver asks for (tests lower the floor).
HEARTBEAT_MIN = 5.0
HEARTBEAT_MAX = 3600.0


@dataclass(repr=False, eq=False)  # fewer generated methods to exec at import
class Stats:
    delivered: int = 0
    retried: int = 0  # requests that failed and were tried again
    rejected: int = 0
    posts: int = 0
    problems: list[str] = field(default_factory=list)  # one line each, for the summary

    def problem(self, text: str) -> None:
        if text not in self.problems and len(self.problems) < 5:
            self.problems.append(text)


class Sender:
    """Moves events from a Source to a Transport, in order, until told to stop."""

    def __init__(self, source: Source, transport: Transport, *, batch: bool | None,
                 display_url: str, start: int = 0, produced: int | None = None,
                 on_ack: Callable[[int], None] | None = None) -> None:
        self.source = source
        self.transport = transport
        self.forced_batch = batch
        self.batching = bool(batch)
        self.display_url = display_url
        self.acked = start
        self.produced = start if produced is None else produced  # raised by notify()
        self.stats = Stats()
        self.wake = threading.Event()  # set by the producer when events wait
        self._woken = False
        self._lighter: bytes | None = None  # the head event, to send in place of the journal's
        # Set once the first request got an answer, or failed: the live link waits for it.
        self.answered = threading.Event()
        self.wrong_url = False  # a redirect, or a 404/405 from a URL that never took events
        self.dashboard: str | None = None  # the receiver's dashboard, as it announced it
        self._interrupt = threading.Event()  # set by close(): cuts a backoff short
        self._gone = False  # a persistent failure after close(): no point waiting
        self.closing = False
        self.deadline = float("inf")
        self.stopped = False  # 401/403: deliver nothing more
        self._failures = 0
        self._split = 0  # events to send one by one after a rejected batch
        self._limit = MAX_BATCH_EVENTS
        # Pipelining starts once a keep-alive answer showed the server keeps the
        # connection, and ends for good if a pipelined exchange comes back short.
        self._pipelining = False
        self._no_pipelining = False
        self._saved = float("-inf")  # when the acknowledged count was last saved
        self.on_ack = on_ack  # replay's progress bar
        self.heartbeat: float | None = None  # seconds, once the receiver announced it
        self._last_post = time.monotonic()
        self._identity: dict[str, object] | None = None  # job_id, run_id of the events sent

    @classmethod
    def to(cls, target: HttpTarget, source: Source, *, batch: bool | None, start: int = 0,
           produced: int | None = None,
           on_ack: Callable[[int], None] | None = None) -> Sender:
        """The one way a run and `pytest-rt replay` wire a Transport to a Sender."""
        return cls(source, Transport(target), batch=batch, display_url=redact_url(target.url),
                   start=start, produced=produced, on_ack=on_ack)

    # -- the producer's side ---------------------------------------------------------

    def notify(self, produced: int) -> None:
        self.produced = produced
        # set() takes a lock and notifies, is_set() is a method call: a plain flag
        # tells whether this batch-to-be already woke the sender (_next_batch resets it).
        if not self._woken:
            self._woken = True
            self.wake.set()

    def drain(self, timeout: float) -> None:
        """Deliver everything there is, in this thread, for at most timeout seconds
        (`pytest-rt replay`: nothing more will be produced)."""
        self.close(timeout)
        self.run()

    def halt(self) -> None:
        """From another thread, past the deadline: send nothing more."""
        self.stopped = True

    def close(self, timeout: float) -> None:
        """Ask run() to deliver what is left within timeout seconds, then return."""
        self.deadline = time.monotonic() + timeout
        self.closing = True
        self._interrupt.set()
        self.wake.set()

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        inflight: list[bytes] = []
        while not self.stopped and not self._past_deadline():
            if not inflight:
                inflight = self._next_batch()
                if not inflight:
                    if self.closing and self.acked >= self.produced:
                        return
                    self.wake.wait(self._heartbeat_due() or 0.5)
                    continue
            sent = self._send(inflight)
            inflight = inflight[sent:]
            if self._lighter is not None:  # a startTestRun too large for the receiver
                inflight[0], self._lighter = self._lighter, None
            if not sent and self._gone:
                # At the end, a receiver that is not there (or not trusted) gets one
                # more try, not a wait: the events are on disk for `pytest-rt replay`.
                # One that resets or stalls is there, and is retried until the deadline.
                return

    def _heartbeat_due(self) -> float | None:
        """Send a heartbeat when one is due; seconds until the next, or None without them.

        Only while the run is live (not once closing, nor in replay, which starts
        closed) and only to a receiver that announced it takes them.
        """
        if self.heartbeat is None or self.closing or self._identity is None:
            return None
        every = min(max(self.heartbeat, HEARTBEAT_MIN), HEARTBEAT_MAX)
        left = self._last_post + every - time.monotonic()
        if left > 0:
            return min(left, 0.5)
        self._last_post = time.monotonic()  # tried: the next one is an interval away
        body = json.dumps(self._identity | {
            "fw": FW, "type": HEARTBEAT, "event_id": os.urandom(16).hex(), "time": time.time(),
        }).encode()
        # Nothing rides on the answer: events carry their own retries.
        with contextlib.suppress(TransportError):
            self.transport.post_many([body], timeout=self.transport.target.timeout)
        return min(every, 0.5)

    def _past_deadline(self) -> bool:
        return self.closing and time.monotonic() >= self.deadline

    def _next_batch(self) -> list[bytes]:
        # A notify() from here on wakes the next wait; one before this is in the read.
        self.wake.clear()
        self._woken = False
        # Give a batch a moment to fill, unless a full one is already waiting.
        filling = self.produced - self.acked < self._limit
        if self.batching and not self._split and not self.closing and filling:
            self._interrupt.wait(LINGER)
        return self.source.read(self.acked, self._per_request(), MAX_BATCH_BYTES)

    def _per_request(self) -> int:
        """Events the next exchange may carry (in one array, or pipelined)."""
        if self._split:
            return 1
        if self.batching:
            return self._limit
        return PIPELINE if self._pipelining else 1

    def _send(self, inflight: list[bytes]) -> int:
        """Try to deliver the head of inflight; return how many events left it."""
        # The limit may have shrunk (413) or batching begun since inflight was read.
        lines = inflight[:self._per_request()]
        as_array = self.batching and not self._split
        bodies = [b"[" + b",".join(lines) + b"]"] if as_array else lines
        timeout = self.transport.target.timeout
        if self.closing:
            timeout = min(timeout, self.deadline - time.monotonic())
        self.stats.posts += len(bodies)
        self._last_post = time.monotonic()
        if self._identity is None:  # every event of a run has it: read the smallest
            self._learn_identity(min(lines, key=len))
        closing = self.closing  # a try that began before close() does not count as the last
        try:
            answers = self.transport.post_many(bodies, timeout=timeout)
        except TransportError as exc:
            self.answered.set()
            why = f"cannot reach {self.display_url}: {exc}"
            if exc.refused is not None:
                self._stop(f"cannot be reached: {exc}")
                return 0
            self._gone = closing and exc.persistent
            if self._gone:
                self.stats.problem(why)
            else:
                self._retry_later(why, None)
            return 0
        self.answered.set()
        if as_array:
            return self._handle(answers[0], lines)
        return self._handle_each(answers, lines)

    def _learn_identity(self, line: bytes) -> None:
        """The job and run a heartbeat speaks for: those of the events (read once)."""
        try:
            event = json.loads(line)
            self._identity = {k: event[k] for k in ("job_id", "run_id", "custom_id") if k in event}
        except (ValueError, TypeError):
            self._identity = None
        if self._identity is not None and "job_id" not in self._identity:
            self._identity = None

    def _handle_each(self, answers: list[Answer], lines: list[bytes]) -> int:
        """Pipelined answers, one per event, acknowledged in order up to the first miss."""
        if len(answers) < len(lines) and len(lines) > 1:
            self._pipelining, self._no_pipelining = False, True
        sent = 0
        run = 0  # 2xx answers in a row, acknowledged together (once per exchange, usually)
        for answer, line in zip(answers, lines, strict=False):
            if 200 <= answer.status < 300:
                run += 1
                self._note(answer)
                if self.batching:
                    break
                continue
            if run:  # in order: what came before counts before this answer is judged
                self._acknowledge(run)
                sent, run = sent + run, 0
            done = self._handle(answer, [line])
            sent += done
            if not done or self.batching:
                break
        if run:
            self._acknowledge(run)
            sent += run
        last = answers[-1]
        if 200 <= last.status < 300 and not last.will_close and not self._no_pipelining:
            self._pipelining = True
        return sent

    def _handle(self, answer: Answer, lines: list[bytes]) -> int:
        status = answer.status
        if 200 <= status < 300:
            self._acknowledge(len(lines))
            self._note(answer)
            return len(lines)
        mid_deploy = status in (404, 405) and self.stats.delivered > 0
        if status in (408, 429) or status >= 500 or mid_deploy:
            self._retry_later(f"{self.display_url} answered {status}", answer.retry_after)
            return 0
        if status in (401, 403, 407):
            return self._stop(f"refused the token or credentials ({status})")
        if status in (415, 421):  # about how we reach it (Host, Content-Type), not the event
            return self._stop(f"refused the request ({status}: {answer.text[:120]})")
        if 300 <= status < 400 or (status in (404, 405) and not self.stats.delivered):
            # About the URL, not the event: a redirect (not followed, lest the token go
            # elsewhere), or an endpoint that has never taken an event. Dropping every
            # event as rejected would lose the run.
            where = f" to {answer.location}" if answer.location else ""
            self.wrong_url = True
            return self._stop(f"answered {status}{where} (the wrong URL?)")
        if status == 413 and len(lines) > 1:
            self._limit = max(1, len(lines) // 2)
            return 0
        if status == 413 and (lighter := _without_test_list(lines[0])) is not None:
            self._lighter = lighter  # sent again without its list: env, project, ci survive
            return 0
        if len(lines) > 1:
            self._split = len(lines)  # find the bad one; deliver the others
            return 0
        self.stats.rejected += 1
        self.stats.problem(f"{self.display_url} rejected an event ({status}): {answer.text}")
        self._acknowledge(1, delivered=False)
        return 1

    def _note(self, answer: Answer) -> None:
        """What a 2xx answer announces: batches, heartbeats."""
        if answer.batch_ok and self.forced_batch is None:
            self.batching = True
        if answer.heartbeat is not None:
            self.heartbeat = answer.heartbeat
        if answer.dashboard is not None:
            self.dashboard = answer.dashboard

    def _stop(self, why: str) -> int:
        self.stopped = True
        self.stats.problem(f"{self.display_url} {why}: delivery stopped, events kept for replay")
        return 0

    def _acknowledge(self, count: int, delivered: bool = True) -> None:
        self.acked += count
        if delivered:
            self.stats.delivered += count
        self._split = max(0, self._split - count)
        self.source.mark_acked(self.acked)
        now = time.monotonic()
        if now - self._saved >= ACKED_SAVE_INTERVAL:
            # After a kill -9, replay then resends at most about a second's worth.
            self.source.save_acked()
            self._saved = now
        if self.on_ack is not None:
            self.on_ack(self.acked)
        self._failures = 0

    def _retry_later(self, why: str, retry_after: float | None) -> None:
        self._failures += 1
        self.stats.retried += 1
        self.stats.problem(why)
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_MAX)
        else:
            delay = min(BACKOFF_FIRST * 2 ** (self._failures - 1), BACKOFF_MAX)
            delay *= random.uniform(0.5, 1.0)  # jitter: shards don't retry in step
        if self.closing:
            delay = min(delay, max(self.deadline - time.monotonic(), 0))
        # close() cuts the wait short; the loop then decides whether to try again.
        self._interrupt.wait(delay)
        self._interrupt.clear()


def _without_test_list(line: bytes) -> bytes | None:
    """A startTestRun without its `tests` (their count kept), or None for any other event.

    A receiver may refuse a run listing more tests than it takes at once (413): the
    tests' own events still bring them, and the run's other fields are worth keeping.
    """
    if b'"startTestRun"' not in line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    tests = event.get("tests") if isinstance(event, dict) else None
    if event.get("type") != "startTestRun" or not isinstance(tests, list) or not tests:
        return None
    event["tests"] = []
    event["tests_omitted"] = len(tests)
    return json.dumps(event, separators=(",", ":")).encode()
