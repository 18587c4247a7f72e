"""Many ``pytest-rt serve`` processes on one PostgreSQL give what one process gives.

Real processes on a real PostgreSQL (PYTEST_RT_TEST_PG_URL): the race of two shards'
``stopTestRun`` taken by two receivers at the same moment, a run's events split at
random over three receivers and compared with one receiver's store of the same events,
a receiver killed in the middle of a run, and a dashboard on one receiver following
the POSTs another one takes.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rt_api import HOOKS, check_live
from rt_receivers import Receiver, pg_schema, receivers, wait_until
from rt_server_events import T0, Run

from pytest_rt.server.ingest import parse_body
from pytest_rt.server.notify import MAX_PAYLOAD, payloads
from pytest_rt.server.store import Store

pytestmark = pytest.mark.postgres
JOBS = 200


@pytest.fixture(scope="module")
def shared_db() -> Iterator[str]:
    with pg_schema() as url:
        yield url


@pytest.fixture(scope="module")
def three(shared_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Receiver]]:
    with receivers(shared_db, tmp_path_factory.mktemp("receivers"), 3) as started:
        yield started


def post(client: httpx.Client, events: list[dict[str, Any]]) -> None:
    answer = client.post("/loader", json=events)
    assert answer.status_code == 200, answer.text


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/jobs/{job_id}", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    detail: dict[str, Any] = answer.json()
    return detail


def test_two_receivers_each_taking_one_shards_stop_at_the_same_moment_finish_every_job(
    three: list[Receiver],
) -> None:
    """The race of issue 9: before the job rows were locked, 188 of 200 stayed running."""
    a, b = three[0], three[1]
    shards = []
    for i in range(JOBS):
        job_id = f"race-{i}"
        pair = (Run(job_id), Run(job_id))
        failing = i % 2 == 0  # half the jobs fail in one shard: both outcomes are checked
        shards.append((job_id, pair, failing))
    with httpx.Client(event_hooks=HOOKS, base_url=a.url, timeout=30) as client_a, \
            httpx.Client(event_hooks=HOOKS, base_url=b.url, timeout=30) as client_b:
        events: list[dict[str, Any]] = []
        for job_id, (one, two), failing in shards:
            events += [one.start_run([f"{job_id}::t1"], shards=2),
                       two.start_run([f"{job_id}::t2"], shards=2)]
            events += one.passing(f"{job_id}::t1")
            events += [two.start(f"{job_id}::t2"),
                       two.stop(f"{job_id}::t2", "failed" if failing else "passed")]
        for i in range(0, len(events), 400):
            post(client_a if i % 800 else client_b, events[i : i + 400])
        # Each job's two stops, one to each receiver, released together.
        barrier = threading.Barrier(2, timeout=30)
        errors: list[BaseException] = []

        def stop_all(client: httpx.Client, which: int) -> None:
            try:
                for _, pair, _ in shards:
                    stop = pair[which].stop_run()
                    barrier.wait()
                    post(client, [stop])
            except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
                errors.append(exc)
                barrier.abort()

        threads = [threading.Thread(target=stop_all, args=(client_a, 0)),
                   threading.Thread(target=stop_all, args=(client_b, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        statuses = {job_id: job(client_a, job_id)["job"] for job_id, _, _ in shards}
    wrong = {
        job_id: (found["status"], found["runs_stopped"])
        for (job_id, _, failing), found in zip(shards, statuses.values(), strict=True)
        if found["status"] != ("failed" if failing else "passed") or found["runs_stopped"] != 2
    }
    assert not wrong, f"{len(wrong)} of {JOBS} jobs wrong: {dict(list(wrong.items())[:5])}"


def scenario(rng: random.Random) -> list[dict[str, Any]]:
    """Three jobs' events: a job of two shards, one with a late third run (no shards:
    reopened), one with a failure, retries (the same event twice) and a heartbeat."""
    events: list[dict[str, Any]] = []
    tag = rng.randrange(10**9)
    sharded = f"split-{tag}-sharded"
    for run in (Run(sharded), Run(sharded)):
        names = [f"{sharded}::{run.run_id[:6]}::t{i}" for i in range(rng.randint(3, 12))]
        events.append(run.start_run(names, shards=2, startTime=T0))
        for i, name in enumerate(names):
            status = rng.choice(["passed", "passed", "skipped", "failed"])
            events += [run.start(name, at=T0 + i), run.stop(name, status, at=T0 + i + 0.5)]
        events.append(run.stop_run(at=T0 + 50))
    late = f"split-{tag}-late"
    for run in (Run(late), Run(late), Run(late)):
        names = [f"{late}::{run.run_id[:6]}::t{i}" for i in range(rng.randint(1, 6))]
        events.append(run.start_run(names))
        for name in names:
            events += run.passing(name)
        events.append(run.stop_run(exitstatus=rng.choice([0, 0, 1])))
    plain = Run(f"split-{tag}-plain")
    names = [f"p::t{i}" for i in range(20)]
    events.append(plain.start_run(names, custom_data={"Git": "dev"}))
    for name in names:
        events += [plain.start(name), plain.stop(name, rng.choice(["passed", "error"]),
                                                msg=f"m {name}", reruns=rng.randint(0, 2))]
    events.append(plain.event("heartbeat"))
    events.append(plain.stop_run(collect_errors=[{"nodeid": "p/x.py", "msg": "boom"}]))
    events += rng.sample(events, len(events) // 5)  # resent: duplicates by event_id
    return events


def comparable(detail: dict[str, Any]) -> dict[str, Any]:
    """A job page without what depends on when it was read or on arrival order.

    ``reopened`` counts what dashboards saw (a run that starts after the job finished):
    by definition it depends on the order the events arrived in. History medians
    depend on the order other jobs' results came in.
    """
    job_ = {k: v for k, v in detail["job"].items() if k not in ("last_heard", "reopened")}
    tests = sorted(
        ({k: v for k, v in t.items() if k != "history_median"} for t in detail["tests"]),
        key=lambda t: t["nodeid"],
    )
    return {"job": job_, "tests": tests}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_runs_events_split_at_random_over_three_receivers_store_what_one_receiver_stores(
    three: list[Receiver], tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    events = scenario(rng)
    shuffled = events[:]
    rng.shuffle(shuffled)  # any arrival order, as retries and replays make it
    batches: list[list[dict[str, Any]]] = []
    while shuffled:
        size = rng.choice([1, 1, 2, 5, 20])
        batches.append(shuffled[:size])
        del shuffled[:size]
    # Four clients at once, each batch to a receiver picked at random.
    lanes: list[list[tuple[int, list[dict[str, Any]]]]] = [[] for _ in range(4)]
    for i, batch in enumerate(batches):
        lanes[i % 4].append((rng.randrange(3), batch))
    errors: list[BaseException] = []

    def send(lane: list[tuple[int, list[dict[str, Any]]]]) -> None:
        clients = [httpx.Client(event_hooks=HOOKS, base_url=r.url, timeout=30) for r in three]
        try:
            for which, batch in lane:
                post(clients[which], batch)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=send, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors

    one = Store(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    try:
        for event in events:  # one receiver, in the order produced
            one.write(parse_body(json.dumps(event).encode()))
        job_ids = sorted({e["job_id"] for e in events})
        url = three[rng.randrange(3)].url
        with httpx.Client(event_hooks=HOOKS, base_url=url, timeout=30) as client:
            for job_id in job_ids:
                expected = one.job_detail(job_id, limit=10_000)
                assert expected is not None
                assert comparable(job(client, job_id)) == comparable(expected), job_id
    finally:
        one.close()


def test_a_receiver_killed_in_the_middle_of_a_run_loses_nothing_it_acknowledged(
    shared_db: str, tmp_path: Path
) -> None:
    run = Run("killed-mid-run")
    names = [f"k::t{i}" for i in range(600)]
    events = [run.start_run(names)]
    for name in names:
        events += run.passing(name)
    events.append(run.stop_run())
    acknowledged: list[dict[str, Any]] = []
    with receivers(shared_db, tmp_path, 2) as (doomed, survivor):
        stop = threading.Event()

        def send() -> None:
            # The plugin's way: in order, one batch after the other, until one fails.
            with httpx.Client(event_hooks=HOOKS, base_url=doomed.url, timeout=10) as client:
                for i in range(0, len(events), 3):
                    if stop.is_set():
                        return
                    try:
                        answer = client.post("/loader", json=events[i : i + 3])
                    except httpx.HTTPError:
                        return
                    if answer.status_code != 200:
                        return
                    acknowledged.extend(events[i : i + 3])

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: len(acknowledged) >= 300, 60, "the receiver took too little")
        doomed.kill()
        stop.set()
        sender.join(30)
        assert 300 <= len(acknowledged) < len(events)
        with httpx.Client(event_hooks=HOOKS, base_url=survivor.url, timeout=30) as client:
            stored = {t["nodeid"]: t["status"] for t in job(client, run.job_id)["tests"]}
            for event in acknowledged:
                if event["type"] == "stopTestItem":
                    assert stored[event["test"]] == "passed", event["test"]
            # The client retries from its last acknowledged batch onto the other receiver
            # (the last batch again, too: it may have been stored without its answer).
            post(client, events[len(acknowledged) - 3 :])
            final = job(client, run.job_id)
    assert final["job"]["status"] == "passed"
    assert final["job"]["counts"]["passed"] == len(names)


def sse_messages(url: str, into: list[dict[str, Any]], ready: threading.Event,
                 done: threading.Event, job: str = "") -> None:
    """Collect a dashboard's messages until ``done`` (then the read times out: no more)."""
    query = f"?job={job}" if job else ""
    with httpx.Client(event_hooks=HOOKS, timeout=httpx.Timeout(10, read=2.5)) as client, \
            client.stream("GET", f"{url}/api/events{query}") as stream:
        try:
            for line in stream.iter_lines():
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data: "):
                    into.append(json.loads(line[6:]))
                    check_live(into[-1])
                if done.is_set():
                    return
        except httpx.ReadTimeout:
            if not done.is_set():
                raise


def test_a_dashboard_on_one_receiver_sees_within_a_second_what_another_receiver_took(
    three: list[Receiver],
) -> None:
    watched, taking = three[0], three[2]
    seen: list[dict[str, Any]] = []
    ready, done = threading.Event(), threading.Event()
    reader = threading.Thread(target=sse_messages,
                              args=(watched.url, seen, ready, done, "fan-out"))
    reader.start()
    try:
        assert ready.wait(10), "the event stream did not open"
        run = Run("fan-out")

        def finished() -> dict[str, str]:  # each test's latest status the dashboard saw
            return {t["nodeid"]: t["status"] for m in seen for t in m.get("tests", [])}

        # Long node ids: the write's changes do not fit one NOTIFY payload (8,000 bytes).
        names = [f"fan/{'x' * 900}/test_{i}.py::t" for i in range(40)]
        with httpx.Client(event_hooks=HOOKS, base_url=taking.url, timeout=30) as client:
            begin = time.monotonic()
            post(client, [run.start_run(names)])
            wait_until(lambda: any("job_started" in m["kinds"] for m in seen), 1.0,
                       "the other receiver's dashboard did not hear the run start in 1 s")
            post(client, [run.stop(name) for name in names])
            wait_until(lambda: list(finished().values()) == ["passed"] * len(names),
                       1.0, "not every result reached the other receiver's dashboard in 1 s")
            post(client, [run.stop_run()])
            wait_until(lambda: any("job_finished" in m["kinds"] for m in seen), 1.0,
                       "the job's end did not reach the other receiver's dashboard in 1 s")
            assert client.delete(f"/api/jobs/{run.job_id}").status_code == 200
            wait_until(lambda: any(m["kind"] == "job_deleted" for m in seen), 2.0,
                       "the deletion did not reach the other receiver's dashboard")
            assert time.monotonic() - begin < 10
        assert finished() == dict.fromkeys(names, "passed")
    finally:
        done.set()
        reader.join(10)


def test_notify_payloads_stay_under_postgresqls_limit_and_keep_the_order() -> None:
    changes = [("test_finished", "j" * 200, "\x01" * 1000)] * 30 + [("job_finished", "j", None)]
    chunks = payloads(changes)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= MAX_PAYLOAD for chunk in chunks)
    assert [tuple(c) for chunk in chunks for c in json.loads(chunk)] == changes
