"""POST /loader: every event and field of docs/protocol.md, the seed's unittest family,
batches, idempotency, arrival order, shards and every rejection."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from rt_api import asgi_client
from rt_server_events import T0, Run

from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}  # POST /loader takes JSON only (415 otherwise)


async def post(client: httpx.AsyncClient, body: Any, **kwargs: Any) -> httpx.Response:
    return await client.post("/loader", json=body, **kwargs)


async def job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def by_nodeid(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"]: t for t in detail["tests"]}


async def test_it_stores_every_field_of_a_pytest_run(client: httpx.AsyncClient) -> None:
    run = Run()
    start = run.start_run(
        ["t.py::test_a", "t.py::TestC::test_b[1]"],
        env="STAGE",
        custom_data={"Git": "dev-branch"},
        collect_errors=[{"nodeid": "broken.py", "msg": "SyntaxError"}],
        xdist=True,
        workers=2,
    )
    start["tests"][0].update(description="Docstring.", markers=["slow", "smoke"])
    start["custom_id"] = "nightly-42"
    events = [
        start,
        run.start("t.py::test_a", at=T0 + 1, worker="gw0", uuid="u-a"),
        run.stop(
            "t.py::test_a", "failed", at=T0 + 3, msg="assert 1 == 2", outcome="failed",
            when="call", duration=1.5, worker="gw0", reruns=2, rerun_msgs=["first", "second"],
        ),
        run.start("t.py::TestC::test_b[1]", at=T0 + 1, worker="gw1"),
        run.stop(
            "t.py::TestC::test_b[1]", "skipped", outcome="xfailed", msg="reason", worker="gw1"
        ),
        run.stop_run(at=T0 + 10, exitstatus=1, interrupted=False),
    ]
    for event in events:
        response = await post(client, event)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0}
        assert response.headers["X-Pytest-RT-Batch"] == "1"

    detail = await job(client, run.job_id)
    the_job = detail["job"]
    assert the_job["status"] == "failed"
    assert the_job["env"] == "STAGE"
    assert the_job["custom_id"] == "nightly-42"
    assert the_job["custom_data"] == {"Git": "dev-branch"}
    assert (the_job["start_time"], the_job["stop_time"], the_job["duration"]) == (T0, T0 + 10, 10)
    assert the_job["xdist"] is True and the_job["workers"] == 2
    assert the_job["exitstatus"] == 1
    assert the_job["collect_errors"] == [{"nodeid": "broken.py", "msg": "SyntaxError"}]
    assert the_job["total"] == 2
    assert the_job["counts"]["failed"] == 1 and the_job["counts"]["skipped"] == 1
    assert the_job["outcome_counts"] == {"xfailed": 1, "xpassed": 0}
    assert the_job["eta_seconds"] is None

    tests = by_nodeid(detail)
    assert [t["nodeid"] for t in detail["tests"]] == ["t.py::test_a", "t.py::TestC::test_b[1]"]
    a = tests["t.py::test_a"]
    assert a["location"] == "test_a" and a["file"] == "t.py"
    assert a["description"] == "Docstring." and a["markers"] == ["slow", "smoke"]
    assert (a["status"], a["outcome"], a["msg"]) == ("failed", "failed", "assert 1 == 2")
    assert (a["start_time"], a["stop_time"], a["duration"]) == (T0 + 1, T0 + 3, 1.5)
    assert (a["worker"], a["reruns"], a["rerun_msgs"]) == ("gw0", 2, ["first", "second"])
    assert a["uuid"] == "u-a"
    b = tests["t.py::TestC::test_b[1]"]
    assert (b["status"], b["outcome"], b["msg"]) == ("skipped", "xfailed", "reason")


async def test_it_accepts_the_seeds_examples_verbatim(client: httpx.AsyncClient) -> None:
    job_id = "815c5b2d-d3b5-4425-91d1-22df2e032be8"
    seed = [
        {"fw": "2", "type": "startTestRun", "env": "STAGE", "startTime": 1538080435.9450781,
         "job_id": job_id,
         "tests": [
             {"location": "test_demo_sample", "nodeid": "test_positive.py::test_demo_sample"}
         ]},
        {"fw": "2", "type": "startTestItem", "job_id": job_id,
         "test": "test_positive.py::test_demo_sample", "startTime": "1538080435.9785562"},
        {"fw": "2", "type": "stopTestItem", "job_id": job_id,
         "test": "test_positive.py::test_demo_sample", "status": "passed", "msg": "",
         "stopTime": "1538080435.996512"},
        {"fw": "2", "type": "stopTestRun", "job_id": job_id, "stopTime": "1538080436.009181"},
    ]
    for event in seed:
        assert (await post(client, event)).status_code == 200
    detail = await job(client, job_id)
    assert detail["job"]["status"] == "passed"
    test = detail["tests"][0]
    assert test["status"] == "passed" and test["outcome"] == "passed"
    assert test["duration"] == pytest.approx(1538080435.996512 - 1538080435.9785562)


async def test_it_accepts_the_unittest_family(client: httpx.AsyncClient) -> None:
    job_id = "07942d9c-03e8-4164-8709-2314119ad60b"
    name = "project.folder.test_something.TestSomething.test_something"
    events = [
        {"type": "startTestRun", "job_id": job_id, "env": "DEV", "startTime": "1536775271.8475103",
         "tests": {"test_something": name, "test_other": "project.folder.t2.T2.test_other"}},
        {"type": "startTest", "job_id": job_id, "test": name, "startTime": "1536775300.8666112"},
        {"type": "stopTest", "job_id": job_id, "test": name, "stopTime": "1536775311.1239314",
         "status": "error",
         "msg": ["<class 'AttributeError'>", "'NoneType' object has no attribute 'location'",
                 "<traceback object at 0x7ffac0a10f89>"]},
        {"fw": "1", "type": "stopTestRun", "job_id": job_id, "stopTime": "1536775312.0"},
    ]
    for event in events:
        response = await post(client, event)
        assert response.status_code == 200, response.text
    detail = await job(client, job_id)
    assert detail["job"]["status"] == "failed"
    assert detail["job"]["env"] == "DEV"
    tests = by_nodeid(detail)
    test = tests[name]
    assert test["location"] == "test_something"
    assert test["status"] == "error"
    assert test["msg"] == (
        "<class 'AttributeError'>\n'NoneType' object has no attribute 'location'\n"
        "<traceback object at 0x7ffac0a10f89>"
    )
    assert tests["project.folder.t2.T2.test_other"]["status"] == "not_started"


async def test_a_batch_is_stored_whole(client: httpx.AsyncClient) -> None:
    run = Run()
    batch = [run.start_run(["a::t1", "a::t2"]), *run.passing("a::t1"), *run.passing("a::t2")]
    response = await post(client, batch)
    assert response.status_code == 200
    assert response.json() == {"accepted": 5, "duplicates": 0}
    assert response.headers["X-Pytest-RT-Batch"] == "1"
    assert (await job(client, run.job_id))["job"]["counts"]["passed"] == 2


async def test_a_batch_with_one_bad_event_stores_nothing(client: httpx.AsyncClient) -> None:
    run = Run()
    batch = [run.start_run(["a::t1"]), *run.passing("a::t1"), run.stop("a::t1", status=3)]
    response = await post(client, batch)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "event 3" in error and "'status'" in error
    assert (await client.get(f"/api/jobs/{run.job_id}")).status_code == 404
    assert (await client.get("/api/jobs")).json()["total"] == 0
    # The same events without the bad one are all new: nothing was half-written.
    assert (await post(client, batch[:3])).json() == {"accepted": 3, "duplicates": 0}


async def test_an_event_sent_twice_is_stored_once(client: httpx.AsyncClient) -> None:
    run = Run()
    start = run.start_run(["a::t1"])
    events = [start, run.start("a::t1"), run.stop("a::t1", "failed")]
    assert (await post(client, events)).json() == {"accepted": 3, "duplicates": 0}
    assert (await post(client, events)).json() == {"accepted": 0, "duplicates": 3}
    assert (await post(client, [events[0], events[0]])).json() == {"accepted": 0, "duplicates": 2}
    # A replayed start after the result does not make the test run again.
    assert (await post(client, events[1])).json() == {"accepted": 0, "duplicates": 1}
    detail = await job(client, run.job_id)
    assert detail["job"]["total"] == 1
    assert detail["tests"][0]["status"] == "failed"


async def test_a_batch_mixing_new_and_stored_events_stores_only_the_new(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    first = [run.start_run(["a::t1", "a::t2"]), run.start("a::t1")]
    assert (await post(client, first)).json() == {"accepted": 2, "duplicates": 0}
    stop = run.stop("a::t1", "failed")
    mixed = [first[1], stop, first[0], stop]
    assert (await post(client, mixed)).json() == {"accepted": 1, "duplicates": 3}
    detail = await job(client, run.job_id)
    assert [t["status"] for t in detail["tests"]] == ["failed", "not_started"]


async def test_duplicates_within_one_batch_count_once(client: httpx.AsyncClient) -> None:
    run = Run()
    start = run.start_run(["a::t1"])
    assert (await post(client, [start, start])).json() == {"accepted": 1, "duplicates": 1}


async def test_events_without_event_id_are_applied(client: httpx.AsyncClient) -> None:
    run = Run()
    events = [run.start_run(["a::t1"]), *run.passing("a::t1")]
    for event in events:
        del event["event_id"], event["run_id"], event["seq"]
    assert (await post(client, events)).json() == {"accepted": 3, "duplicates": 0}
    assert (await post(client, events)).json() == {"accepted": 3, "duplicates": 0}
    assert (await job(client, run.job_id))["job"]["total"] == 1


async def test_a_stop_before_its_start_keeps_the_result(client: httpx.AsyncClient) -> None:
    run = Run()
    start_run = run.start_run(["a::t1", "a::t2"])
    start, stop = run.passing("a::t1", at=T0 + 1, duration=2.0)
    for event in (stop, start, start_run):
        assert (await post(client, event)).status_code == 200
    detail = await job(client, run.job_id)
    test = by_nodeid(detail)["a::t1"]
    assert test["status"] == "passed"
    assert (test["start_time"], test["stop_time"]) == (T0 + 1, T0 + 3)
    assert test["location"] == "t1"
    assert detail["job"]["status"] == "running"
    assert detail["job"]["counts"]["not_started"] == 1


async def test_items_before_start_test_run_create_the_job(client: httpx.AsyncClient) -> None:
    run = Run()
    await post(client, run.start("a::t1"))
    detail = await job(client, run.job_id)
    assert detail["job"]["status"] == "running"
    assert detail["tests"][0]["status"] == "running"
    await post(client, run.start_run(["a::t0", "a::t1"], env="LATE"))
    detail = await job(client, run.job_id)
    assert detail["job"]["env"] == "LATE"
    assert [t["nodeid"] for t in detail["tests"]] == ["a::t0", "a::t1"]
    assert [t["status"] for t in detail["tests"]] == ["not_started", "running"]


async def test_a_result_arriving_after_the_job_ended_updates_it(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    late_stop = run.stop("a::t1", "failed")
    await post(client, [run.start_run(["a::t1"]), run.start("a::t1"), run.stop_run()])
    detail = await job(client, run.job_id)
    assert detail["tests"][0]["status"] == "aborted"
    assert detail["job"]["status"] == "interrupted"
    await post(client, late_stop)
    detail = await job(client, run.job_id)
    assert detail["tests"][0]["status"] == "failed"
    assert detail["job"]["status"] == "failed"


async def test_shards_end_the_job_when_every_run_has_stopped(client: httpx.AsyncClient) -> None:
    one, two = Run(job_id="shared-job"), Run(job_id="shared-job")
    await post(client, [one.start_run(["a::t1"], startTime=T0 + 5), *one.passing("a::t1")])
    await post(client, [two.start_run(["b::t2"], startTime=T0), *two.passing("b::t2")])
    await post(client, one.stop_run(at=T0 + 20))
    detail = await job(client, "shared-job")
    assert detail["job"]["status"] == "running"
    assert detail["job"]["total"] == 2
    await post(client, two.stop_run(at=T0 + 30))
    detail = await job(client, "shared-job")
    assert detail["job"]["status"] == "passed"
    assert (detail["job"]["start_time"], detail["job"]["stop_time"]) == (T0, T0 + 30)


async def test_a_shard_stop_arriving_first_still_counts(client: httpx.AsyncClient) -> None:
    run = Run()
    await post(client, run.stop_run())
    detail = await job(client, run.job_id)
    assert detail["job"]["status"] == "passed"
    await post(client, run.start_run(["a::t1"]))
    assert (await job(client, run.job_id))["job"]["status"] == "passed"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not JSON"),
        (b"", 400, "empty"),
        (b"\xff\xfe\x00", 400, "not JSON"),
        (b'"a string"', 422, "JSON object"),
        (b"[1]", 422, "event 0"),
        (b'{"type": "startTestRun"}', 422, "'job_id'"),
        (b'{"type": "startTestRun", "job_id": 7}', 422, "'job_id'"),
        (b'{"type": "startTestRun", "job_id": ""}', 422, "'job_id'"),
        (b'{"type": "startTestRun", "job_id": "a\\nb"}', 422, "printable"),
        (b'{"job_id": "j"}', 422, "'type'"),
        (b'{"type": "launchRockets", "job_id": "j"}', 422, "unknown event type"),
        (b'{"type": "startTestItem", "job_id": "j"}', 422, "'test'"),
        (b'{"type": "stopTestItem", "job_id": "j", "test": "t", "status": "meh"}', 422, "status"),
        (b'{"type": "startTestItem", "job_id": "j", "test": "t", "startTime": "soon"}', 422,
         "startTime"),
        (b'{"type": "startTestItem", "job_id": "j", "test": "t", "startTime": true}', 422,
         "startTime"),
        (b'{"type": "stopTestRun", "job_id": "j", "stopTime": NaN}', 422, "finite"),
        (b'{"type": "stopTestRun", "job_id": "j", "stopTime": 1e300}', 422, "between"),
        (b'{"type": "stopTestItem", "job_id": "j", "test": "t", "status": "passed",'
         b' "duration": -1e300}', 422, "between"),
        (b'{"type": "stopTestRun", "job_id": "j", "exitstatus": 1e400}', 422, "exitstatus"),
        (b'{"type": "stopTestRun", "job_id": "j", "exitstatus": 99999999999999}', 422,
         "exitstatus"),
        (b'{"type": "startTestRun", "job_id": "j", "tests": [{"location": "x"}]}', 422,
         "tests[0]"),
        (b'{"type": "startTestRun", "job_id": "j", "custom_data": [1]}', 422, "custom_data"),
        (b'{"type": "startTestRun", "job_id": "j", "xdist": "yes"}', 422, "xdist"),
        (b'{"type": "stopTestItem", "job_id": "j", "test": "t", "status": "passed", "msg": [1]}',
         422, "msg"),
    ],
)
async def test_bad_input_gets_a_4xx_saying_what_is_wrong(
    client: httpx.AsyncClient, body: bytes, status: int, words: str
) -> None:
    response = await client.post("/loader", content=body, headers=JSON)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert (await client.get("/api/jobs")).json()["total"] == 0


async def test_unknown_keys_are_ignored(client: httpx.AsyncClient) -> None:
    run = Run()
    event = run.start_run(["a::t1"], brand_new_field={"x": [1, 2]}, fw="3")
    assert (await post(client, event)).status_code == 200


async def test_text_that_a_database_would_refuse_is_stored_cleaned(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    body = json.dumps([run.start_run(["a::t\u0000"]), run.stop("a::t\u0000", msg="x\ud800y")])
    assert (await client.post("/loader", content=body, headers=JSON)).status_code == 200
    test = (await job(client, run.job_id))["tests"][0]
    assert test["nodeid"] == "a::t\ufffd"
    assert test["msg"] == "x?y"


async def test_a_very_long_env_is_stored_and_found(client: httpx.AsyncClient) -> None:
    run = Run()
    env = "staging-" * 2000
    assert (await post(client, run.start_run(["a::t"], env=env))).status_code == 200
    found = await client.get("/api/jobs", params={"env": env})
    assert [j["job_id"] for j in found.json()["jobs"]] == [run.job_id]


async def test_a_very_long_nodeid_is_stored(client: httpx.AsyncClient) -> None:
    run = Run()
    nodeid = "a.py::test[" + "é" * 5000 + "]"
    assert (await post(client, [run.start_run([nodeid]), *run.passing(nodeid)])).status_code == 200
    assert (await job(client, run.job_id))["tests"][0]["nodeid"] == nodeid
    history = await client.get("/api/tests/history", params={"nodeid": nodeid})
    assert len(history.json()["results"]) == 1


async def test_a_body_over_the_limit_gets_413(store: Store) -> None:
    app = create_app(ServeConfig(max_body=1000), store)
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as client:
        run = Run()
        big = run.start_run([f"a::t{i}" for i in range(100)])
        response = await post(client, big)
        assert response.status_code == 413
        assert "1000 bytes" in response.json()["error"]

        async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b" " * 500

        response = await client.post("/loader", content=chunks(), headers=JSON)
        assert response.status_code == 413
        assert (await post(client, run.start_run(["a::t1"]))).status_code == 200


async def test_a_token_is_required_when_configured(store: Store) -> None:
    app = create_app(ServeConfig(token="s3cret"), store)
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as client:
        event = Run().start_run(["a::t1"])
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                        {"Authorization": "Basic s3cret"}):
            response = await post(client, event, headers=headers)
            assert response.status_code == 401, headers
            assert "token" in response.json()["error"]
            assert "s3cret" not in response.text
        ok = await post(client, event, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert ok.headers["X-Pytest-RT-Batch"] == "1"


async def test_ids_with_a_lone_surrogate_are_taken_as_cleaned_text(
    client: httpx.AsyncClient,
) -> None:
    """Regression (review of the pydantic models): a length constraint on the ids made
    pydantic-core refuse a lone surrogate with a 422 in its own words; the hand validator
    took the cleaned text, as every other text field does."""
    body = json.dumps({"type": "startTestItem", "job_id": "j\udcff", "event_id": "e\udcff",
                       "run_id": "r\udcff", "test": "t.py::t", "startTime": str(T0)})
    response = await client.post("/loader", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    listed = (await client.get("/api/jobs")).json()["jobs"]
    assert [j["job_id"] for j in listed] == ["j?"]  # as clean_text stores any text


@pytest.mark.parametrize(("job_id", "why"), [
    ("", "is empty"),
    ("j" * 201, "is longer than 200 characters"),
])
async def test_an_empty_or_overlong_job_id_is_refused_naming_it(
    client: httpx.AsyncClient, job_id: str, why: str,
) -> None:
    response = await post(client, {"type": "stopTestRun", "job_id": job_id})
    assert response.status_code == 422
    assert "job_id" in response.text and why in response.text, response.text
