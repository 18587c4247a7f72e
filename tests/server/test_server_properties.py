"""Arbitrary input never breaks the receiver: hypothesis on /loader, schemathesis on the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_api import asgi_client
from sqlalchemy import func, select

from pytest_rt.server import schema as tables
from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.ingest import IngestError, parse_body
from pytest_rt.server.store import Store

schemathesis = pytest.importorskip("schemathesis")

TYPES = ["startTestRun", "startTestItem", "stopTestItem", "stopTestRun", "startTest", "stopTest"]
KEYS = [
    "fw", "job_id", "custom_id", "event_id", "run_id", "seq", "tests", "env", "startTime",
    "stopTime", "custom_data", "collect_errors", "xdist", "workers", "test", "status", "msg",
    "uuid", "outcome", "when", "duration", "worker", "reruns", "rerun_msgs", "exitstatus",
    "interrupted", "nodeid", "location", "markers", "description", "file",
]
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.sampled_from(["passed", "failed", "error", "skipped", "xfailed", "1538080435.99"])
)
any_json = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    max_leaves=8,
)
small_json = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.sampled_from(["nodeid", "msg", "markers"]), scalars, max_size=3)
    | st.lists(st.dictionaries(st.sampled_from(["nodeid", "msg"]), scalars, max_size=2), max_size=2)
)
events = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES), "job_id": st.sampled_from(["j1", "j2"]) | st.text()},
    optional={key: small_json for key in KEYS if key != "job_id"},
)
bodies = (
    events.map(json.dumps)
    | st.lists(events, max_size=5).map(json.dumps)
    | any_json.map(json.dumps)
    | st.binary(max_size=50).map(lambda b: b.decode("latin-1"))
)


@given(body=bodies)
@settings(max_examples=200, deadline=None)
def test_the_parser_accepts_or_says_why(body: str) -> None:
    try:
        parsed = parse_body(body.encode("utf-8", "surrogatepass"))
    except IngestError as exc:
        assert 400 <= exc.status < 500
        assert exc.message
    else:
        assert isinstance(parsed, list)


def row_counts(store: Store) -> tuple[int, ...]:
    with store.engine.connect() as conn:
        return tuple(
            conn.scalar(select(func.count()).select_from(table)) or 0
            for table in (tables.jobs, tables.runs, tables.tests, tables.seen)
        )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'props.sqlite3'}")
    yield store
    store.close()


@pytest.fixture
def props_app(sqlite_store: Store) -> Any:
    return create_app(ServeConfig(), sqlite_store)


@given(body=bodies)
@settings(
    max_examples=100, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_any_body_gets_an_answer_below_500_and_no_partial_write(
    sqlite_store: Store, props_app: Any, body: str
) -> None:
    app = props_app

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with asgi_client(transport) as client:
            response = await client.post(
                "/loader",
                content=body.encode("utf-8", "surrogatepass"),
                headers={"Content-Type": "application/json"},
            )
            if response.status_code == 200:  # whatever was stored reads back
                jobs = await client.get("/api/jobs", params={"limit": 1000})
                assert jobs.status_code == 200
                for job in jobs.json()["jobs"]:
                    detail = await client.get(f"/api/jobs/{quote(job['job_id'], safe='')}")
                    assert detail.status_code == 200, detail.text
                    for test in detail.json()["tests"][:3]:
                        history = await client.get(
                            "/api/tests/history", params={"nodeid": test["nodeid"]}
                        )
                        assert history.status_code == 200
            return response

    before = row_counts(sqlite_store)
    response = asyncio.run(post())
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code != 200:
        assert "error" in response.json()
        assert row_counts(sqlite_store) == before


def test_no_request_makes_the_api_fail(sqlite_store: Store) -> None:
    # schemathesis calls the app as Host "testserver"
    app = create_app(ServeConfig(allowed_hosts=("testserver",)), sqlite_store)
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    checked = []
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/events":  # a stream: it never ends by itself
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None)
        def call(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text)

        call()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) == 7, checked  # with DELETE /api/jobs/{job_id} and junit.xml
