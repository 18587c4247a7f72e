"""`kill -9` of pytest mid-run: the journal on disk has what the dead run produced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from pytest_rt.spool import read_acked

from .helpers import journals, nodeids_of, replay, wait_for

# Each inner test notes that it started (closed, so the kernel has it) and then sleeps.
NOTES_START = """
import pathlib, time

def note(name):
    with open("started.txt", "a") as f:
        f.write(name + "\\n")
"""


def test_replay_after_kill_9_delivers_everything_the_dead_run_produced(pytester, receiver):
    n = 40
    pytester.makepyfile(test_mod=NOTES_START + "".join(
        f"def test_{i:03d}():\n    note('test_mod.py::test_{i:03d}')\n    time.sleep(0.1)\n"
        for i in range(n)))
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rt",
            "--rt-url", receiver.url, "--rt-spool", ".spool", "test_mod.py"]
    proc = subprocess.Popen(args, cwd=pytester.path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len(receiver.events) >= 6, timeout=30)
        receiver.kill()  # what the run produces from now on reaches the journal only
        seen = len(receiver.unique())
        assert wait_for(lambda: len(started(pytester)) >= 3 + seen // 2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ran = started(pytester)
    assert len(ran) < n, "the run ended before it was killed"

    receiver.start()
    spool = pytester.path / ".spool"
    [journal] = journals(spool)
    # What was acknowledged is noted as the run goes, so replay need not resend it all.
    assert 0 < read_acked(journal) <= seen
    done = replay(str(spool), cwd=pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not journals(spool)

    events = receiver.unique()
    assert len(events) > seen
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "startTestRun"
    starts = [e["test"] for e in events if e["type"] == "startTestItem"]
    stops = [e["test"] for e in events if e["type"] == "stopTestItem"]
    # Every test that started has its start; each one that was followed by another
    # has its stop. (The last may or may not have finished before the kill.)
    assert starts == nodeids_of("test_mod", n)[: len(starts)]
    assert starts[: len(ran)] == ran
    assert stops[: len(ran) - 1] == ran[:-1]
    assert len(starts) - len(stops) in (0, 1)
    assert "stopTestRun" not in {e["type"] for e in events}


def started(pytester) -> list[str]:
    path = pytester.path / "started.txt"
    return path.read_text().splitlines() if path.exists() else []
