"""The read API: shapes, job status rules, ETA, history and flakiness, pages and headers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rt_api import asgi_client
from rt_server_events import T0, Run

from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio

JOB_KEYS = {
    "job_id", "status", "env", "custom_id", "custom_data", "start_time", "stop_time",
    "duration", "total", "counts", "outcome_counts", "exitstatus", "xdist", "workers",
    "collect_errors", "eta_seconds", "last_heard", "shards", "runs", "runs_stopped", "reopened",
    "project", "rootdir", "ci",
}
TEST_KEYS = {
    "nodeid", "location", "uuid", "description", "file", "markers", "status", "outcome",
    "msg", "start_time", "stop_time", "duration", "worker", "reruns", "rerun_msgs",
    "history_median", "sections", "change",
}
COUNT_KEYS = {"passed", "failed", "error", "skipped", "running", "not_started", "aborted"}


async def send(client: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    response = await client.post("/loader", json=list(events))
    assert response.status_code == 200, response.text


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def finished_job(
    client: httpx.AsyncClient,
    results: dict[str, str],
    start: float = T0,
    env: str | None = None,
    **stop_fields: Any,
) -> Run:
    """A whole run: each nodeid gets `results[nodeid]` (a status, or 'outcome:status')."""
    run = Run()
    events = [run.start_run(list(results), env=env, startTime=start)]
    for i, (nodeid, result) in enumerate(results.items()):
        outcome, _, status = result.partition(":")
        status = status or outcome
        events += [
            run.start(nodeid, at=start + i),
            run.stop(nodeid, status, outcome=outcome, at=start + i + 1),
        ]
    events.append(run.stop_run(at=start + 100, **stop_fields))
    await send(client, *events)
    return run


async def test_the_jobs_list_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    run = await finished_job(client, {"a::t1": "passed", "a::t2": "failed"}, env="DEV")
    page = await get(client, "/api/jobs")
    assert set(page) == {"jobs", "total", "limit", "offset"}
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    job = page["jobs"][0]
    assert set(job) == JOB_KEYS
    assert job["job_id"] == run.job_id
    assert set(job["counts"]) == COUNT_KEYS
    assert job["counts"]["passed"] == 1 and job["counts"]["failed"] == 1
    detail = await get(client, f"/api/jobs/{run.job_id}")
    assert set(detail) == {"job", "tests", "tests_total", "offset", "limit", "changes"}
    assert all(set(test) >= TEST_KEYS for test in detail["tests"])


async def test_running_jobs_come_first_then_the_newest(client: httpx.AsyncClient) -> None:
    old = await finished_job(client, {"a::t": "passed"}, start=T0)
    new = await finished_job(client, {"a::t": "passed"}, start=T0 + 1000)
    running = Run()
    await send(client, running.start_run(["a::t"], startTime=T0 - 5000))
    page = await get(client, "/api/jobs")
    assert [j["job_id"] for j in page["jobs"]] == [running.job_id, new.job_id, old.job_id]
    page = await get(client, "/api/jobs", limit=1, offset=1)
    assert [j["job_id"] for j in page["jobs"]] == [new.job_id]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)


async def test_jobs_filter_by_status_and_env(client: httpx.AsyncClient) -> None:
    await finished_job(client, {"a::t": "passed"}, env="DEV")
    failed = await finished_job(client, {"a::t": "failed"}, env="STAGE", exitstatus=1)
    page = await get(client, "/api/jobs", status="failed")
    assert [j["job_id"] for j in page["jobs"]] == [failed.job_id]
    page = await get(client, "/api/jobs", env="STAGE")
    assert [j["job_id"] for j in page["jobs"]] == [failed.job_id]
    assert (await get(client, "/api/jobs", env="PROD"))["total"] == 0


@pytest.mark.parametrize(
    "params", [{"status": "bogus"}, {"limit": 0}, {"limit": "x"}, {"offset": -1}]
)
async def test_bad_query_parameters_get_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/api/jobs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]


async def test_a_job_id_may_hold_slashes_and_odd_characters(client: httpx.AsyncClient) -> None:
    run = Run(job_id="ci/build 42?#%")
    await send(client, run.start_run(["a::t"]))
    detail = await get(client, "/api/jobs/ci%2Fbuild%2042%3F%23%25")
    assert detail["job"]["job_id"] == "ci/build 42?#%"


async def test_an_unknown_job_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]


@pytest.mark.parametrize(
    ("results", "stop_fields", "status"),
    [
        ({"a::t1": "passed", "a::t2": "skipped"}, {}, "passed"),
        ({"a::t1": "xfailed:skipped", "a::t2": "xpassed:passed"}, {}, "passed"),
        ({"a::t1": "passed", "a::t2": "failed"}, {"exitstatus": 1}, "failed"),
        ({"a::t1": "error"}, {"exitstatus": 1}, "failed"),
        ({"a::t1": "failed"}, {"exitstatus": 1, "interrupted": True}, "failed"),  # -x
        ({"a::t1": "interrupted:error"}, {"exitstatus": 2, "interrupted": True}, "interrupted"),
        ({"a::t1": "passed"}, {"exitstatus": 2}, "interrupted"),
        ({}, {"exitstatus": 5}, "passed"),
        ({"a::t1": "passed"}, {"exitstatus": 3}, "failed"),
        ({}, {"exitstatus": 2, "collect_errors": [{"nodeid": "x.py", "msg": "E"}]}, "failed"),
    ],
)
async def test_a_finished_jobs_status_follows_the_rules(
    client: httpx.AsyncClient, results: dict[str, str], stop_fields: dict[str, Any], status: str
) -> None:
    run = await finished_job(client, results, **stop_fields)
    assert (await get(client, f"/api/jobs/{run.job_id}"))["job"]["status"] == status


async def test_tests_left_behind_by_an_ended_job_are_aborted_or_not_started(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    await send(
        client,
        run.start_run(["a::done", "a::cut", "a::never"]),
        *run.passing("a::done"),
        run.start("a::cut"),
    )
    detail = await get(client, f"/api/jobs/{run.job_id}")
    assert [t["status"] for t in detail["tests"]] == ["passed", "running", "not_started"]
    assert detail["job"]["counts"]["running"] == 1
    await send(client, run.stop_run(exitstatus=0))
    detail = await get(client, f"/api/jobs/{run.job_id}")
    assert [t["status"] for t in detail["tests"]] == ["passed", "aborted", "not_started"]
    job = detail["job"]
    assert job["status"] == "interrupted"
    assert (job["counts"]["aborted"], job["counts"]["not_started"]) == (1, 1)


async def test_a_running_jobs_duration_grows_from_its_start(client: httpx.AsyncClient) -> None:
    run = Run()
    await send(client, run.start_run(["a::t"], startTime=time.time() - 30))
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["status"] == "running"
    assert 29 < job["duration"] < 60
    assert job["stop_time"] is None


async def test_eta_uses_the_median_of_the_last_three_durations(
    client: httpx.AsyncClient,
) -> None:
    for i, duration in enumerate([100.0, 1.0, 5.0, 3.0]):  # the 100 s run is too old to count
        run = Run()
        start = T0 + 1000 * i
        await send(
            client,
            run.start_run(["a::slow"], startTime=start),
            *run.passing("a::slow", at=start + 1, duration=duration),
            run.stop_run(at=start + 200),
        )
    now = time.time()
    current = Run()
    await send(client, current.start_run(["a::slow", "a::new"], startTime=now))
    detail = await get(client, f"/api/jobs/{current.job_id}")
    tests = {t["nodeid"]: t for t in detail["tests"]}
    assert tests["a::slow"]["history_median"] == 3.0
    assert tests["a::new"]["history_median"] is None
    # a::new has no history and no test of this job has finished: no estimate yet.
    assert detail["job"]["eta_seconds"] is None
    await send(client, *current.passing("a::new", at=now, duration=0.5))
    job = (await get(client, f"/api/jobs/{current.job_id}"))["job"]
    assert job["eta_seconds"] == pytest.approx(3.0)


async def test_eta_falls_back_to_this_jobs_mean_and_shares_among_workers(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    now = time.time()
    await send(
        client,
        run.start_run(["a::1", "a::2", "a::3", "a::4"], startTime=now, xdist=True, workers=2),
        *run.passing("a::1", at=now, duration=2.0),
        *run.passing("a::2", at=now, duration=4.0),
    )
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["eta_seconds"] == pytest.approx((3.0 + 3.0) / 2)


async def test_history_lists_a_tests_results_newest_first(client: httpx.AsyncClient) -> None:
    first = await finished_job(client, {"a::t": "passed"}, start=T0, env="DEV")
    second = await finished_job(client, {"a::t": "failed"}, start=T0 + 1000, exitstatus=1)
    history = await get(client, "/api/tests/history", nodeid="a::t")
    assert history["nodeid"] == "a::t"
    assert [r["job_id"] for r in history["results"]] == [second.job_id, first.job_id]
    assert set(history["results"][0]) == {
        "job_id", "env", "status", "outcome", "msg", "start_time", "stop_time", "duration",
        "project", "branch", "commit", "build", "custom_id",
    }
    assert history["results"][1]["env"] == "DEV"
    assert history["results"][0]["status"] == "failed"
    assert history["flaky"] is False
    limited = await get(client, "/api/tests/history", nodeid="a::t", limit=1)
    assert len(limited["results"]) == 1
    assert (await get(client, "/api/tests/history", nodeid="none"))["results"] == []


async def test_a_test_that_flips_twice_is_flaky(client: httpx.AsyncClient) -> None:
    for i, status in enumerate(["passed", "failed", "skipped", "passed"]):
        await finished_job(client, {"a::flaky": status, "a::steady": "passed"}, start=T0 + i)
    assert (await get(client, "/api/tests/history", nodeid="a::flaky"))["flaky"] is True
    assert (await get(client, "/api/tests/history", nodeid="a::steady"))["flaky"] is False


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    assert await get(client, "/healthz") == {"status": "ok"}
    paths = (await get(client, "/openapi.json"))["paths"]
    assert {"/loader", "/api/jobs", "/api/jobs/{job_id}", "/api/tests/history",
            "/api/events", "/healthz"} <= set(paths)


async def test_pages_are_served_with_security_headers(
    tmp_path: Path, store: Store
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>jobs</title>")
    (tmp_path / "job.html").write_text("<!doctype html><title>job</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    app = create_app(ServeConfig(), store, static_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as client:
        for url, title in (("/", "jobs"), ("/jobs/some-job", "job")):
            response = await client.get(url)
            assert response.status_code == 200
            assert f"<title>{title}</title>" in response.text
            assert response.headers["content-type"].startswith("text/html")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "script-src 'self'" in response.headers["content-security-policy"]
        script = await client.get("/static/app.js")
        assert script.status_code == 200
        assert script.headers["cache-control"] == "no-cache"
        # Files the dashboard does not ship: 404, never a crash.
        assert (await client.get("/tests", params={"nodeid": "a::t"})).status_code == 404
        assert (await client.get("/static/missing.js")).status_code == 404

    app = create_app(ServeConfig(), store, static_dir=tmp_path / "absent")
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as client:
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/static/app.js")).status_code == 404
