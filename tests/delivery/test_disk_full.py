"""The disk fills up mid-run: the run goes on, events still go out, what is on disk is replayable.

A full disk is made real with RLIMIT_FSIZE on the inner pytest process: writes
past the limit fail with EFBIG, as they would with ENOSPC.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .helpers import journal_events, journals, module_with, nodeids_of, replay

LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
os.execv(sys.executable, [sys.executable, "-m", "pytest", *sys.argv[1:]])
"""


def run_on_a_small_disk(pytester, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-c", LIMITED, "-p", "no:cacheprovider", "--rt", "--rt-url", url,
               "--rt-spool", ".spool", *args]
    return subprocess.run(command, cwd=pytester.path, env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_full_disk_mid_run_harms_neither_the_run_nor_delivery(pytester, receiver):
    pytester.makepyfile(test_mod=module_with(30) + "\ndef test_zz_fails():\n    assert 0\n")
    result = run_on_a_small_disk(pytester, receiver.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert "1 failed, 30 passed" in result.stdout
    events = receiver.unique()
    assert [e["seq"] for e in events] == list(range(1, 2 + 2 * 31 + 1))
    starts = [e["test"] for e in events if e["type"] == "startTestItem"]
    assert starts == [*nodeids_of("test_mod", 30), "test_mod.py::test_zz_fails"]
    assert not journals(pytester.path / ".spool")


def test_a_full_disk_with_the_receiver_away_keeps_what_reached_the_disk(pytester, receiver,
                                                                        dead_url):
    # (receiver first: dead_url's port is free again, and the receiver could get it)
    pytester.makepyfile(test_mod=module_with(30))
    result = run_on_a_small_disk(pytester, dead_url, "--rt-flush-timeout", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert "cannot write the spool in" in result.stdout
    assert "events were kept in memory only" in result.stdout
    [journal] = journals(pytester.path / ".spool")
    kept = journal.read_bytes().count(b"\n") - 1  # complete lines after the header
    assert len(journal_events(journal)) in (kept, kept + 1)  # perhaps one cut short
    assert 0 < kept < 62

    done = replay(str(pytester.path / ".spool"), "--url", receiver.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e["seq"] for e in receiver.unique()] == list(range(1, kept + 1))
