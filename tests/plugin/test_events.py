"""The pure event model (pytest_rt.events): properties that hold for any input."""

from __future__ import annotations

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
    first = events.test_uuid(nodeid, custom_id)
    assert first == events.test_uuid(nodeid, custom_id)
    assert first.isdigit() and 0 < len(first) <= 31


def test_without_a_custom_id_test_uuids_are_fresh():
    assert events.test_uuid("t.py::t", None) != events.test_uuid("t.py::t", None)


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
