"""Whatever POST /loader accepts, every read endpoint and page answers 2xx for it (issue 8).

Bodies lean on what once broke reads: deep and large custom_data, long text,
many markers and collection errors, NaN-like numbers.
"""

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

from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.store import Store

text = st.text(max_size=30) | st.sampled_from(["x" * 120_000, "<b>&</b>", "\x00\ud800", ""])
leaf = st.none() | st.booleans() | st.integers() | st.floats() | text


def nested(depth: int, inner: Any) -> str:
    # JSON text built without recursion, so any depth can be sent
    return '{"d":' * depth + json.dumps(inner) + "}" * depth


depths = st.integers(0, 40) | st.sampled_from([970, 2000])  # 970: accepted, then reads 500ed
custom_data = st.builds(nested, depths, st.dictionaries(text, leaf, max_size=3)) | st.sampled_from(
    ['{"big":"' + "y" * 70_000 + '"}', "[1]", '"text"', "null"]
)
nodeids = st.sampled_from(["a::t", "a::u", "b.py::T::t[1]"]) | text
markers = st.lists(text, max_size=3) | st.just([f"m{i}" for i in range(1200)])
errors = st.lists(st.fixed_dictionaries({"nodeid": text, "msg": text}), max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    job = draw(st.sampled_from(["j1", "j2"]) | st.text(min_size=1, max_size=10))
    tests = draw(st.lists(st.fixed_dictionaries({"nodeid": nodeids, "markers": markers,
                                                 "description": text}), max_size=3))
    start = json.dumps({"type": "startTestRun", "job_id": job, "tests": tests,
                        "collect_errors": draw(errors), "env": draw(text),
                        "custom_data": "CUSTOM"})
    start = start.replace('"CUSTOM"', draw(custom_data))
    stop = {"type": "stopTestItem", "job_id": job, "test": draw(nodeids),
            "status": draw(st.sampled_from(["passed", "failed", "xfailed"])),
            "msg": draw(text), "rerun_msgs": draw(st.lists(text, max_size=2)),
            "duration": draw(st.floats(allow_nan=False, allow_infinity=False) | st.none())}
    events = [start, json.dumps(stop)]
    return ("[" + ",".join(draw(st.permutations(events))) + "]").encode("utf-8", "surrogatepass")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'props.sqlite3'}")
    yield store
    store.close()


@given(body=bodies())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                            HealthCheck.too_slow]
)
def test_whatever_is_accepted_every_read_and_page_answers_2xx(
    sqlite_store: Store, tmp_path: Path, body: bytes
) -> None:
    for name in ("index.html", "job.html", "test.html"):
        (tmp_path / name).write_text("<p>page</p>")
    app = create_app(ServeConfig(), sqlite_store, static_dir=tmp_path)

    async def post_and_read() -> None:
        transport = httpx.ASGITransport(app=app)
        async with asgi_client(transport) as client:
            response = await client.post(
                "/loader", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code in (200, 400, 413, 422), response.text
            if response.status_code != 200:
                return
            jobs = await client.get("/api/jobs", params={"limit": 1000})
            assert jobs.status_code == 200, jobs.text
            for job in jobs.json()["jobs"]:
                job_id = quote(job["job_id"], safe="")
                detail = await client.get(f"/api/jobs/{job_id}")
                assert detail.status_code == 200, detail.text
                assert (await client.get(f"/jobs/{job_id}")).status_code == 200
                for test in detail.json()["tests"]:
                    history = await client.get(
                        "/api/tests/history", params={"nodeid": test["nodeid"]}
                    )
                    assert history.status_code == 200, history.text
                    page = await client.get("/tests", params={"nodeid": test["nodeid"]})
                    assert page.status_code == 200
            assert (await client.get("/")).status_code == 200

    asyncio.run(post_and_read())
