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

from pytest_rt.server import api_schema

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
