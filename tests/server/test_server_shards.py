"""A job of several runs (CI shards sharing --rt-job-id): when it is finished, and a late one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rt_server_events import Run

pytestmark = pytest.mark.anyio


async def send(client: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    answer = await client.post("/loader", json=list(events))
    assert answer.status_code == 200, answer.text


async def job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["job"]
    return found


def shard(job_id: str, name: str, **start: Any) -> tuple[Run, list[dict[str, Any]]]:
    run = Run(job_id)
    return run, [run.start_run([name], **start), *run.passing(name)]


async def test_a_job_of_declared_shards_is_running_until_that_many_runs_have_stopped(
    client: httpx.AsyncClient,
) -> None:
    one, first = shard("sharded", "a::t1", shards=3)
    two, second = shard("sharded", "a::t2", shards=3)
    await send(client, *first, one.stop_run(), *second, two.stop_run())
    found = await job(client, "sharded")
    # Every run heard of has stopped, but the third shard has not started yet.
    assert (found["status"], found["shards"], found["runs"], found["runs_stopped"]) == (
        "running", 3, 2, 2,
    )
    three, third = shard("sharded", "a::t3", shards=3)
    await send(client, *third, three.stop_run())
    found = await job(client, "sharded")
    assert (found["status"], found["runs_stopped"], found["reopened"]) == ("passed", 3, 0)
    assert found["counts"]["passed"] == 3


async def test_a_run_starting_after_its_job_finished_reopens_it_visibly(
    client: httpx.AsyncClient,
) -> None:
    one, first = shard("late", "b::t1")
    await send(client, *first, one.stop_run())
    assert (await job(client, "late"))["status"] == "passed"
    late, events = shard("late", "b::t2")
    await send(client, events[0])
    found = await job(client, "late")
    assert (found["status"], found["reopened"], found["runs"]) == ("running", 1, 2)
    await send(client, *events[1:], late.stop_run(exitstatus=1))
    found = await job(client, "late")
    assert (found["status"], found["reopened"], found["runs_stopped"]) == ("failed", 1, 2)


async def test_a_shard_beyond_the_declared_count_reopens_the_job_too(
    client: httpx.AsyncClient,
) -> None:
    one, first = shard("beyond", "c::t1", shards=1)
    await send(client, *first, one.stop_run())
    assert (await job(client, "beyond"))["status"] == "passed"
    extra, events = shard("beyond", "c::t2", shards=1)
    await send(client, *events)
    found = await job(client, "beyond")
    assert (found["status"], found["reopened"]) == ("running", 1)


async def test_shards_zero_or_absent_declare_nothing(client: httpx.AsyncClient) -> None:
    one, first = shard("zero", "d::t1", shards=0)
    await send(client, *first, one.stop_run())
    found = await job(client, "zero")
    assert (found["status"], found["shards"]) == ("passed", None)
