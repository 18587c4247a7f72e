"""The durable spool: every event on disk before it is sent, until acknowledged.

One run writes one journal, ``<spool dir>/spool/<job_id>.<run_id>.jsonl``: a
header line, then one JSON event per line, appended with a plain ``os.write``
by the thread that produced the event (no buffer to lose: ``kill -9`` of pytest
loses nothing the kernel has). Delivery is in order, so what the receiver has
acknowledged is always a prefix; its length is kept beside the journal in
``<name>.acked``. A journal whose every event is acknowledged is removed.

The sender reads the journal back instead of holding a queue in memory, so the
memory a backlog costs is one batch, however long the receiver is away.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

HEADER_KEY = "pytest_rt_spool"
SUFFIX = ".jsonl"


class Source(Protocol):
    """Where the sender reads events from, in order."""

    def read(self, start: int, max_events: int, max_bytes: int) -> list[bytes]: ...
    def mark_acked(self, count: int) -> None: ...
    def save_acked(self) -> None: ...


class MemorySpool:
    """Stand-in when the spool directory can't be written: same interface, no durability."""

    path: Path | None = None

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.acked = 0

    def append(self, line: bytes) -> None:
        self.lines.append(line)

    def read(self, start: int, max_events: int, max_bytes: int) -> list[bytes]:
        return _take(self.lines[start:start + max_events], max_bytes)

    def mark_acked(self, count: int) -> None:
        # Acknowledged events need not stay in memory; keep indices stable.
        for i in range(self.acked, count):
            self.lines[i] = b""
        self.acked = count

    def save_acked(self) -> None:
        pass  # nothing durable to keep it beside

    def finish(self, produced: int) -> bool:
        return self.acked >= produced

    def close(self) -> None:
        self.lines.clear()


def _take(lines: list[bytes], max_bytes: int) -> list[bytes]:
    """The longest prefix within max_bytes (at least one line)."""
    out: list[bytes] = []
    size = 0
    for line in lines:
        if out and size + len(line) > max_bytes:
            break
        out.append(line)
        size += len(line) + 1
    return out


class Journal:
    """An append-only journal file of one run's events, plus its acknowledged count."""

    def __init__(self, path: Path, fd: int, acked: int = 0) -> None:
        self.path = path
        self.fd = fd
        self.acked = acked
        self._ack_written = acked
        # Read cursor: the sender reads sequentially; keep where line `_index` starts.
        self._index = 0
        self._offset = self._header_end()
        self._ahead: collections.deque[bytes] = collections.deque()
        self._ahead_end = self._offset
        # Lines that could not be written (disk full): kept in memory from line `_on_disk`
        # on, so the run goes on and they are still sent; only they lose durability.
        self._on_disk = 0
        self._overflow: list[bytes] | None = None
        self.error: str | None = None

    # -- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, job_id: str, run_id: str, url: str) -> Journal:
        spool = directory / "spool"
        path = spool / f"{_safe(job_id)}.{run_id}{SUFFIX}"
        for attempt in range(3):
            made = not directory.exists()
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the leaf only gets mode
            spool.mkdir(exist_ok=True, mode=0o700)
            if made:  # a directory of the user's own is never marked, so never removed
                _ignore_in_git(directory)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                break
            except FileNotFoundError:
                # Another run sharing the directory removed it as it finished: again.
                if attempt == 2:
                    raise
        try:
            # Held for the run's life, so a concurrent `pytest-rt replay` leaves it alone.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = {HEADER_KEY: 1, "url": url, "job_id": job_id, "run_id": run_id,
                      "created": time.time(), "pid": os.getpid()}
            _write_all(fd, json.dumps(header).encode() + b"\n")
        except OSError:
            os.close(fd)
            path.unlink()
            raise
        return cls(path, fd)

    @classmethod
    def open_existing(cls, path: Path) -> Journal | None:
        """Open a journal for replay; None when another process holds it."""
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(path, fd, acked=read_acked(path))

    def header(self) -> dict[str, Any]:
        first = os.pread(self.fd, 65536, 0).split(b"\n", 1)[0]
        data = json.loads(first)
        if not isinstance(data, dict) or HEADER_KEY not in data:
            raise ValueError(f"{self.path} is not a pytest-rt spool file")
        return data

    def _header_end(self) -> int:
        first = os.pread(self.fd, 65536, 0)
        return first.index(b"\n") + 1 if b"\n" in first else 0

    # -- producing and consuming ------------------------------------------------------

    def append(self, line: bytes) -> None:
        """Write one event line; never raises (a full disk moves the rest to memory)."""
        if self._overflow is None:
            try:
                _write_all(self.fd, line + b"\n")
                self._on_disk += 1
                return
            except OSError as exc:
                # A partly written line has no newline: no reader ever takes it.
                self.error = f"cannot write the spool in {self.path.parent} ({exc.strerror})"
                self._overflow = []
        self._overflow.append(line)

    def count(self) -> int:
        """Events in the journal (reads it through)."""
        total = 0
        offset = self._header_end()
        while chunk := os.pread(self.fd, 1 << 20, offset):
            total += chunk.count(b"\n")
            offset += len(chunk)
        return total

    def read(self, start: int, max_events: int, max_bytes: int) -> list[bytes]:
        """Up to max_events lines from line `start` on (never before the acked prefix)."""
        self._skip_to(start)
        if len(self._ahead) < max_events:
            self._fill(max_bytes)
        lines = list(itertools.islice(self._ahead, max_events))
        overflow = self._overflow
        if overflow is not None and start + len(lines) >= self._on_disk:
            first = start + len(lines) - self._on_disk
            lines += overflow[first:first + max_events - len(lines)]
        return _take(lines, max_bytes)

    def _fill(self, max_bytes: int) -> None:
        """Read complete lines after the read-ahead into it."""
        chunk = os.pread(self.fd, max(max_bytes, 65536), self._ahead_end)
        end = chunk.rfind(b"\n") + 1
        while not end and chunk:  # one event larger than the chunk: read it whole
            more = os.pread(self.fd, 1 << 20, self._ahead_end + len(chunk))
            if not more:
                return  # still being written
            chunk += more
            end = chunk.rfind(b"\n") + 1
        if end:
            self._ahead.extend(chunk[: end - 1].split(b"\n"))
            self._ahead_end += end

    def _skip_to(self, index: int) -> None:
        while self._index < index:
            if not self._ahead:
                self._fill(1 << 20)
                if not self._ahead:
                    return
            line = self._ahead.popleft()
            self._index += 1
            self._offset += len(line) + 1

    def mark_acked(self, count: int) -> None:
        self._skip_to(count)
        if self._overflow is not None:  # delivered: no need to hold them any more
            for i in range(max(self.acked, self._on_disk), count):
                self._overflow[i - self._on_disk] = b""
        self.acked = count

    def save_acked(self) -> None:
        """Keep the acknowledged count beside the journal (best effort: a replay that
        does not find it resends events the receiver drops as duplicates)."""
        if self.acked != self._ack_written:
            with contextlib.suppress(OSError):
                self._write_acked()

    def _write_acked(self) -> None:
        tmp = self.path.with_suffix(".acked.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only
        try:
            # Counted in lines on disk: those kept in memory are not in the file.
            on_disk = self.acked if self._overflow is None else min(self.acked, self._on_disk)
            _write_all(fd, str(on_disk).encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.path.with_suffix(".acked"))
        self._ack_written = self.acked

    def finish(self, produced: int) -> bool:
        """Remove the journal if nothing in it is left to send; True when it is removed.

        After a full disk the events kept in memory die with the process: the
        journal is kept only while some event *on disk* is not acknowledged.
        """
        on_disk = produced if self._overflow is None else self._on_disk
        if self.acked >= on_disk:
            for path in (self.path.with_suffix(".acked"), self.path):
                path.unlink(missing_ok=True)  # (someone may have cleaned up under us)
            _remove_empty(self.path.parent)
            return True
        self.save_acked()
        return False

    def close(self) -> None:
        os.close(self.fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until all is written: a nearly full disk may take part of it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_acked(path: Path) -> int:
    try:
        return int(path.with_suffix(".acked").read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def pending_journals(directory: Path) -> list[Path]:
    """Journals under a spool directory (or the path itself if it is one), oldest first."""
    if directory.is_file():
        return [directory]
    spool = directory / "spool" if (directory / "spool").is_dir() else directory
    return sorted(spool.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime)


def _safe(job_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id)


GITIGNORE = "# created by pytest-rt\n*\n"


def _ignore_in_git(directory: Path) -> None:
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        with contextlib.suppress(OSError):
            gitignore.write_text(GITIGNORE)


def _remove_empty(spool: Path) -> None:
    """Leave nothing behind: drop spool/, and its parent if pytest-rt made it and it is empty.

    The parent counts as ours only while it holds nothing but the .gitignore we
    wrote when we created it: a user's own directory is never removed.
    """
    with contextlib.suppress(OSError):
        spool.rmdir()
        parent = spool.parent
        gitignore = parent / ".gitignore"
        if [p.name for p in parent.iterdir()] == [".gitignore"] \
                and gitignore.read_text() == GITIGNORE:
            gitignore.unlink()
            parent.rmdir()
