"""Without fcntl and os.pread, as on Windows: the journal is locked, read and removed alike.

Tests using the `as_on_windows` fixture start Pythons that lack both (see
as_on_windows/sitecustomize.py), so they check the Windows code paths in every
run of the suite. The others check them in this process and run only with
PYTEST_RT_TEST_NO_FCNTL=1, where every delivery test runs that way (scripts/test).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from pytest_rt import spool
from pytest_rt.delivery import Delivery
from pytest_rt.settings import Settings
from pytest_rt.spool import Journal

from .helpers import assert_whole_stream, journals, module_with, nodeids_of, replay

SITE = Path(__file__).with_name("as_on_windows")
in_this_process = pytest.mark.skipif(
    spool._flock is not None or spool._pread is not None,
    reason="this process has fcntl and os.pread (PYTEST_RT_TEST_NO_FCNTL=1 takes them away)")


@pytest.fixture
def as_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python this test starts lacks fcntl and os.pread."""
    monkeypatch.setenv("PYTEST_RT_TEST_NO_FCNTL", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(SITE), os.environ.get("PYTHONPATH")])))


# Inner tests that see what the plugin sees, while it runs.
WINDOWS_LIKE = """
import os, pathlib, sys
import pytest

def test_fcntl_cannot_be_imported():
    with pytest.raises(ImportError):
        import fcntl

def test_os_has_no_pread():
    assert not hasattr(os, "pread")

def test_the_spool_takes_the_windows_paths():
    spool = sys.modules["pytest_rt.spool"]
    assert spool._flock is None and spool._pread is None

def test_the_journal_is_locked_by_a_lock_file_beside_it():
    [journal] = pathlib.Path(".spool/spool").glob("*.jsonl")
    assert journal.with_suffix(".lock").exists()
"""
WINDOWS_LIKE_TESTS = [f"test_mod.py::test_{name}" for name in (
    "fcntl_cannot_be_imported", "os_has_no_pread", "the_spool_takes_the_windows_paths",
    "the_journal_is_locked_by_a_lock_file_beside_it")]


def test_without_fcntl_and_pread_a_run_delivers_every_event_and_leaves_nothing_behind(
        rt, receiver, as_on_windows):
    rt.pytester.makepyfile(test_mod=WINDOWS_LIKE)
    result = rt.run_subprocess()
    result.assert_outcomes(passed=4)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert_whole_stream(receiver.unique(), WINDOWS_LIKE_TESTS)
    assert not (rt.pytester.path / ".spool").exists()


def test_without_fcntl_a_lock_file_left_by_a_dead_run_does_not_stop_replay(
        rt, receiver, dead_url, as_on_windows):
    rt.pytester.makepyfile(test_mod=module_with(3) + "\ndef test_zz_dies():\n    os._exit(3)\n")
    rt.url = dead_url
    assert rt.run_subprocess().ret == 3  # no finish, no clean-up: as after a crash
    spool_dir = rt.pytester.path / ".spool"
    [journal] = journals(spool_dir)
    assert journal.with_suffix(".lock").exists()

    done = replay(str(spool_dir), "--url", receiver.url)
    assert done.returncode == 0, done.stdout + done.stderr
    events = receiver.unique()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    starts = [e["test"] for e in events if e["type"] == "startTestItem"]
    assert starts == [*nodeids_of("test_mod", 3), "test_mod.py::test_zz_dies"]
    assert not spool_dir.exists()


@in_this_process
def test_a_journal_is_locked_without_fcntl_by_a_lock_file_that_goes_with_the_lock(tmp_path):
    kept = Journal.create(tmp_path / "rt", "job", "run1", "http://h/")
    lock = kept.path.with_suffix(".lock")
    assert lock.exists()
    kept.append(b'{"seq": 1}')
    assert not kept.finish(1)  # not delivered: kept for replay, the lock released
    kept.close()
    assert not lock.exists()
    assert kept.path.exists()

    again = Journal.open_existing(kept.path)
    assert again is not None
    assert lock.exists()
    again.mark_acked(again.count())
    assert again.finish(1)
    assert not lock.exists()
    assert not (tmp_path / "rt").exists()
    again.close()  # after finish: nothing left to do


@in_this_process
def test_without_pread_events_are_read_back_while_they_are_appended(tmp_path):
    """The reader's own fd and the writer's O_APPEND fd don't move each other."""
    journal = Journal.create(tmp_path / "rt", "job", "run1", "http://h/")
    try:
        lines = [json.dumps({"seq": i, "pad": "x" * (i * 97 % 5000)}).encode()
                 for i in range(1, 301)]
        read: list[bytes] = []
        for i, line in enumerate(lines):
            journal.append(line)
            if i % 7 == 0:
                read += journal.read(len(read), 5, 1 << 20)
                journal.mark_acked(len(read))
        read += journal.read(len(read), 1000, 1 << 30)
        assert read == lines
        assert journal.count() == 300
        assert journal.header()["url"] == "http://h/"
        assert journal.path.read_bytes().count(b"\n") == 301  # every line, written as is
    finally:
        journal.close()


@in_this_process
def test_without_pread_a_sender_that_fails_reading_stops_delivery_not_the_tests(
        tmp_path, receiver):
    delivery = Delivery(Settings(url=receiver.url, spool_dir=tmp_path / "rt",
                                 flush_timeout=5), uuid.uuid4().hex)
    delivery.emit({"type": "x", "event_id": uuid.uuid4().hex, "seq": 1})
    journal = delivery.spool
    assert isinstance(journal, Journal)
    broken = os.open(tmp_path, os.O_RDONLY)  # reads fail (EISDIR)
    good, journal._rfd = journal._rfd, broken
    os.close(good)
    for i in range(2, 5):
        delivery.emit({"type": "x", "event_id": uuid.uuid4().hex, "seq": i})
    report = delivery.finish()
    assert not delivery.thread.is_alive()
    assert report.undelivered > 0
    assert any(p.startswith("delivery stopped: ") for p in report.stats.problems)
