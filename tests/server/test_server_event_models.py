"""The event models: what they take, and what they say when they refuse.

Invariant, for a well-formed event (or batch) with a few fields set to anything:
it is taken, or refused with a 4xx whose message names a field that was
changed. And every event of docs/protocol.md's kinds, as the plugin and the
seed's clients send them, is taken.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rt_server_events import Run

from pytest_rt import protocol
from pytest_rt.server import ingest
from pytest_rt.server.ingest import IngestError, parse_body

text = st.text(max_size=8) | st.sampled_from(["", " ", "\x00", "\ud800x", "x" * 1200])
scalar = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | text
    | st.sampled_from(["1.5", "1e400", "passed", "xfailed", "https://ci/1", "ftp://x"])
)
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["nodeid", "msg", "name", "text", "location", "markers",
                         *protocol.CI_FIELDS]) | text, inner, max_size=3),
    max_leaves=6,
)


def good_events() -> list[dict[str, Any]]:
    run = Run()
    return [
        run.start_run(["a::t", "b.py::T::u"], project="p", shards=2,
                      custom_data={"Git": "x"}, collect_errors=[{"nodeid": "c", "msg": "m"}],
                      ci={"provider": "github", "build": 7, "build_url": "https://ci/7"}),
        run.start("a::t", worker="gw0"),
        run.stop("a::t", "failed", msg="boom", rerun_msgs=["r"], reruns=1,
                 sections=[{"name": "Captured stdout call", "text": "out"}]),
        run.stop_run(exitstatus=1, interrupted=False),
        {**run.event(protocol.HEARTBEAT), "time": 1.0},
        {"type": "startTestRun", "job_id": "u", "tests": {"test_m": "pkg.mod.C.test_m"}},
        {"type": "startTest", "job_id": "u", "test": "pkg.mod.C.test_m", "startTime": 1},
        {"type": "stopTest", "job_id": "u", "test": "pkg.mod.C.test_m", "status": "error",
         "msg": ["a", "b"], "stopTime": "2.5"},
    ]


@st.composite
def changed_events(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    """Good events with a few fields set to anything, top-level or one level down (a
    test entry, ci, a section, a collection error); and the top-level fields changed."""
    events = draw(st.lists(st.sampled_from(good_events()), min_size=1, max_size=3))
    changed: set[str] = set()
    for event in events:
        for _ in range(draw(st.integers(0, 3))):
            key = draw(st.sampled_from(sorted(event)))
            changed.add(key)
            inner = event[key]
            if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                inner = inner[0]
            if isinstance(inner, dict) and draw(st.booleans()):
                inner[draw(st.sampled_from(sorted(inner) or ["x"]))] = draw(value)
            else:
                event[key] = draw(value)
    batch = draw(st.booleans()) or len(events) > 1
    return json.dumps(events if batch else events[0]).encode(), changed


@given(case=changed_events())
@example(case=(json.dumps(good_events()).encode(), set()))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_changed_event_is_taken_or_refused_naming_a_changed_field(
    case: tuple[bytes, set[str]],
) -> None:
    body, changed = case
    try:
        records = parse_body(body)
    except IngestError as exc:
        assert exc.status == 422, exc.message
        if "type" not in changed:  # another type reads other fields
            assert any(f"field '{key}" in exc.message for key in changed), exc.message
    else:
        assert len(records) == (len(json.loads(body)) if body.startswith(b"[") else 1)


def test_every_kind_of_event_is_taken() -> None:
    records = parse_body(json.dumps(good_events()).encode())
    assert [type(r).__name__ for r in records] == [
        "RunStart", "ItemStart", "ItemStop", "RunStop", "Heartbeat",
        "RunStart", "ItemStart", "ItemStop",
    ]
    assert records[7].msg == "a\nb" and records[7].stop_time == 2.5  # type: ignore[union-attr]
    assert records[0].ci["build"] == "7"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_openapi_describes_post_loader_with_the_models(
    client: httpx.AsyncClient, app: Any
) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/loader"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    named = set(re.findall(r"#/components/schemas/(\w+)", json.dumps(body)))
    models = {"StartRunEvent", "StartItemEvent", "StopItemEvent", "StopRunEvent",
              "HeartbeatEvent"}
    assert named == models
    for name in models:
        properties = spec["components"]["schemas"][name]["properties"]
        assert properties.keys() == getattr(ingest, name).model_fields.keys()
    # Routed once: LoaderFastPath answers; no route of the router does.
    assert not [r for r in app.routes if getattr(r, "path", None) == "/loader"]
    assert (await client.post("/loader", json=good_events())).status_code == 200
