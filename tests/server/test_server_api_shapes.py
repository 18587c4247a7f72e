"""The read API's answers are exactly their models (api_schema), checked on every read.

rt_api's hooks check every answer the tests read; these tests check the checker:
an answer with a field its model lacks, without one the model has, or with a
value of another type fails.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from rt_api import check_live, check_shape, model_of
from rt_server_events import Run
from sqlalchemy import update

from pytest_rt.server import api_schema
from pytest_rt.server import schema as tables
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio


async def a_job(client: httpx.AsyncClient) -> dict[str, Any]:
    run = Run()
    events = [run.start_run(["a::t", "a::u"]), *run.passing("a::t"), run.start("a::u")]
    assert (await client.post("/loader", json=events)).status_code == 200
    return (await client.get(f"/api/jobs/{run.job_id}")).json()  # type: ignore[no-any-return]


async def test_an_answer_that_drifts_from_its_model_fails(client: httpx.AsyncClient) -> None:
    detail = await a_job(client)
    check_shape(api_schema.JobDetail, detail)
    added, dropped, retyped = (copy.deepcopy(detail) for _ in range(3))
    added["job"]["new_field"] = 1
    del dropped["tests"][0]["sections"]  # has a default: still required in the answer
    retyped["job"]["total"] = "2"
    for answer in (added, dropped, retyped):
        with pytest.raises((AssertionError, ValueError)):
            check_shape(api_schema.JobDetail, answer)


async def test_the_test_client_checks_every_answer(client: httpx.AsyncClient) -> None:
    assert client.event_hooks["response"]
    await a_job(client)
    for path, status in (("/api/jobs", 200), ("/healthz", 200), ("/api/tests/history", 200),
                         ("/api/jobs/none", 404)):
        assert model_of("GET", path, status) is not None
        answer = await client.get(path, params={"nodeid": "a::t"})
        assert answer.status_code == status
    assert model_of("GET", "/api/jobs/x/junit.xml", 200) is None
    assert model_of("GET", "/static/app.js", 200) is None


def test_a_live_message_is_checked_with_and_without_tests() -> None:
    check_live({"kind": "job_deleted", "kinds": ["job_deleted"], "job_id": "j", "job": None})
    with pytest.raises((AssertionError, ValueError)):
        check_live({"kind": "job_gone", "kinds": [], "job_id": "j", "job": None})


async def test_a_row_stored_in_another_shape_reads_in_the_documented_one(
    client: httpx.AsyncClient, store: Store
) -> None:
    # Found by the checks above: a row written by other means answered its
    # collect_errors and markers as objects.
    detail = await a_job(client)
    job_id = detail["job"]["job_id"]
    with store.engine.begin() as conn:
        conn.execute(update(tables.jobs).where(tables.jobs.c.job_id == job_id).values(
            custom_data="[1]", collect_errors='{"nodeid": "x"}'))
        conn.execute(update(tables.tests).where(tables.tests.c.job_id == job_id).values(
            markers='{"a": 1}', rerun_msgs="[1, 2]", sections='{"name": "x"}'))
    detail = (await client.get(f"/api/jobs/{job_id}")).json()  # checked by the hook too
    job, test = detail["job"], detail["tests"][0]
    assert "not the documented shape" in job["custom_data"]["pytest-rt"]
    assert "not the documented shape" in job["collect_errors"][0]["msg"]
    assert "not the documented shape" in test["markers"][0]
    assert "not the documented shape" in test["rerun_msgs"][0]
    assert test["sections"] == []
