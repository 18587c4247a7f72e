"""Issue 8: reads that stay cheap at scale, silent jobs abandoned, retention and deletion."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from rt_api import HOOKS, asgi_client
from rt_server_events import T0, Run, new_id
from rt_server_live import start_server
from sqlalchemy import event, func, select, text

from pytest_rt.server import schema, writer
from pytest_rt.server import store as store_module
from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.lifecycle import Lifecycle
from pytest_rt.server.sse import Hub
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio


async def send(client: httpx.AsyncClient, *events: dict[str, Any]) -> httpx.Response:
    response = await client.post("/loader", json=list(events))
    assert response.status_code == 200, response.text
    return response


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def rows_of(store: Store, job_id: str) -> dict[str, int]:
    """How many rows each table holds for a job."""
    with store.engine.connect() as conn:
        return {
            table.name: conn.scalar(
                select(func.count()).select_from(table).where(table.c.job_id == job_id)
            ) or 0
            for table in (schema.jobs, schema.runs, schema.tests, schema.seen)
        }


def lifecycle(store: Store, **config: Any) -> Lifecycle:
    return Lifecycle(store, Hub(), ServeConfig(**config))


async def finished_job(client: httpx.AsyncClient, nodeids: list[str], start: float = T0,
                       duration: float = 1.0) -> Run:
    run = Run()
    events = [run.start_run(nodeids, startTime=start)]
    for nodeid in nodeids:
        events += run.passing(nodeid, at=start + 1, duration=duration)
    await send(client, *events, run.stop_run(at=start + 100))
    return run


# -- reads at scale -------------------------------------------------------------------------


async def test_the_jobs_list_costs_the_same_statements_for_1_or_30_running_jobs(
    client: httpx.AsyncClient, store: Store
) -> None:
    """Before issue 8 each running job's ETA scanned its tests' whole history."""

    async def statements_for_list() -> int:
        count = 0

        def counting(*_args: Any) -> None:
            nonlocal count
            count += 1

        event.listen(store.engine, "before_cursor_execute", counting)
        try:
            page = await get(client, "/api/jobs")
        finally:
            event.remove(store.engine, "before_cursor_execute", counting)
        running = [job for job in page["jobs"] if job["status"] == "running"]
        assert running and all(job["eta_seconds"] is not None for job in running)
        return count

    nodeids = [f"a::t{i}" for i in range(5)]
    await finished_job(client, nodeids)
    await send(client, Run().start_run(nodeids, startTime=time.time()))
    one = await statements_for_list()
    for _ in range(29):
        run = Run()
        await send(client, run.start_run(nodeids, startTime=time.time()))
    thirty = await statements_for_list()
    assert thirty == one <= 8


def test_the_front_page_reads_off_one_index_without_sorting(tmp_path: Path) -> None:
    the_store = Store(f"sqlite:///{tmp_path / 'rt.sqlite3'}")
    the_store.close()
    from pytest_rt.server import reads

    with the_store.engine.connect() as conn:
        query = (
            select(schema.jobs)
            .where(schema.jobs.c.rank < reads.DELETING)
            .order_by(schema.jobs.c.rank, schema.jobs.c.sort_time.desc(), schema.jobs.c.job_id)
            .limit(50)
        )
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "rt_jobs_order" in plan and "TEMP B-TREE" not in plan, plan
    the_store.engine.dispose()


async def test_a_jobs_tests_come_in_pages_in_run_order(client: httpx.AsyncClient) -> None:
    run = Run()
    declared = [f"a::t{i:02d}" for i in range(25)]
    # One test the start list never named arrives first: it comes after the declared ones.
    await send(client, run.start("a::extra"), run.start_run(declared))
    await send(client, *run.passing("a::t03"), run.stop("a::t07", "failed"))
    first = await get(client, f"/api/jobs/{run.job_id}", limit=10)
    assert [t["nodeid"] for t in first["tests"]] == declared[:10]
    assert (first["tests_total"], first["offset"], first["limit"]) == (26, 0, 10)
    last = await get(client, f"/api/jobs/{run.job_id}", offset=20, limit=10)
    assert [t["nodeid"] for t in last["tests"]] == [*declared[20:], "a::extra"]
    failed = await get(client, f"/api/jobs/{run.job_id}", status="failed")
    assert [t["nodeid"] for t in failed["tests"]] == ["a::t07"]
    assert failed["tests_total"] == 1
    running = await get(client, f"/api/jobs/{run.job_id}", status="running")
    assert [t["nodeid"] for t in running["tests"]] == ["a::extra"]
    assert (await get(client, f"/api/jobs/{run.job_id}", status="aborted"))["tests"] == []
    everything = await get(client, f"/api/jobs/{run.job_id}")
    assert len(everything["tests"]) == 26 and everything["limit"] == store_module.TESTS_PAGE
    too_many = await client.get(f"/api/jobs/{run.job_id}", params={"limit": 10**6})
    assert too_many.status_code == 422


async def test_a_finished_tests_usual_duration_leaves_out_its_own_job(
    client: httpx.AsyncClient,
) -> None:
    for i, duration in enumerate([1.0, 3.0]):
        await finished_job(client, ["a::t"], start=T0 + 1000 * i, duration=duration)
    last = await finished_job(client, ["a::t"], start=T0 + 3000, duration=50.0)
    test = (await get(client, f"/api/jobs/{last.job_id}"))["tests"][0]
    assert test["duration"] == 50.0
    assert test["history_median"] == 2.0  # of 1 and 3: not of its own 50


async def test_seed_clients_without_durations_still_feed_the_medians(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    start = run.start("a::t", at=T0 + 1)
    stop = run.stop("a::t", at=T0 + 5)
    del stop["duration"]
    await send(client, run.start_run(["a::t"]), start, stop, run.stop_run())
    current = Run()
    await send(client, current.start_run(["a::t"], startTime=time.time()))
    detail = await get(client, f"/api/jobs/{current.job_id}")
    assert detail["tests"][0]["history_median"] == pytest.approx(4.0)
    assert detail["job"]["eta_seconds"] == pytest.approx(4.0)


# -- silent jobs ------------------------------------------------------------------------------


async def test_a_silent_running_job_is_abandoned_below_running_ones_and_revived_by_an_event(
    client: httpx.AsyncClient, store: Store
) -> None:
    done = await finished_job(client, ["a::t"], start=time.time() - 50)
    silent, live = Run(), Run()
    now = time.time()
    await send(client, silent.start_run(["a::1", "a::2"], startTime=now - 10),
               silent.start("a::1", at=now - 9))
    await send(client, live.start_run(["a::1"], startTime=now - 20))
    heard = now
    await lifecycle(store, stale_after=600).sweep(now=heard + 300)  # not yet
    assert (await get(client, f"/api/jobs/{silent.job_id}"))["job"]["status"] == "running"
    # Only the silent one: the other is heard of just before the sweep.
    await send(client, live.start("a::1", at=heard + 1))
    store._jobs.heard[live.job_id] = (heard, heard + 500)
    await lifecycle(store, stale_after=600).sweep(now=heard + 601)
    page = await get(client, "/api/jobs")
    assert [j["job_id"] for j in page["jobs"]] == [live.job_id, silent.job_id, done.job_id]
    job = page["jobs"][1]
    assert job["status"] == "abandoned"
    assert job["eta_seconds"] is None
    assert job["last_heard"] == pytest.approx(heard, abs=5)
    assert job["duration"] == pytest.approx(job["last_heard"] - (now - 10))
    assert job["counts"]["aborted"] == 1 and job["counts"]["not_started"] == 1
    detail = await get(client, f"/api/jobs/{silent.job_id}")
    assert [t["status"] for t in detail["tests"]] == ["aborted", "not_started"]
    assert (await get(client, "/api/jobs", status="abandoned"))["total"] == 1
    # A late event: running again, its test too.
    await send(client, silent.stop("a::2", at=time.time()))
    detail = await get(client, f"/api/jobs/{silent.job_id}")
    assert detail["job"]["status"] == "running"
    assert [t["status"] for t in detail["tests"]] == ["running", "passed"]
    await send(client, silent.stop("a::1"), silent.stop_run())
    assert (await get(client, f"/api/jobs/{silent.job_id}"))["job"]["status"] == "passed"


async def test_a_heartbeat_revives_an_abandoned_job_and_creates_none(
    client: httpx.AsyncClient, store: Store
) -> None:
    run = Run()
    await send(client, run.start_run(["a::1"], startTime=time.time()))
    await lifecycle(store, stale_after=1).sweep(now=time.time() + 10)
    assert (await get(client, f"/api/jobs/{run.job_id}"))["job"]["status"] == "abandoned"
    beat = {"fw": "2", "type": "heartbeat", "job_id": run.job_id, "run_id": run.run_id,
            "custom_id": None, "event_id": new_id(), "time": time.time()}
    answer = await send(client, beat)
    assert answer.headers["x-pytest-rt-heartbeat"] == "30"
    assert answer.json() == {"accepted": 1, "duplicates": 0}
    assert (await get(client, f"/api/jobs/{run.job_id}"))["job"]["status"] == "running"
    stranger = beat | {"job_id": "never-started", "event_id": new_id()}
    await send(client, stranger)
    assert (await client.get("/api/jobs/never-started")).status_code == 404
    assert rows_of(store, run.job_id)["rt_seen"] == 1  # its startTestRun; heartbeats are not kept


async def test_the_last_heard_written_late_is_caught_up_before_a_job_is_called_silent(
    client: httpx.AsyncClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "HEARD_PRECISION", 1000.0)
    run = Run()
    await send(client, run.start_run(["a::1"], startTime=time.time()))
    time.sleep(0.3)
    await send(client, run.start("a::1"))  # heard, but last_heard is not written again
    heard = store._jobs.heard[run.job_id][1]
    await lifecycle(store, stale_after=100).sweep(now=heard + 100 - 0.1)
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["status"] == "running"
    assert job["last_heard"] == pytest.approx(heard)


def test_a_real_server_abandons_a_silent_job_by_itself(sqlite_db: str) -> None:
    server = start_server(ServeConfig(port=0, stale_after=0.3), sqlite_db)
    try:
        run = Run()
        with httpx.Client(event_hooks=HOOKS, base_url=server.url, timeout=10) as client:
            assert client.post("/loader", json=run.start_run(["a::1"])).status_code == 200
            deadline = time.monotonic() + 10
            status = "running"
            while status == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
                status = client.get(f"/api/jobs/{run.job_id}").json()["job"]["status"]
            assert status == "abandoned"
            assert client.post("/loader", json=run.start("a::1")).status_code == 200
            assert client.get(f"/api/jobs/{run.job_id}").json()["job"]["status"] == "running"
    finally:
        server.stop()


# -- retention and deletion --------------------------------------------------------------------


async def test_retention_deletes_old_finished_jobs_with_their_tests_and_event_ids(
    client: httpx.AsyncClient, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny transactions: a job takes several, and the end result is the same.
    monkeypatch.setattr(store_module, "PURGE_ROWS", 3)
    old = await finished_job(client, [f"a::t{i}" for i in range(7)], start=T0)
    recent = await finished_job(client, ["a::t0"], start=time.time() - 3600)
    old_running = Run()
    await send(client, old_running.start_run(["a::t0"], startTime=T0))
    assert rows_of(store, old.job_id) == {"rt_jobs": 1, "rt_runs": 1, "rt_tests": 7, "rt_seen": 16}
    steps = []
    purge = store.purge_step
    monkeypatch.setattr(store, "purge_step", lambda job_id: steps.append(job_id) or purge(job_id))
    await lifecycle(store, stale_after=1e8, retain_days=1).sweep()
    assert rows_of(store, old.job_id) == {"rt_jobs": 0, "rt_runs": 0, "rt_tests": 0, "rt_seen": 0}
    assert steps.count(old.job_id) >= 8  # 7 tests and 16 ids, 3 rows at a time
    assert rows_of(store, recent.job_id)["rt_tests"] == 1
    assert rows_of(store, old_running.job_id)["rt_jobs"] == 1  # still running: kept
    page = await get(client, "/api/jobs")
    assert {j["job_id"] for j in page["jobs"]} == {recent.job_id, old_running.job_id}


async def test_without_retain_days_nothing_is_deleted(
    client: httpx.AsyncClient, store: Store
) -> None:
    old = await finished_job(client, ["a::t"], start=T0)
    await lifecycle(store, stale_after=1e8).sweep()
    assert rows_of(store, old.job_id)["rt_tests"] == 1


async def test_delete_removes_a_job_its_tests_and_event_ids(
    client: httpx.AsyncClient, store: Store
) -> None:
    gone, kept = await finished_job(client, ["a::t"]), await finished_job(client, ["a::t"])
    answer = await client.delete(f"/api/jobs/{gone.job_id}")
    assert answer.status_code == 200 and answer.json() == {"deleted": gone.job_id}
    assert rows_of(store, gone.job_id) == {"rt_jobs": 0, "rt_runs": 0, "rt_tests": 0, "rt_seen": 0}
    assert (await client.get(f"/api/jobs/{gone.job_id}")).status_code == 404
    assert [j["job_id"] for j in (await get(client, "/api/jobs"))["jobs"]] == [kept.job_id]
    assert rows_of(store, kept.job_id)["rt_seen"] == 4
    assert (await client.delete(f"/api/jobs/{gone.job_id}")).status_code == 404
    # Its events sent again (a replay) make it anew, as any event of an unknown job does.
    await send(client, gone.start_run(["a::t"]))
    assert (await client.get(f"/api/jobs/{gone.job_id}")).status_code == 200


async def test_delete_needs_the_token_when_there_is_one(store: Store) -> None:
    app = create_app(ServeConfig(port=0, token="s3cret"), store)
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as client:
        run = Run()
        answer = await client.post("/loader", json=run.start_run(["a::t"]),
                                   headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.delete(f"/api/jobs/{run.job_id}", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
        assert rows_of(store, run.job_id)["rt_jobs"] == 1
        answer = await client.delete(f"/api/jobs/{run.job_id}",
                                     headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 200
        assert rows_of(store, run.job_id)["rt_jobs"] == 0


async def test_a_deletion_cut_short_is_finished_after_a_restart(
    client: httpx.AsyncClient, store: Store, db_url: str
) -> None:
    run = await finished_job(client, ["a::t1", "a::t2"])
    store.writer.submit(store.mark_deleting, [run.job_id]).result()  # then the process dies
    assert (await client.get(f"/api/jobs/{run.job_id}")).status_code == 404
    assert rows_of(store, run.job_id)["rt_tests"] == 2
    restarted = Store(db_url)
    try:
        await lifecycle(restarted, stale_after=1e8).sweep()
        assert rows_of(restarted, run.job_id)["rt_jobs"] == 0
        assert rows_of(restarted, run.job_id)["rt_tests"] == 0
    finally:
        restarted.close()


# -- databases made before issue 8 -------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE rt_jobs (job_id VARCHAR(200) PRIMARY KEY, status VARCHAR(16) NOT NULL,
  env TEXT, custom_id TEXT, custom_data TEXT, created FLOAT NOT NULL, start_time FLOAT,
  stop_time FLOAT, exitstatus INTEGER, interrupted BOOLEAN NOT NULL, xdist BOOLEAN NOT NULL,
  workers INTEGER NOT NULL, collect_errors TEXT);
CREATE INDEX rt_jobs_status ON rt_jobs (status);
CREATE TABLE rt_runs (job_id VARCHAR(200) NOT NULL, run_id VARCHAR(200) NOT NULL,
  started BOOLEAN NOT NULL, stopped BOOLEAN NOT NULL, start_time FLOAT, stop_time FLOAT,
  exitstatus INTEGER, interrupted BOOLEAN, xdist BOOLEAN, workers INTEGER,
  collect_errors TEXT, PRIMARY KEY (job_id, run_id));
CREATE TABLE rt_tests (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id VARCHAR(200) NOT NULL,
  key VARCHAR(1000) NOT NULL, nodeid TEXT NOT NULL, position INTEGER, location TEXT,
  uuid TEXT, description TEXT, file TEXT, markers TEXT, status VARCHAR(16) NOT NULL,
  outcome TEXT, msg TEXT, when_ TEXT, start_time FLOAT, stop_time FLOAT, duration FLOAT,
  worker TEXT, reruns INTEGER NOT NULL, rerun_msgs TEXT,
  CONSTRAINT rt_tests_job_key UNIQUE (job_id, key));
CREATE INDEX rt_tests_history ON rt_tests (key, stop_time);
CREATE INDEX rt_tests_counts ON rt_tests (job_id, status, outcome);
CREATE TABLE rt_seen (event_id VARCHAR(200) NOT NULL PRIMARY KEY, job_id VARCHAR(200) NOT NULL,
  received FLOAT NOT NULL) WITHOUT ROWID;
INSERT INTO rt_jobs VALUES ('old-done', 'passed', NULL, NULL, NULL, 1000, 1000, 1100, 0, 0, 0,
  0, NULL);
INSERT INTO rt_jobs VALUES ('old-live', 'running', NULL, NULL, NULL, 2000, 2000, NULL, NULL, 0,
  0, 0, NULL);
INSERT INTO rt_runs VALUES ('old-done', 'r', 1, 1, 1000, 1100, 0, 0, 0, 0, NULL);
INSERT INTO rt_tests (job_id, key, nodeid, position, status, outcome, start_time, stop_time,
  duration, reruns) VALUES ('old-done', 'a::t', 'a::t', 0, 'passed', 'passed', 1001, 1003,
  2.0, 0), ('old-live', 'a::t', 'a::t', NULL, 'running', NULL, 2001, NULL, NULL, 0);
INSERT INTO rt_seen VALUES ('e1', 'old-done', 1000);
"""


async def test_a_database_from_before_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.executescript(OLD_SCHEMA)
    migrated = Store(f"sqlite:///{path}")
    try:
        app = create_app(ServeConfig(port=0), migrated)
        transport = httpx.ASGITransport(app=app)
        async with asgi_client(transport) as client:
            page = await get(client, "/api/jobs")
            assert [j["job_id"] for j in page["jobs"]] == ["old-live", "old-done"]
            assert page["jobs"][0]["eta_seconds"] == pytest.approx(0.0)  # 2 s, long started
            live = await get(client, "/api/jobs/old-live")
            assert live["tests"][0]["history_median"] == 2.0
            # Dedupe still holds on the old rt_seen, and its rows go with their job.
            dup = {"fw": "2", "type": "startTestRun", "job_id": "old-done", "event_id": "e1"}
            assert (await send(client, dup)).json() == {"accepted": 0, "duplicates": 1}
            assert (await client.delete("/api/jobs/old-done")).status_code == 200
            assert rows_of(migrated, "old-done")["rt_seen"] == 0
        with migrated.engine.connect() as conn:
            indexes = {row[0] for row in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert {"rt_seen_job", "rt_jobs_order", "rt_tests_order"} <= indexes
    finally:
        migrated.close()
    again = Store(f"sqlite:///{path}")  # migrating twice changes nothing
    again.close()


def test_the_options_reach_the_config() -> None:
    from pytest_rt.server.cli import parse_config

    config = parse_config(["--stale-after", "90", "--retain-days", "30"])
    assert (config.stale_after, config.retain_days) == (90.0, 30.0)
    default = parse_config([])
    assert (default.stale_after, default.retain_days) == (600.0, None)
    for bad in (["--stale-after", "0"], ["--retain-days", "-1"], ["--retain-days", "0"]):
        with pytest.raises(SystemExit):
            parse_config(bad)
    assert replace(default, stale_after=5).stale_after == 5
