"""The journal on its own: what is appended is read back in order, until acknowledged."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pytest_rt.spool import Journal, MemorySpool, pending_journals, read_acked


def event(i: int, size: int = 0) -> bytes:
    return json.dumps({"seq": i, "pad": "x" * size}).encode()


@pytest.fixture
def journal(tmp_path):
    j = Journal.create(tmp_path / "rt", "job-1", "run1", "http://127.0.0.1:9/loader")
    yield j
    if j.fd >= 0:
        j.close()


def close(j: Journal) -> None:
    j.close()
    j.fd = -1


def test_events_are_read_back_in_order_from_any_acknowledged_point(journal):
    for i in range(1, 11):
        journal.append(event(i))
    assert journal.count() == 10
    assert journal.read(0, 3, 1 << 20) == [event(1), event(2), event(3)]
    journal.mark_acked(3)
    assert journal.read(3, 100, 1 << 20) == [event(i) for i in range(4, 11)]
    journal.mark_acked(10)
    assert journal.read(10, 100, 1 << 20) == []
    journal.append(event(11))
    assert journal.read(10, 100, 1 << 20) == [event(11)]


def test_a_read_stops_at_the_byte_limit_but_returns_at_least_one_event(journal):
    for i in range(1, 6):
        journal.append(event(i, 1000))
    assert len(journal.read(0, 100, 2500)) == 2
    assert len(journal.read(0, 100, 10)) == 1


def test_an_event_larger_than_a_read_chunk_is_read_whole(journal):
    big = event(1, 300_000)
    journal.append(big)
    journal.append(event(2))
    assert journal.read(0, 10, 1 << 20) == [big, event(2)]


def test_a_partly_written_last_line_is_not_read(journal):
    journal.append(event(1))
    os.write(journal.fd, b'{"seq": 2, "pa')  # what a kill mid-write could leave
    assert journal.read(0, 10, 1 << 20) == [event(1)]
    assert journal.count() == 1
    os.write(journal.fd, b'd": ""}\n')
    assert journal.read(0, 10, 1 << 20) == [event(1), b'{"seq": 2, "pad": ""}']
    assert journal.count() == 2


def test_the_file_is_private_and_named_without_secrets(journal, tmp_path):
    assert journal.path.parent == tmp_path / "rt" / "spool"
    assert journal.path.name == "job-1.run1.jsonl"
    assert stat.S_IMODE(journal.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    assert journal.header()["url"] == "http://127.0.0.1:9/loader"


def test_a_job_id_cannot_escape_the_spool_directory(tmp_path):
    j = Journal.create(tmp_path / "rt", "../../x/y", "run1", "http://h/")
    try:
        assert j.path.parent == tmp_path / "rt" / "spool"
        assert "/" not in j.path.name
    finally:
        j.close()


def test_finish_removes_a_fully_acknowledged_journal_and_its_directories(journal, tmp_path):
    journal.append(event(1))
    journal.mark_acked(1)
    assert journal.finish(1)
    close(journal)
    assert list(tmp_path.iterdir()) == []


def test_finish_keeps_what_is_not_acknowledged_and_replay_resumes_after_it(journal, tmp_path):
    for i in range(1, 4):
        journal.append(event(i))
    journal.mark_acked(2)
    assert not journal.finish(3)
    close(journal)
    acked = journal.path.with_suffix(".acked")
    assert read_acked(journal.path) == 2
    assert stat.S_IMODE(acked.stat().st_mode) == 0o600
    assert pending_journals(tmp_path / "rt") == [journal.path]

    again = Journal.open_existing(journal.path)
    assert again is not None
    try:
        assert again.acked == 2
        assert again.count() == 3
        assert again.read(again.acked, 10, 1 << 20) == [event(3)]
    finally:
        again.close()


def test_a_journal_in_use_is_left_alone(journal):
    assert Journal.open_existing(journal.path) is None


def test_the_memory_stand_in_behaves_like_the_journal():
    spool = MemorySpool()
    for i in range(1, 4):
        spool.append(event(i))
    assert spool.read(1, 10, 1 << 20) == [event(2), event(3)]
    spool.mark_acked(2)
    assert not spool.finish(3)
    spool.mark_acked(3)
    assert spool.finish(3)


def test_a_journal_that_can_no_longer_be_written_keeps_the_rest_in_memory(journal):
    journal.append(event(1))
    journal.append(event(2))
    writable, journal.fd = journal.fd, os.open(journal.path, os.O_RDONLY)  # writes now fail
    os.close(writable)
    for i in range(3, 6):
        journal.append(event(i))  # does not raise
    assert journal.error is not None
    assert journal.error.startswith(f"cannot write the spool in {journal.path.parent} (")
    assert journal.read(0, 10, 1 << 20) == [event(i) for i in range(1, 6)]
    assert journal.read(1, 2, 1 << 20) == [event(2), event(3)]
    journal.mark_acked(1)
    assert journal.read(1, 10, 1 << 20) == [event(i) for i in range(2, 6)]
    assert not journal.finish(5)  # event 2 is on disk and not delivered: kept for replay
    journal.mark_acked(3)
    journal.save_acked()
    assert read_acked(journal.path) == 2  # counted in lines the file has
    assert journal.read(3, 10, 1 << 20) == [event(4), event(5)]
    assert journal.finish(5)  # what is left was never on disk: nothing to replay
    assert not journal.path.exists()


def test_a_spool_removed_under_a_running_journal_does_not_break_its_end(journal, tmp_path):
    journal.append(event(1))
    journal.path.unlink()  # `git clean -fdx` or a tidy colleague
    journal.mark_acked(1)
    assert journal.finish(1)


def test_runs_sharing_a_spool_directory_each_get_their_journal(tmp_path):
    """One run's finish removes the emptied directory; the next run makes it again."""
    first = Journal.create(tmp_path / "rt", "job", "run1", "http://h/")
    first.mark_acked(0)
    assert first.finish(0)
    first.close()
    assert not (tmp_path / "rt").exists()
    second = Journal.create(tmp_path / "rt", "job", "run2", "http://h/")
    try:
        second.append(event(1))
        assert second.read(0, 1, 100) == [event(1)]
    finally:
        second.close()
