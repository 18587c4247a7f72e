"""Wiring of spool, sender thread and transport for one pytest run.

``emit_line()`` is all a hook pays, with the event already encoded
(events.Job.line): one ``os.write`` and, once per batch, an ``Event.set``.
``finish()`` gives the sender at most the flush timeout, then cuts any request
still hanging, so the run never waits longer than promised and
leaves no thread or socket behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_rt import forking
from pytest_rt.events import encode
from pytest_rt.sender import Sender, Stats
from pytest_rt.settings import Settings
from pytest_rt.spool import Journal, MemorySpool
from pytest_rt.transport import HttpTarget


@dataclass(frozen=True, repr=False, eq=False)  # fewer generated methods to exec at import
class Report:
    """What the run's summary line says."""

    produced: int
    stats: Stats
    spool_path: Path | None  # set when events are left for replay
    spool_error: str | None
    replay_command: str | None

    @property
    def undelivered(self) -> int:
        return self.produced - self.stats.delivered


def _quote(arg: str) -> str:
    """One argument as the user's shell takes it (cmd.exe knows no single quotes)."""
    if sys.platform == "win32":
        import subprocess

        return subprocess.list2cmdline([arg])
    return shlex.quote(arg)


def target_for(settings: Settings) -> HttpTarget:
    return HttpTarget(
        url=settings.url,
        timeout=settings.timeout,
        token=settings.token,
        headers=settings.headers,
        ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
        insecure=settings.insecure,
    )


class Delivery:
    """Owns the spool and the sender thread of one run."""

    # Set in a forked child (forking.py): the thread, journal and socket are the parent's.
    forked = False

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.spool_error: str | None = None
        self.spool: Journal | MemorySpool
        target = target_for(settings)
        try:
            self.spool = Journal.create(settings.spool_dir, settings.job_id, run_id, settings.url,
                                        connection=target.recorded())
        except OSError as exc:
            # Unwritable spool: keep delivering from memory, and say so once.
            self.spool_error = f"cannot write the spool in {settings.spool_dir} ({exc.strerror})"
            self.spool = MemorySpool()
        self.sender = Sender.to(target, self.spool, batch=settings.batch)
        self.transport = self.sender.transport
        self.produced = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._send, name="pytest-rt-sender",
                                       daemon=True)
        self.thread.start()
        forking.track(self)

    def _send(self) -> None:
        try:
            self.sender.run()
        except Exception as exc:  # escaping, pytest would pin it on a user's test
            # A bug, or a disk error reading the journal back: delivery stops, the tests
            # go on, and what is on disk stays there for `pytest-rt replay`.
            self.sender.stats.problem(f"delivery stopped: {type(exc).__name__}: {exc}")

    def emit(self, event: dict[str, Any]) -> None:
        self.emit_line(encode(event))

    def emit_line(self, text: str) -> None:
        """Append one encoded event (events.Job.line) and wake the sender."""
        if self.forked:
            return
        line = text.encode()
        with self._lock:  # hooks may come from more than one thread (rare; be safe)
            self.spool.append(line)
            self.produced += 1
            self.sender.notify(self.produced)

    def dashboard(self, wait: float) -> str | None:
        """The receiver's dashboard URL, waiting at most `wait` s for its first answer."""
        if self.forked:
            return None
        self.sender.answered.wait(wait)
        return self.sender.dashboard

    def finish(self) -> Report:
        """Deliver what is left within the flush timeout; keep the rest on disk."""
        if self.forked:  # the parent delivers, and removes its journal, not this child
            return Report(0, Stats(), None, None, None)
        timeout = self.settings.flush_timeout
        self.sender.close(timeout)
        try:
            self.thread.join(timeout + 0.5)
        except KeyboardInterrupt:  # Ctrl-C while waiting: stop waiting, keep the rest
            self.sender.stats.problem("delivery cut short by Ctrl-C")
        if self.thread.is_alive():  # a request still hanging: cut it
            self.sender.halt()
            self.transport.abort()
            with contextlib.suppress(KeyboardInterrupt):
                # Every wait of the sender ends within a 50 ms slice once cut (a DNS lookup
                # excepted); the rest is for a machine too busy to schedule it at once.
                self.thread.join(5.0)
        if self.thread.is_alive():
            # Still inside a system call: leave it the journal rather than close the
            # file under it. It is a daemon thread and can send nothing more.
            return self._report(left=True, path=self.spool.path)
        self.transport.close()
        left = not self.spool.finish(self.produced)
        path = self.spool.path if left else None
        if isinstance(self.spool, Journal):
            self.spool.close()
        return self._report(left, path)

    def _report(self, left: bool, path: Path | None) -> Report:
        replay = None
        if left and path is not None:
            replay = f"pytest-rt replay {_quote(str(path))}"
            if self.settings.token:
                replay += "  (with PYTEST_RT_TOKEN set)"
        error = self.spool_error
        if error is None and isinstance(self.spool, Journal):
            error = self.spool.error  # the disk filled up during the run
        # A snapshot: the Report must not change under the summary that prints it.
        stats = dataclasses.replace(self.sender.stats,
                                    problems=list(self.sender.stats.problems))
        return Report(self.produced, stats, path, error, replay)
