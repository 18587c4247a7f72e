"""What the receiver refuses is not retried; batches only for receivers that offer them."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import assert_whole_stream, journals, module_with, nodeids_of

BAD = "test_mod.py::test_001"


def is_bad(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") == "stopTestItem" and event["test"] == BAD


def test_a_400_is_not_retried_and_is_reported_once_with_the_servers_text(rt, receiver):
    refused: list[Any] = []

    def reject(body: Any) -> int | None:
        if is_bad(body):
            refused.append(body)
            return 400
        return None

    receiver.behaviour.reject = reject
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-flush-timeout", "10")
    result.assert_outcomes(passed=3)
    assert len(refused) == 1
    others = [e for e in receiver.events if not is_bad(e)]
    assert len(receiver.events) == len(others) == 2 + 2 * 3 - 1
    assert [e["seq"] for e in others] == [s for s in range(1, 9) if s != refused[0]["seq"]]
    output = result.stdout.str()
    assert output.count('rejected an event (400): {"error": "scripted failure"}') == 1
    result.stdout.fnmatch_lines(["*7 events delivered, 1 not delivered*1 rejected*"])
    assert "pytest-rt replay" not in output  # a rejected event is not kept for replay
    assert not journals(rt.pytester.path / ".spool")


def test_a_rejected_batch_is_split_so_its_other_events_arrive(rt, receiver):
    refused: list[Any] = []

    def reject(body: Any) -> int | None:
        events = body if isinstance(body, list) else [body]
        if any(is_bad(e) for e in events):
            refused.append(body)
            return 400
        return None

    receiver.behaviour.batch = True
    receiver.behaviour.reject = reject
    rt.pytester.makepyfile(test_mod=module_with(20))
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=20)
    # The bad event came once in a batch and once alone; every other event arrived.
    assert [isinstance(body, list) for body in refused] == [True, False]
    events = receiver.unique()
    assert len(events) == len(receiver.events) == 2 + 2 * 20 - 1
    assert not any(is_bad(e) for e in events)
    assert sorted(e["seq"] for e in events) == [s for s in range(1, 43) if s != refused[1]["seq"]]


def test_a_batching_receiver_gets_arrays_after_its_first_answer(rt, receiver):
    receiver.behaviour.batch = True
    rt.pytester.makepyfile(test_mod=module_with(300))
    rt.run("--rt-flush-timeout", "10").assert_outcomes(passed=300)
    first, *rest = receiver.bodies
    assert isinstance(first, dict)
    assert rest and all(isinstance(body, list) for body in rest)
    assert max(len(body) for body in rest) > 1
    assert all(len(body) <= 500 for body in rest)
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 300))
    assert len(receiver.events) == 602


def test_a_receiver_that_does_not_offer_batches_gets_one_object_per_post(rt, receiver):
    rt.pytester.makepyfile(test_mod=module_with(30))
    rt.run().assert_outcomes(passed=30)
    assert all(isinstance(body, dict) for body in receiver.bodies)
    assert len(receiver.bodies) == len(receiver.events) == 62
    assert {h["Content-Type"] for h in receiver.headers} == {"application/json"}
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 30))


@pytest.mark.parametrize(("offer", "option", "arrays"), [
    (False, "--rt-batch", True),
    (True, "--rt-no-batch", False),
])
def test_batching_can_be_forced_either_way(rt, receiver, offer, option, arrays):
    receiver.behaviour.batch = offer
    rt.pytester.makepyfile(test_mod=module_with(5))
    rt.run(option).assert_outcomes(passed=5)
    assert {isinstance(body, list) for body in receiver.bodies} == {arrays}
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 5))


@pytest.mark.parametrize("status", [301, 307, 404, 405])
def test_an_answer_about_the_url_keeps_the_events_instead_of_dropping_them(rt, receiver, status):
    receiver.behaviour.fail_first = 1000
    receiver.behaviour.fail_status = status
    rt.pytester.makepyfile(test_mod=module_with(2))
    result = rt.run("--rt-flush-timeout", "5")
    result.assert_outcomes(passed=2)
    assert receiver.requests == 1
    result.stdout.fnmatch_lines([
        f"*answered {status} (the wrong URL?): delivery stopped, events kept for replay",
        "*6 events spooled; send them with: pytest-rt replay*"])
    [journal] = journals(rt.pytester.path / ".spool")


def test_a_404_after_events_were_taken_is_retried_not_rejected(rt, receiver):
    """A load balancer mid-deploy answers 404 for a moment: nothing is dropped for good."""
    answers = iter([404, 405, 404])

    def deploying(body: Any) -> int | None:
        return next(answers, None) if is_bad(body) else None

    receiver.behaviour.reject = deploying
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-flush-timeout", "10")
    result.assert_outcomes(passed=3)
    # Pipelined, the event after the 404 may have been taken before it: order by seq.
    events = sorted(receiver.unique(), key=lambda e: e["seq"])
    assert_whole_stream(events, nodeids_of("test_mod", 3))
    assert "rejected an event" not in result.stdout.str()
    assert not journals(rt.pytester.path / ".spool")


@pytest.mark.parametrize("status", [415, 421])
def test_a_refusal_of_how_we_reach_the_receiver_keeps_every_event(rt, receiver, status):
    """421 (a Host it does not serve) and 415 are about the request, not the events."""
    receiver.behaviour.reject = lambda body: status
    rt.pytester.makepyfile(test_mod=module_with(2))
    result = rt.run("--rt-flush-timeout", "5")
    result.assert_outcomes(passed=2)
    assert receiver.requests == 1
    result.stdout.fnmatch_lines([f"*refused the request ({status}*delivery stopped, events kept*",
                                 "*6 events spooled*"])
    assert "rejected an event" not in result.stdout.str()


def test_a_start_too_large_for_the_receiver_is_sent_again_without_its_test_list(rt, receiver):
    def too_many(body: Any) -> int | None:
        events = body if isinstance(body, list) else [body]
        return 413 if any(e["type"] == "startTestRun" and e["tests"] for e in events) else None

    receiver.behaviour.reject = too_many
    rt.pytester.makepyfile(test_mod=module_with(3))
    result = rt.run("--rt-flush-timeout", "5", "--rte", "staging")
    result.assert_outcomes(passed=3)
    [start] = receiver.of_type("startTestRun")
    assert (start["tests"], start["tests_omitted"], start["env"]) == ([], 3, "staging")
    assert_whole_stream(receiver.unique(), nodeids_of("test_mod", 3))
    assert "rejected an event" not in result.stdout.str()
