"""Heartbeats: only to receivers that announce them, only when nothing else was sent,
never spooled, never in the seq stream."""

from __future__ import annotations

import pytest

from pytest_rt import sender

from .helpers import assert_whole_stream, module_with, nodeids_of


@pytest.fixture
def quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner pytest runs in this process: the floor of 5 s comes down for it.
    monkeypatch.setattr(sender, "HEARTBEAT_MIN", 0.05)


def test_a_receiver_that_announces_heartbeats_gets_them_while_a_slow_test_runs(
    rt, receiver, quick_heartbeats
):
    receiver.behaviour.batch = True
    receiver.behaviour.heartbeat = "0.2"
    rt.pytester.makepyfile(test_mod=module_with(1, sleep=1.5))
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=1)
    beats = receiver.of_type("heartbeat")
    assert 1 <= len(beats) <= 1.5 / 0.2 + 2, len(beats)  # a loaded machine may skip some
    others = [e for e in receiver.events if e["type"] != "heartbeat"]
    assert_whole_stream(others, nodeids_of("test_mod", 1))  # seq 1..N: no gap, no heartbeat
    start = receiver.of_type("startTestRun")[0]
    for beat in beats:
        assert beat["fw"] == "2"
        assert (beat["job_id"], beat["run_id"]) == (start["job_id"], start["run_id"])
        assert "seq" not in beat
        assert len(beat["event_id"]) == 32
    assert len({beat["event_id"] for beat in beats}) == len(beats)
    # Sent while the run was live: the first while the test ran, the last before the run
    # stopped (on a loaded machine pytest's own end can take longer than the interval,
    # and the run is still live then: seen under CI with 4 processes per lane).
    order = [e["type"] for e in receiver.events]
    first, last = order.index("heartbeat"), len(order) - 1 - order[::-1].index("heartbeat")
    assert order.index("startTestItem") < first < order.index("stopTestItem")
    assert last < order.index("stopTestRun")


def test_a_receiver_that_does_not_announce_them_never_gets_a_heartbeat(
    rt, receiver, quick_heartbeats
):
    receiver.behaviour.batch = True
    rt.pytester.makepyfile(test_mod=module_with(1, sleep=1.0))
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=1)
    assert receiver.of_type("heartbeat") == []
    assert len(receiver.events) == 4


def test_no_heartbeat_is_sent_while_events_flow(rt, receiver, quick_heartbeats):
    receiver.behaviour.heartbeat = "1.0"  # one event per POST: a POST every ~50 ms
    rt.pytester.makepyfile(test_mod=module_with(30, sleep=0.05))
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=30)
    assert receiver.of_type("heartbeat") == []
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 30))
