"""A `pytest-rt serve` process for the receiver benchmarks, on a free port."""

from __future__ import annotations

import subprocess
import sys


def start_server(db: str, extra: tuple[str, ...] | list[str] = ()
                 ) -> tuple[subprocess.Popen[str], int]:
    """Start `pytest-rt serve --port 0 --db DB EXTRA...`; the process and its port (read
    from the line it announces itself with)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_rt.server.cli", "--port", "0", "--db", db, *extra],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("pytest-rt receiver: "):
        proc.kill()
        raise SystemExit(f"the receiver did not start: {line!r}")
    return proc, int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
