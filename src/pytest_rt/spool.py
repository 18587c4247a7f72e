"""The durable spool: every event on disk before it is sent, until acknowledged.

One run writes one journal, ``<spool dir>/spool/<job_id>.<run_id>.jsonl``: a
header line, then one JSON event per line, appended with a plain ``os.write``
by the thread that produced the event (no buffer to lose: ``kill -9`` of pytest
loses nothing the kernel has). Delivery is in order, so what the receiver has
acknowledged is always a prefix; its length is kept beside the journal in
``<name>.acked``. A journal whose every event is acknowledged is removed.

The sender reads the journal back instead of holding a queue in memory, so the
memory a backlog costs is one batch, however long the receiver is away.

Portable: Linux and macOS lock with ``flock``; where there is no ``fcntl``
(Windows) the lock is a ``<name>.lock`` file (see ``_lock``). Where there is no
``os.pread`` (Windows) the reader has its own file descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # Windows: the lock is a lock file instead (see _lock)
    _flock: Callable[[int, int], None] | None = None
else:
    _flock = fcntl.flock

# Windows has no pread; reads then go through a read-only fd of their own.
_pread: Callable[[int, int, int], bytes] | None = getattr(os, "pread", None)
# Windows opens files in text mode unless told otherwise: "\n" would be written as "\r\n".
_BINARY: int = getattr(os, "O_BINARY", 0)

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
        if count > self.acked:
            self.lines[self.acked:count] = [b""] * (count - self.acked)
        self.acked = count

    def save_acked(self) -> None:
        pass  # nothing durable to keep it beside

    def finish(self, produced: int) -> bool:
        return self.acked >= produced

    def close(self) -> None:
        self.lines.clear()


def _take(lines: list[bytes], max_bytes: int) -> list[bytes]:
    """The longest prefix within max_bytes (at least one line)."""
    if sum(map(len, lines)) + len(lines) <= max_bytes:
        return lines  # the usual case, without a loop in Python
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

    def __init__(self, path: Path, fd: int, lock: int, acked: int = 0) -> None:
        """Take over `fd` (the journal, open for appending) and `lock` (from `_lock`)."""
        self.path = path
        self.fd = fd
        self._lock: int | None = lock
        # Without pread, reads need a position of their own: seeking the O_APPEND fd would
        # race with the test thread's writes (Windows' C runtime seeks it before each write).
        # Only one thread reads at a time (the sender; replay has no other).
        self._rfd = -1 if _pread is not None else os.open(path, os.O_RDONLY | _BINARY)
        self.acked = acked
        self._ack_written = acked
        # Read cursor: the sender reads sequentially. `_ahead[_pos:]` are the lines read
        # ahead, from line `_index` on; `_ahead_end` is where in the file they end.
        self._index = 0
        try:
            self._ahead_end = self._header_end()
        except OSError:
            if self._rfd >= 0:  # the rest is the caller's
                os.close(self._rfd)
            raise
        self._ahead: list[bytes] = []
        self._pos = 0
        # Lines that could not be written (disk full): kept in memory from line `_on_disk`
        # on, so the run goes on and they are still sent; only they lose durability.
        self._on_disk = 0
        self._overflow: list[bytes] | None = None
        self.error: str | None = None

    # -- creating and opening ---------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, job_id: str, run_id: str, url: str,
               connection: dict[str, Any] | None = None) -> Journal:
        spool = directory / "spool"
        path = spool / f"{_safe(job_id)}.{run_id}{SUFFIX}"
        for attempt in range(3):
            made = not directory.exists()
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # the leaf only gets mode
            spool.mkdir(exist_ok=True, mode=0o700)
            if made:  # a directory of the user's own is never marked, so never removed
                _ignore_in_git(directory)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | _BINARY,
                             0o600)
                break
            except FileNotFoundError:
                # Another run sharing the directory removed it as it finished: again.
                if attempt == 2:
                    raise
        lock = None
        try:
            # Held for the run's life, so a concurrent `pytest-rt replay` leaves it alone.
            lock = _lock(path)
            if lock is None:  # a replay that found the journal before its header
                raise BlockingIOError(errno.EAGAIN, "locked by another process", str(path))
            # `connection`: how to reach the URL, for replay (nothing secret in it).
            header = {HEADER_KEY: 1, "url": url, "job_id": job_id, "run_id": run_id,
                      "created": time.time(), "pid": os.getpid(), "connection": connection}
            _write_all(fd, json.dumps(header).encode() + b"\n")
            return cls(path, fd, lock)
        except OSError:
            os.close(fd)  # before the unlink: Windows removes no file that is open
            try:
                path.unlink()
            finally:
                if lock is not None:
                    _unlock(path, lock)
            raise

    @classmethod
    def open_existing(cls, path: Path) -> Journal | None:
        """Open a journal for replay; None when another process holds it."""
        lock = _lock(path)
        if lock is None:
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | _BINARY)
        except OSError:  # e.g. sent and removed meanwhile, by another replay
            _unlock(path, lock)
            raise
        try:
            return cls(path, fd, lock, acked=read_acked(path))
        except OSError:
            os.close(fd)
            _unlock(path, lock)
            raise

    def _read_at(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes of the journal from `offset` (fewer at its end)."""
        if _pread is not None:
            return _pread(self.fd, size, offset)
        os.lseek(self._rfd, offset, os.SEEK_SET)
        return os.read(self._rfd, size)

    def header(self) -> dict[str, Any]:
        first = self._read_at(65536, 0).split(b"\n", 1)[0]
        data = json.loads(first)
        if not isinstance(data, dict) or HEADER_KEY not in data:
            raise ValueError(f"{self.path} is not a pytest-rt spool file")
        return data

    def _header_end(self) -> int:
        first = self._read_at(65536, 0)
        return first.index(b"\n") + 1 if b"\n" in first else 0

    # -- producing and consuming ------------------------------------------------------

    def append(self, line: bytes) -> None:
        """Write one event line; never raises (a full disk moves the rest to memory)."""
        if self._overflow is None:
            try:
                data = line + b"\n"
                written = os.write(self.fd, data)  # all of it, but on a nearly full disk
                if written != len(data):
                    _write_all(self.fd, data[written:])
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
        while chunk := self._read_at(1 << 20, offset):
            total += chunk.count(b"\n")
            offset += len(chunk)
        return total

    def read(self, start: int, max_events: int, max_bytes: int) -> list[bytes]:
        """Up to max_events lines from line `start` on (never before the acked prefix)."""
        self._skip_to(start)
        if len(self._ahead) - self._pos < max_events:
            self._fill(max_bytes)
        lines = self._ahead[self._pos:self._pos + max_events]
        overflow = self._overflow
        if overflow is not None and start + len(lines) >= self._on_disk:
            first = start + len(lines) - self._on_disk
            lines += overflow[first:first + max_events - len(lines)]
        return _take(lines, max_bytes)

    def _fill(self, max_bytes: int) -> None:
        """Read complete lines after the read-ahead into it."""
        chunk = self._read_at(max(max_bytes, 65536), self._ahead_end)
        end = chunk.rfind(b"\n") + 1
        while not end and chunk:  # one event larger than the chunk: read it whole
            more = self._read_at(1 << 20, self._ahead_end + len(chunk))
            if not more:
                return  # still being written
            chunk += more
            end = chunk.rfind(b"\n") + 1
        if end:
            del self._ahead[:self._pos]  # lines already passed: one memmove, not a loop
            self._pos = 0
            self._ahead.extend(chunk[: end - 1].split(b"\n"))
            self._ahead_end += end

    def _skip_to(self, index: int) -> None:
        while self._index < index:
            available = len(self._ahead) - self._pos
            if not available:
                self._fill(1 << 20)
                if len(self._ahead) == self._pos:
                    return
                continue
            step = min(index - self._index, available)
            self._pos += step
            self._index += step

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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)  # owner only
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
            self._close_files()  # first: Windows removes no file that is open, even by us
            for path in (self.path.with_suffix(".acked"), self.path):
                path.unlink(missing_ok=True)  # (someone may have cleaned up under us)
            self._release()  # last: no replay may take a journal that is being removed
            _remove_empty(self.path.parent)
            return True
        self.save_acked()
        return False

    def close(self) -> None:
        """Close the journal and release its lock (again: nothing happens)."""
        self._close_files()
        self._release()

    def _close_files(self) -> None:
        for fd in (self.fd, self._rfd):
            if fd >= 0:
                os.close(fd)
        self.fd = self._rfd = -1

    def _release(self) -> None:
        if self._lock is not None:
            _unlock(self.path, self._lock)
            self._lock = None


def _lock(journal: Path) -> int | None:
    """Lock a journal against other processes: an fd to keep open while holding it, or
    None when another process holds it. `_unlock` releases it.

    With fcntl: flock on an fd of the journal's own (closing the journal's other fds
    keeps it), released by the kernel when the holder dies. Without (Windows): the
    lock is `<name>.lock`, created with O_EXCL and kept open by its holder. Windows
    removes no file another process has open, so a lock file that can be removed was
    left by a dead holder (a kill, a crash) and is taken over; one that can't is held.
    (On Linux an open file can be removed: this fallback does not hold there.)
    """
    if _flock is not None:
        fd = os.open(journal, os.O_RDWR | _BINARY)  # (NFS takes LOCK_EX only on a writable fd)
        try:
            _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            raise
        return fd
    lock = journal.with_suffix(".lock")
    for _ in range(2):
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
        except FileExistsError:
            try:
                lock.unlink()
            except FileNotFoundError:
                pass  # its holder just released it
            except PermissionError:
                return None  # open in a live process
    return None  # another process took it over between our unlink and create


def _unlock(journal: Path, lock: int) -> None:
    os.close(lock)
    if _flock is None:
        # Closed first: Windows would not remove it while open. (Another process may
        # take it over in between and lose it here: at worst two replays send the same
        # events, which receivers drop by event_id.) A lock file that can't be removed
        # is only stale: the next replay removes it.
        with contextlib.suppress(OSError):
            journal.with_suffix(".lock").unlink()


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
