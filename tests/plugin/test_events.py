"""The pure event model (pytest_rt.events): properties that hold for any input."""

from __future__ import annotations

import json
import re

import pytest

from pytest_rt import events, protocol

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")
given = hypothesis.given


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_stamp_is_unix_seconds_with_six_decimals(t):
    text = events.stamp(t)
    assert re.fullmatch(r"\d+\.\d{6}", text)
    assert abs(float(text) - t) <= 1e-6 * max(1.0, t) + 5e-7


@given(st.text(max_size=400), st.integers(min_value=100, max_value=300))
def test_a_msg_is_cut_at_max_msg_with_a_marker_and_left_alone_below(text, max_msg):
    cleaned = events.Limits(max_msg=max_msg).clean(text)
    if len(text) <= max_msg:
        assert cleaned == text
    else:
        assert cleaned.startswith(text[:max_msg])
        cut = len(text) - max_msg
        assert cleaned == text[:max_msg] + f"\n[... {cut} characters truncated by pytest-rt]"


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=80))
def test_with_a_custom_id_a_test_uuid_is_stable_digits_as_upstream_made_them(custom_id, nodeid):
    first = events.TestUuids(custom_id)(nodeid)
    assert first == events.TestUuids(custom_id)(nodeid)
    assert first.isdigit() and 0 < len(first) <= 31


def test_without_a_custom_id_test_uuids_are_fresh():
    uuids = events.TestUuids(None)
    assert uuids("t.py::t") != uuids("t.py::t")
    assert uuids("t.py::t") != events.TestUuids(None)("t.py::t")  # nor across runs
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        uuids("t.py::t"))


def test_every_outcome_maps_to_one_of_the_seeds_four_status_words():
    assert set(protocol.STATUS_OF) == set(protocol.OUTCOMES)
    assert set(protocol.STATUS_OF.values()) == set(protocol.STATUSES) == {
        "passed", "failed", "error", "skipped"}


@pytest.mark.parametrize(("nodeid", "location"), [
    ("test_a.py::test_it", "test_it"),
    ("pkg/test_a.py::TestCls::test_m[1]", "TestCls.test_m[1]"),
    ("test_a.py", "test_a.py"),
])
def test_the_location_from_a_node_id_is_what_item_location_would_say(nodeid, location):
    assert events.location_from_nodeid(nodeid) == location


def test_events_of_one_job_count_seq_from_one_with_fresh_event_ids():
    job = events.Job("job", None)
    made = [job.event("startTestItem") for _ in range(5)]
    assert [e["seq"] for e in made] == [1, 2, 3, 4, 5]
    assert len({e["event_id"] for e in made}) == 5
    assert {e["run_id"] for e in made} == {job.run_id}


@given(st.text(max_size=60), st.sampled_from([None, "gw0", 'g"w\\1']),
       st.floats(min_value=0, max_value=1e4, allow_nan=False))
def test_a_passing_tests_stop_event_is_the_same_text_from_its_fast_path(nodeid, worker, spent):
    """stop_test_item writes a plain pass without a dict: the event must be what the
    general path encodes (capture="all" takes the general path; no sections here), field
    for field and in the same order; only the duration's digits may be written otherwise."""
    result = events.TestResult(nodeid, worker)
    for when in ("setup", "call", "teardown"):
        result.reports.append(pytest.TestReport(nodeid, ("f.py", 0, "t"), {}, "passed", None,
                                                when, duration=spent))
    ref = events.test_ref(nodeid, "u-1")
    lines = []
    for capture in ("failed", "all"):
        job = events.Job("job", None, run_id="r")
        stop = events.stop_test_item(job, result, ref, events.Limits(), now=1.5, capture=capture)
        line, outcome, _ = stop
        assert outcome == "passed"
        lines.append(line)
    fast, general = (json.loads(line) for line in lines)
    del fast["event_id"], general["event_id"]  # random per Job
    assert list(fast.items()) == list(general.items())
    decoded = json.loads(lines[0])
    assert (decoded["test"], decoded["uuid"], decoded["worker"]) == (nodeid, "u-1", worker)
