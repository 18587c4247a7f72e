"""Issues 9 and 11 on the receiver: a job's project, checkout and CI build, what changed
since the previous job, the captured output of a failure, counts that add up, JUnit XML."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rt_api import asgi_client
from rt_server_events import T0, Run
from test_server_lifecycle import OLD_SCHEMA

from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.ingest import MAX_SECTIONS_CHARS, parse_body
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio
JUNIT_XSD = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))
CI = {
    "provider": "github", "repository": "acme/shop", "branch": "main", "commit": "3aff300c0ffee",
    "pull_request": None, "build": "1482", "build_url": "https://ci.example/acme/shop/1482",
}


async def send(client: httpx.AsyncClient, events: Any) -> httpx.Response:
    # ensure_ascii: a lone surrogate travels as its escape, as JSON allows.
    body = json.dumps(events)
    return await client.post("/loader", content=body, headers={"Content-Type": "application/json"})


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def job_of(
    tests: dict[str, str], project: str | None = "shop", ci: dict[str, Any] | None = None,
    at: float = T0, env: str | None = None, finish: bool = True, **start: Any,
) -> tuple[Run, list[dict[str, Any]]]:
    """The events of a job whose tests end as ``tests`` says (nodeid -> outcome)."""
    run = Run()
    events = [run.start_run(list(tests), project=project, ci=ci, startTime=at, env=env, **start)]
    for i, (nodeid, outcome) in enumerate(tests.items()):
        status = {"xfailed": "skipped", "xpassed": "passed", "interrupted": "error"}.get(
            outcome, outcome
        )
        fields: dict[str, Any] = {"outcome": outcome}
        if status in ("failed", "error"):
            fields["msg"] = f"E   AssertionError: {nodeid} broke"
        events += [run.start(nodeid, at=at + i), run.stop(nodeid, status, at=at + i + 0.5,
                                                           **fields)]
    if finish:
        events.append(run.stop_run(at=at + 100, exitstatus=1))
    return run, events


# -- issue 9: jobs a team can tell apart ------------------------------------------------------


async def test_a_jobs_project_and_ci_build_are_stored_and_shown(
    client: httpx.AsyncClient,
) -> None:
    run, events = job_of({"t.py::a": "passed"}, ci=CI, rootdir="shop-checkout")
    assert (await send(client, events)).status_code == 200
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["project"] == "shop"
    assert job["rootdir"] == "shop-checkout"
    assert job["ci"] == CI


async def test_missing_or_unknown_identity_fields_are_null_and_wrong_types_are_refused(
    client: httpx.AsyncClient,
) -> None:
    run, events = job_of({"t.py::a": "passed"}, project=None,
                         ci={"provider": "git", "build": 17, "flavour": "x", "commit": "  "})
    assert (await send(client, events)).status_code == 200
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["project"] is None
    assert job["ci"] == {"provider": "git", "repository": None, "branch": None, "commit": None,
                         "pull_request": None, "build": "17", "build_url": None}
    for bad in ({"ci": "main"}, {"ci": {"branch": ["main"]}}, {"project": 3}):
        answer = await send(client, Run().start_run(["t.py::a"], **bad))
        assert answer.status_code == 422, bad
        assert "project" in answer.text or "ci" in answer.text


async def test_only_http_build_urls_are_kept_and_long_names_are_cut_with_a_marker(
    client: httpx.AsyncClient,
) -> None:
    for url in ("javascript:alert(1)", "data:text/html,<b>", "ftp://x/", "https://x/" + "a" * 3000):
        run, events = job_of({"t.py::a": "passed"}, ci={"build_url": url})
        await send(client, events)
        assert (await get(client, f"/api/jobs/{run.job_id}"))["job"]["ci"]["build_url"] is None
    run, events = job_of({"t.py::a": "passed"}, project="p" * 5000, ci={"branch": "b" * 5000})
    await send(client, events)
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert job["project"].startswith("p" * 200 + " [... 4800 characters truncated by pytest-rt]")
    assert job["ci"]["branch"].startswith("b" * 200 + " [...")
    # The filters cut the same way: the job is found by its whole name.
    page = await get(client, "/api/jobs", project="p" * 5000, branch="b" * 5000)
    assert [j["job_id"] for j in page["jobs"]] == [run.job_id]


async def test_the_jobs_list_filters_by_project_and_branch(client: httpx.AsyncClient) -> None:
    made = {}
    for project, branch in [("shop", "main"), ("shop", "dev"), ("billing", "main")]:
        run, events = job_of({"t.py::a": "passed"}, project=project, ci={"branch": branch})
        await send(client, events)
        made[project, branch] = run.job_id

    async def ids(**params: Any) -> set[str]:
        return {j["job_id"] for j in (await get(client, "/api/jobs", **params))["jobs"]}

    assert await ids(project="shop") == {made["shop", "main"], made["shop", "dev"]}
    assert await ids(branch="main") == {made["shop", "main"], made["billing", "main"]}
    assert await ids(project="shop", branch="dev") == {made["shop", "dev"]}
    assert await ids(project="nothing") == set()


async def test_a_tests_history_and_flakiness_are_per_project_and_branch(
    client: httpx.AsyncClient,
) -> None:
    # The same node id in two projects: shop's flips, billing's always fails.
    for i, outcome in enumerate(["passed", "failed", "passed", "failed"]):
        await send(client, job_of({"t.py::a": outcome}, at=T0 + 1000 * i)[1])
        await send(client, job_of({"t.py::a": "failed"}, project="billing", at=T0 + 1000 * i,
                                  ci={"branch": "main" if i % 2 else "dev"})[1])
    everything = await get(client, "/api/tests/history", nodeid="t.py::a")
    shop = await get(client, "/api/tests/history", nodeid="t.py::a", project="shop")
    billing = await get(client, "/api/tests/history", nodeid="t.py::a", project="billing")
    main = await get(client, "/api/tests/history", nodeid="t.py::a", project="billing",
                     branch="main")
    assert len(everything["results"]) == 8
    assert [r["status"] for r in shop["results"]] == ["failed", "passed", "failed", "passed"]
    assert shop["flaky"] is True
    assert {r["project"] for r in billing["results"]} == {"billing"}
    assert billing["flaky"] is False
    assert [r["branch"] for r in main["results"]] == ["main", "main"]


# -- issue 11: what changed --------------------------------------------------------------------


async def test_failures_are_new_or_still_failing_and_passes_fixed_against_the_previous_job(
    client: httpx.AsyncClient,
) -> None:
    ci = {"branch": "main"}
    _, first = job_of({"t::fixed": "failed", "t::old": "failed", "t::flip": "passed"}, ci=ci)
    # Another branch, and a later running job, are not "the previous job".
    _, other = job_of({"t::fixed": "passed", "t::old": "passed"}, ci={"branch": "dev"},
                      at=T0 + 500)
    _, running = job_of({"t::fixed": "passed"}, ci=ci, at=T0 + 600, finish=False)
    run, second = job_of({"t::fixed": "passed", "t::old": "error", "t::flip": "failed",
                          "t::added": "failed", "t::skip": "skipped"}, ci=ci, at=T0 + 1000)
    for events in (first, other, running, second):
        await send(client, events)
    detail = await get(client, f"/api/jobs/{run.job_id}")
    marks = {t["nodeid"]: t["change"] for t in detail["tests"]}
    assert marks == {"t::fixed": "fixed", "t::old": "still_failing", "t::flip": "new",
                     "t::added": "new", "t::skip": None}
    assert detail["changes"]["new"] == 2
    assert detail["changes"]["still_failing"] == 1
    assert detail["changes"]["fixed"] == 1
    only_new = await get(client, f"/api/jobs/{run.job_id}", change="new")
    assert [t["nodeid"] for t in only_new["tests"]] == ["t::flip", "t::added"]
    assert only_new["tests_total"] == 2
    assert (await client.get(f"/api/jobs/{run.job_id}", params={"change": "x"})).status_code == 422


async def test_jobs_without_a_project_compare_with_the_same_env_and_rootdir(
    client: httpx.AsyncClient,
) -> None:
    await send(client, job_of({"t::a": "failed"}, project=None, env="CI", rootdir="r")[1])
    await send(client, job_of({"t::a": "passed"}, project=None, env="DEV", rootdir="r",
                              at=T0 + 10)[1])
    run, events = job_of({"t::a": "failed"}, project=None, env="CI", rootdir="r", at=T0 + 20)
    await send(client, events)
    detail = await get(client, f"/api/jobs/{run.job_id}")
    assert detail["tests"][0]["change"] == "still_failing"
    first, events = job_of({"t::a": "failed"}, project=None, env="NEW", rootdir="r")
    await send(client, events)
    detail = await get(client, f"/api/jobs/{first.job_id}")
    assert detail["changes"] == {"previous_job_id": None, "new": 0, "still_failing": 0,
                                 "fixed": 0}
    assert detail["tests"][0]["change"] is None


OUTCOMES = ["passed", "failed", "error", "skipped", "xfailed", "interrupted", "absent"]
FAILING = {"failed", "error"}
histories = st.lists(
    st.tuples(
        st.sampled_from(["main", "dev"]),
        st.booleans() | st.just(True),  # finished (most are)
        st.fixed_dictionaries({f"t::{n}": st.sampled_from(OUTCOMES) for n in "abcd"}),
    ),
    min_size=1,
    max_size=6,
)


def expected_marks(
    history: list[tuple[str, bool, dict[str, str]]], i: int
) -> dict[str, str | None]:
    """The reference: compare with the last earlier finished job of the same branch."""
    branch, _, now = history[i]
    before = next(
        (h[2] for h in reversed(history[:i]) if h[0] == branch and h[1]), None
    )
    marks: dict[str, str | None] = {}
    for nodeid, outcome in now.items():
        if outcome == "absent":
            continue
        was = before.get(nodeid, "absent") if before is not None else None
        if before is None:
            marks[nodeid] = None
        elif outcome in FAILING:
            marks[nodeid] = "still_failing" if was in FAILING else "new"
        elif outcome == "passed" and was in FAILING:
            marks[nodeid] = "fixed"
        else:
            marks[nodeid] = None
    return marks


@pytest.fixture(scope="module")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    the_store = Store(f"sqlite:///{tmp_path_factory.mktemp('history') / 'rt.sqlite3'}")
    yield the_store
    the_store.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories)
def test_the_change_marks_of_random_histories_follow_the_reference_model(
    history_store: Store, history: list[tuple[str, bool, dict[str, str]]]
) -> None:
    project = uuid.uuid4().hex  # each history is a project of its own
    job_ids = []
    for i, (branch, finished, outcomes) in enumerate(history):
        present = {n: o for n, o in outcomes.items() if o != "absent"}
        run, events = job_of(present, project=project, ci={"branch": branch},
                             at=T0 + 1000 * i, finish=finished)
        history_store.write(parse_body(json.dumps(events).encode()))
        job_ids.append(run.job_id)
    for i, job_id in enumerate(job_ids):
        detail = history_store.job_detail(job_id)
        assert detail is not None
        want = expected_marks(history, i)
        assert {t["nodeid"]: t["change"] for t in detail["tests"]} == want
        for change in ("new", "still_failing", "fixed"):
            assert detail["changes"][change] == sum(1 for m in want.values() if m == change)
            only = history_store.job_detail(job_id, change=change)
            assert only is not None
            assert {t["nodeid"] for t in only["tests"]} == {
                n for n, m in want.items() if m == change
            }


# -- issue 11: the whole failure, counts that add up --------------------------------------------


async def test_a_failures_captured_sections_are_stored_and_capped_with_a_marker(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    sections = [{"name": "Captured stdout call", "text": "hello\n"},
                {"name": "Captured log call", "text": "WARNING x:y.py:3 careful"}]
    huge = [{"name": f"Captured stdout {i}", "text": "x" * 100_000} for i in range(5)]
    await send(client, [
        run.start_run(["t::a", "t::b"]),
        run.stop("t::a", "failed", msg="E  boom", sections=sections),
        run.stop("t::b", "failed", msg="E  boom", sections=huge),
    ])
    tests = {t["nodeid"]: t for t in (await get(client, f"/api/jobs/{run.job_id}"))["tests"]}
    assert tests["t::a"]["sections"] == sections
    kept = tests["t::b"]["sections"]
    assert sum(len(s["text"]) for s in kept) < MAX_SECTIONS_CHARS + 200
    assert "characters truncated by pytest-rt" in kept[2]["text"]
    assert kept[-1] == {"name": "pytest-rt",
                        "text": "[... 2 more sections truncated by pytest-rt]"}
    bad = run.stop("t::c", "failed", sections=[{"name": 1, "text": "x"}])
    assert (await send(client, bad)).status_code == 422


async def test_the_counts_add_up_to_the_total_with_xfail_and_xpass_inside(
    client: httpx.AsyncClient,
) -> None:
    tests = {"t::p": "passed", "t::xp": "xpassed", "t::f": "failed", "t::e": "error",
             "t::s": "skipped", "t::xf": "xfailed", "t::i": "interrupted"}
    run, events = job_of(tests)
    events.insert(1, run.event("startTestRun", tests=[{"nodeid": "t::later"}]))
    await send(client, events)
    job = (await get(client, f"/api/jobs/{run.job_id}"))["job"]
    assert sum(job["counts"].values()) == job["total"] == 8
    assert job["counts"]["passed"] == 2 and job["outcome_counts"]["xpassed"] == 1
    assert job["counts"]["skipped"] == 2 and job["outcome_counts"]["xfailed"] == 1
    assert job["counts"]["not_started"] == 1
    listed = (await get(client, "/api/jobs"))["jobs"]
    assert all(sum(j["counts"].values()) == j["total"] for j in listed)


# -- issue 11: JUnit XML --------------------------------------------------------------------


async def test_a_finished_jobs_junit_xml_passes_the_schema_with_its_shards_merged(
    client: httpx.AsyncClient,
) -> None:
    nasty = "t.py::test_x[<&\"'\x1b[31mred\x1b[0m\x00\x07\ud800]"
    shard_a, shard_b = Run(), Run()
    shard_b.job_id = shard_a.job_id
    await send(client, [
        shard_a.start_run(["t.py::A::test_ok", nasty], project="shop", ci=CI),
        shard_b.start_run(["u/v.py::test_skip", "u/v.py::test_xf", "u/v.py::test_never"],
                          project="shop", ci=CI),
        shard_a.stop("t.py::A::test_ok", sections=[{"name": "Captured stderr call",
                                                    "text": "warn\x0c\n"}]),
        shard_a.stop(nasty, "failed", msg="E   assert '\x1b[1m<b>' == \x00 '&'\nmore",
                     sections=[{"name": "Captured stdout call", "text": "out \x01"}]),
        shard_b.stop("u/v.py::test_skip", "skipped", msg="no db"),
        shard_b.stop("u/v.py::test_xf", "skipped", outcome="xfailed", msg="bug #1"),
    ])
    running = await client.get(f"/api/jobs/{shard_a.job_id}/junit.xml")
    assert running.status_code == 409
    await send(client, [shard_a.stop_run(exitstatus=1), shard_b.stop_run()])
    answer = await client.get(f"/api/jobs/{shard_a.job_id}/junit.xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    JUNIT_XSD.validate(answer.content)  # raises with the reason when it does not conform
    doc = JUNIT_XSD.to_dict(answer.content)
    suite = doc["testsuite"][0]
    assert suite["@name"] == "shop · main · #1482"
    assert (suite["@tests"], suite["@failures"], suite["@errors"], suite["@skipped"]) == (
        5, 1, 0, 3)
    cases = {(c["@classname"], c["@name"]): c for c in suite["testcase"]}
    assert set(cases) == {("t.A", "test_ok"), ("u.v", "test_skip"), ("u.v", "test_xf"),
                          ("u.v", "test_never"), ("t", "test_x[<&\"'red\ufffd\ufffd?]")}
    failed = cases["t", "test_x[<&\"'red\ufffd\ufffd?]"]
    assert failed["failure"][0]["@message"] == "assert '<b>' == \ufffd '&'"
    assert failed["system-out"] == ["----- Captured stdout call -----\nout \ufffd"]
    err = cases["t.A", "test_ok"]["system-err"]
    assert err == ["----- Captured stderr call -----\nwarn\ufffd\n"]
    assert cases["u.v", "test_xf"]["skipped"][0]["@message"] == "xfail: bug #1"
    assert (await client.get("/api/jobs/nope/junit.xml")).status_code == 404


# -- older databases ---------------------------------------------------------------------------


async def test_a_database_from_before_issue_11_takes_the_new_fields(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.executescript(OLD_SCHEMA)
    store = Store(f"sqlite:///{path}")
    try:
        transport = httpx.ASGITransport(app=create_app(ServeConfig(port=0), store))
        async with asgi_client(transport) as client:
            old = (await get(client, "/api/jobs/old-done"))
            assert old["job"]["project"] is None and old["changes"]["previous_job_id"] is None
            run, events = job_of({"a::t": "failed"}, ci=CI, at=5000)
            await send(client, events[:-2] + [run.stop("a::t", "failed", sections=[
                {"name": "Captured stdout call", "text": "hi"}]), events[-1]])
            detail = await get(client, f"/api/jobs/{run.job_id}")
            assert detail["job"]["ci"]["branch"] == "main"
            assert detail["tests"][0]["sections"][0]["text"] == "hi"
    finally:
        store.close()


# -- issue 11: a busy port ---------------------------------------------------------------------


def test_serve_on_a_busy_port_says_so_and_suggests_another_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "pytest_rt.server.cli", "--port", str(port),
             "--db", str(tmp_path / "rt.sqlite3")],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert f"--port {port + 1}, or --port 0" in done.stderr
