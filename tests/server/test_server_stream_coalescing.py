"""The event stream coalesces: a burst of results is a few messages, each test's last state in."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
from rt_api import HOOKS, check_live
from rt_server_events import Run
from rt_server_live import LiveServer

from pytest_rt.server.sse import Change, Hub


def read_stream(url: str, into: list[dict[str, Any]], ready: threading.Event) -> None:
    """Collect a dashboard's messages until its job finishes (a slow, shared machine may
    leave the stream quiet for seconds: the read timeout is generous)."""
    with httpx.Client(event_hooks=HOOKS, timeout=httpx.Timeout(10, read=30)) as client, \
            client.stream("GET", url) as stream:
        for line in stream.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            if line.startswith("data: "):
                into.append(json.loads(line[6:]))
                check_live(into[-1])
                if "job_finished" in into[-1]["kinds"]:
                    return


def test_a_burst_of_results_reaches_a_subscriber_as_few_messages_with_every_final_state(
    live_server: LiveServer,
) -> None:
    n = 150
    run = Run()
    names = [f"burst.py::test_{i}" for i in range(n)]
    streams: dict[str, list[dict[str, Any]]] = {"job": [], "list": []}
    readers = []
    for name, query in (("job", f"?job={run.job_id}"), ("list", "")):
        ready = threading.Event()
        reader = threading.Thread(target=read_stream, args=(
            f"{live_server.url}/api/events{query}", streams[name], ready))
        reader.start()
        readers.append(reader)
        assert ready.wait(10), "the event stream did not open"
    with httpx.Client(event_hooks=HOOKS, base_url=live_server.url, timeout=30) as client:
        client.post("/loader", json=run.start_run(names))
        # One POST per start and per stop: 2n writes, each its own change.
        for i, name in enumerate(names):
            client.post("/loader", json=run.start(name))
            outcome = "failed" if i % 10 == 0 else "passed"
            client.post("/loader", json=run.stop(name, outcome))
        client.post("/loader", json=run.stop_run(exitstatus=1))
    for reader in readers:  # each ends on its job's end
        reader.join(30)
        assert not reader.is_alive(), "a stream did not see the job finish"
    mine = streams["job"]
    assert 0 < len(mine) < n // 5, f"{len(mine)} messages for {2 * n + 2} changes"
    latest = {t["nodeid"]: t["status"] for m in mine for t in m["tests"]}
    assert latest == {name: "failed" if i % 10 == 0 else "passed"
                      for i, name in enumerate(names)}
    assert mine[-1]["job"]["status"] == "failed"
    assert mine[-1]["job"]["counts"]["failed"] == n // 10
    assert mine[-1]["job"]["counts"]["passed"] == n - n // 10
    listing = streams["list"]
    assert 0 < len(listing) < n // 5
    assert all("tests" not in m and m["job_id"] == run.job_id for m in listing)
    assert listing[-1]["job"]["counts"] == mine[-1]["job"]["counts"]


def test_one_flush_is_encoded_once_and_its_bytes_shared_by_every_subscriber() -> None:
    async def scenario() -> list[bytes]:
        hub = Hub(ping_seconds=60, flush_seconds=60)
        streams = [hub.stream(None), hub.stream(None), hub.stream("J"), hub.stream("J")]
        for stream in streams:
            assert await anext(stream) == b": connected\n\n"
        hub.publish([
            Change("test_started", "J", '{"n":1}', "t::a", '{"s":"running"}'),
            Change("test_finished", "J", '{"n":2}', "t::a", '{"s":"passed"}'),
            Change("test_finished", "K", '{"k":1}', "t::b", '{"s":"failed"}'),
        ])
        hub.flush()
        got = [await anext(stream) for stream in streams]
        hub.close()
        return got

    got = asyncio.run(scenario())
    assert got[0] is got[1] and got[2] is got[3]  # one bytes object per audience
    listing = [json.loads(line[6:]) for line in got[0].decode().split("\n\n") if line]
    assert listing == [
        {"kind": "test_finished", "kinds": ["test_started", "test_finished"], "job_id": "J",
         "job": {"n": 2}},
        {"kind": "test_finished", "kinds": ["test_finished"], "job_id": "K", "job": {"k": 1}},
    ]
    one_job = json.loads(got[2].decode()[6:])
    assert one_job["job"] == {"n": 2} and one_job["tests"] == [{"s": "passed"}]
