"""Real ``pytest-rt serve`` processes for the tests of many receivers on one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

PG_ENV = "PYTEST_RT_TEST_PG_URL"


class Receiver:
    """One ``pytest-rt serve --port 0`` process; ``url`` once it listens."""

    def __init__(self, db_url: str, log: Path, *args: str) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_rt.server.cli", "--port", "0", "--db", db_url,
             *args],
            stdout=subprocess.PIPE, stderr=self._log,
        )
        self.url = ""
        found: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def read_line() -> None:
            found.append(stdout.readline().decode())

        reader = threading.Thread(target=read_line, daemon=True)
        reader.start()
        reader.join(30)
        line = found[0] if found else ""
        if not line.startswith("pytest-rt receiver: http://"):
            self.stop()
            raise RuntimeError(f"pytest-rt serve did not start: {line!r}; {self.log()}")
        self.url = line.split()[2].rstrip("/")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, nothing is answered any more."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@contextmanager
def receivers(db_url: str, tmp: Path, count: int, *args: str) -> Iterator[list[Receiver]]:
    """``count`` receivers on ``db_url``, started side by side, all stopped at the end."""
    started: list[Receiver] = []
    try:
        for i in range(count):
            started.append(Receiver(db_url, tmp / f"receiver-{i}-{os.getpid()}.log", *args))
        yield started
    finally:
        for receiver in started:
            receiver.stop()


@contextmanager
def pg_schema() -> Iterator[str]:
    """A URL of the test PostgreSQL whose tables live in a fresh schema, dropped after."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL URL (scripts/start-postgres.sh prints one)")
    schema = "m_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


def wait_until(predicate: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message)
