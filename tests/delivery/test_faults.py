"""A receiver that fails, resets, stalls, comes late or dies mid-run: the stream still arrives."""

from __future__ import annotations

import time

import pytest

from .helpers import (
    assert_whole_stream,
    in_background,
    journal_events,
    journals,
    module_with,
    nodeids_of,
    wait_for,
)

# An inner test that waits (bounded) until the outer test has done its part mid-run.
WAIT_FOR_MARKER = """
def test_zzz_after_the_fault():
    marker = pathlib.Path({marker!r})
    deadline = time.monotonic() + 15
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
"""


def waits_for(marker: object) -> str:
    return WAIT_FOR_MARKER.format(marker=str(marker))


def test_a_receiver_that_comes_up_mid_run_gets_the_whole_stream(rt, receiver):
    marker = rt.pytester.path / "receiver-is-up"
    rt.pytester.makepyfile(test_mod=module_with(4, 0.1) + waits_for(marker))
    receiver.kill()

    def come_up() -> None:
        time.sleep(0.8)  # the first tests run while nobody listens
        receiver.start()
        marker.touch()

    helper = in_background(come_up)
    result = rt.run("--rt-flush-timeout", "10")
    helper.join()
    assert not helper.errors
    result.assert_outcomes(passed=5)
    assert_whole_stream(receiver.unique(), [*nodeids_of("test_mod", 4),
                                            "test_mod.py::test_zzz_after_the_fault"])
    assert not (rt.pytester.path / ".spool").exists()


@pytest.mark.parametrize("retry_after", [None, "1"])
def test_503_for_the_first_requests_delays_but_loses_nothing(rt, receiver, retry_after):
    receiver.behaviour.fail_first = 3
    receiver.behaviour.retry_after = retry_after
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-flush-timeout", "10")
    result.assert_outcomes(passed=3)
    assert receiver.requests == 3 + len(receiver.bodies)  # 3 refused, then each once
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 3))
    assert len(receiver.events) == len(receiver.unique())


def test_retry_after_is_honoured(rt, receiver):
    receiver.behaviour.fail_first = 1
    receiver.behaviour.retry_after = "1"
    rt.pytester.makepyfile(test_mod=module_with(6, 0.25))
    started = time.monotonic()
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=6)
    assert time.monotonic() - started < 30  # did not hang
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 6))
    # The run lasts longer than the server's second, so the retry waited all of it.
    assert receiver.times[1] - receiver.times[0] >= 0.9


def test_connections_reset_without_an_answer_lose_nothing(rt, receiver):
    receiver.behaviour.reset_first = 3
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-flush-timeout", "10")
    result.assert_outcomes(passed=3)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 3))


def test_a_port_that_never_answers_does_not_hold_the_run(rt, silent_port):
    rt.url = f"http://127.0.0.1:{silent_port}/loader"
    rt.pytester.makepyfile(test_mod=module_with(2))
    started = time.monotonic()
    result = rt.run("--rt-flush-timeout", "2", "--rt-timeout", "3")
    assert time.monotonic() - started < 2 + 3 + 20  # bounded (a hang), not a performance figure
    result.assert_outcomes(passed=2)
    [journal] = journals(rt.pytester.path / ".spool")
    assert len(journal_events(journal)) == 6
    result.stdout.fnmatch_lines(["*6 events spooled; send them with: pytest-rt replay*"])


def test_a_slow_receiver_gets_everything(rt, receiver):
    receiver.behaviour.delay = 0.1
    rt.pytester.makepyfile(test_mod=module_with(4))
    rt.run("--rt-flush-timeout", "20").assert_outcomes(passed=4)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 4))


def test_a_receiver_killed_and_restarted_mid_run_gets_the_whole_stream(rt, receiver):
    marker = rt.pytester.path / "receiver-is-back"
    rt.pytester.makepyfile(test_mod=module_with(8, 0.1) + waits_for(marker))

    def die_and_come_back() -> None:
        assert wait_for(lambda: len(receiver.events) >= 4)
        receiver.kill()
        time.sleep(0.8)  # tests go on while it is dead
        receiver.start()
        marker.touch()

    helper = in_background(die_and_come_back)
    result = rt.run("--rt-flush-timeout", "10")
    helper.join()
    assert not helper.errors
    result.assert_outcomes(passed=9)
    assert_whole_stream(receiver.unique(), [*nodeids_of("test_mod", 8),
                                            "test_mod.py::test_zzz_after_the_fault"])
