"""The wiring of one run: emit() never raises into a hook, finish() always ends."""

from __future__ import annotations

import os
import uuid

from pytest_rt.delivery import Delivery
from pytest_rt.settings import Settings


def event(i: int) -> dict[str, object]:
    return {"type": "x", "event_id": uuid.uuid4().hex, "seq": i}


def test_everything_emitted_is_delivered_and_the_spool_removed(tmp_path, receiver):
    delivery = Delivery(Settings(url=receiver.url, spool_dir=tmp_path / "rt"), uuid.uuid4().hex)
    for i in range(1, 101):
        delivery.emit(event(i))
    report = delivery.finish()
    assert not delivery.thread.is_alive()
    assert [e["seq"] for e in receiver.unique()] == list(range(1, 101))
    assert report.undelivered == 0
    assert report.spool_path is None
    assert not (tmp_path / "rt").exists()


def test_a_sender_that_fails_inside_stops_delivery_not_the_tests(tmp_path, receiver):
    """A disk error while reading the journal back, in the sender's thread: no exception
    may escape that thread (pytest would turn it into a warning in a user's test)."""
    delivery = Delivery(Settings(url=receiver.url, spool_dir=tmp_path / "rt",
                                 flush_timeout=5), uuid.uuid4().hex)
    delivery.emit(event(1))
    journal = delivery.spool
    broken = os.open(tmp_path, os.O_RDONLY)  # reads fail (EISDIR), writes fail (EBADF)
    good, journal.fd = journal.fd, broken
    os.close(good)
    for i in range(2, 5):
        delivery.emit(event(i))
    report = delivery.finish()
    assert not delivery.thread.is_alive()
    assert report.undelivered > 0
    assert any(p.startswith("delivery stopped: ") for p in report.stats.problems)
