"""Issue 8, hardening: nothing stored breaks a read, only real clients write, headers.

Each test is a finding of issue 8 that failed before the fix.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from rt_server_events import Run
from sqlalchemy import update

from pytest_rt.server import ingest
from pytest_rt.server import schema as tables
from pytest_rt.server.app import create_app
from pytest_rt.server.cli import parse_config
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio
JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


def nested_text(depth: int) -> str:
    """``nested(depth)`` as JSON text, built without recursing (json.dumps would, and a
    test's stack is too deep for ~970 levels)."""
    return '{"d":' * (depth - 1) + '{"leaf":1}' + "}" * (depth - 1)


def start_with_custom_data(run: Run, custom_data: str) -> bytes:
    event = json.dumps(run.start_run(["a::t"], custom_data="CUSTOM"))
    return event.replace('"CUSTOM"', custom_data).encode()


async def reads_all(client: httpx.AsyncClient, job_id: str, nodeid: str | None = None) -> None:
    """Every read endpoint and page answers 2xx for the job."""
    jobs = await client.get("/api/jobs", params={"limit": 1000})
    assert jobs.status_code == 200, jobs.text
    detail = await client.get(f"/api/jobs/{quote(job_id, safe='')}")
    assert detail.status_code == 200, detail.text
    for test in detail.json()["tests"][:3]:
        history = await client.get("/api/tests/history", params={"nodeid": test["nodeid"]})
        assert history.status_code == 200, history.text
    if nodeid is not None:
        assert (await client.get("/api/tests/history", params={"nodeid": nodeid})).is_success
    for page in ("/", f"/jobs/{quote(job_id, safe='')}", "/tests?nodeid=x"):
        assert (await client.get(page)).status_code in (200, 404)  # 404: no static dir


# ---- nothing stored can break a read ---------------------------------------------


async def test_custom_data_970_levels_deep_is_refused_and_the_front_page_keeps_working(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    response = await client.post(
        "/loader", content=start_with_custom_data(run, nested_text(970)), headers=JSON
    )
    assert response.status_code == 422, response.text
    assert "custom_data" in response.json()["error"]
    assert "32 levels" in response.json()["error"]
    assert (await client.get("/api/jobs")).status_code == 200


async def test_custom_data_32_levels_deep_is_taken(client: httpx.AsyncClient) -> None:
    run = Run()
    response = await client.post("/loader", json=run.start_run(["a::t"], custom_data=nested(32)))
    assert response.status_code == 200, response.text
    await reads_all(client, run.job_id)


async def test_custom_data_over_64_kb_is_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    big = {"k": "x" * (65 * 1024)}
    response = await client.post("/loader", json=run.start_run(["a::t"], custom_data=big))
    assert response.status_code == 422
    assert "custom_data" in response.json()["error"] and "65536" in response.json()["error"]


async def test_a_job_stored_before_the_limits_with_970_deep_custom_data_still_reads(
    client: httpx.AsyncClient, store: Store
) -> None:
    runs = [Run(), Run(), Run()]
    for run in runs:
        events = [run.start_run(["a::t"]), run.start("a::t")]
        assert (await client.post("/loader", json=events)).status_code == 200
    # Written as an earlier receiver took them, or by hand: past what json can recurse.
    stored = {
        runs[0].job_id: nested_text(970),
        runs[1].job_id: "[" * 5000 + "]" * 5000,
        runs[2].job_id: "{not json",
    }
    with store.engine.begin() as conn:
        for job_id, text in stored.items():
            conn.execute(
                update(tables.jobs).where(tables.jobs.c.job_id == job_id).values(
                    custom_data=text, collect_errors=text
                )
            )
            conn.execute(
                update(tables.tests).where(tables.tests.c.job_id == job_id).values(
                    markers=text, rerun_msgs=text
                )
            )
    for run in runs:
        await reads_all(client, run.job_id, "a::t")
    detail = (await client.get(f"/api/jobs/{runs[0].job_id}")).json()
    assert "cut by pytest-rt" in (await client.get(f"/api/jobs/{runs[0].job_id}")).text
    detail = (await client.get(f"/api/jobs/{runs[2].job_id}")).json()
    assert "pytest-rt" in detail["job"]["custom_data"]
    # A later event of such a job is still taken (its live snapshot cannot fail the POST).
    assert (await client.post("/loader", json=runs[0].stop("a::t"))).status_code == 200


async def test_a_run_whose_stored_collection_errors_are_not_json_still_takes_its_stop(
    client: httpx.AsyncClient, store: Store
) -> None:
    run = Run()
    error = {"nodeid": "x.py", "msg": "ImportError"}
    start = run.start_run(["a::t"], collect_errors=[error])
    assert (await client.post("/loader", json=start)).status_code == 200
    with store.engine.begin() as conn:  # written by other means, or by an older receiver
        conn.execute(update(tables.runs).where(tables.runs.c.job_id == run.job_id).values(
            collect_errors="{not json"))
    stop = run.stop_run(collect_errors=[error])
    assert (await client.post("/loader", json=stop)).status_code == 200


async def test_long_messages_names_and_lists_are_cut_with_a_visible_marker(
    client: httpx.AsyncClient,
) -> None:
    run = Run()
    long_a = "t.py::test_" + "a" * 20_000 + "1"
    long_b = "t.py::test_" + "a" * 20_000 + "2"
    events = [
        run.start_run(
            [],
            tests=[{"nodeid": long_a, "markers": [f"m{i}" for i in range(1500)]}, long_b],
            collect_errors=[{"nodeid": "x.py", "msg": "E" * 200_000}],
        ),
        run.stop(long_a, "failed", msg="M" * 300_000, rerun_msgs=["R" * 200_000]),
        run.stop(long_b, "passed"),
    ]
    assert (await client.post("/loader", json=events)).status_code == 200
    detail = (await client.get(f"/api/jobs/{run.job_id}")).json()
    tests = detail["tests"]
    assert len(tests) == 2  # cut node ids stay two tests
    first = next(t for t in tests if t["status"] == "failed")
    assert len(first["nodeid"]) < 10_100 and "truncated by pytest-rt" in first["nodeid"]
    assert first["msg"].endswith("[... 200000 characters truncated by pytest-rt]")
    assert "truncated by pytest-rt" in first["rerun_msgs"][0]
    assert len(first["markers"]) == 1001 and "500 more" in first["markers"][-1]
    error = detail["job"]["collect_errors"][0]["msg"]
    assert error.endswith("[... 100000 characters truncated by pytest-rt]")
    await reads_all(client, run.job_id)


async def test_a_start_test_run_over_the_test_limit_gets_413_and_the_run_still_arrives(
    store: Store,
) -> None:
    app = create_app(ServeConfig(max_tests_per_run=10), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        run = Run()
        response = await client.post("/loader", json=run.start_run([f"a::t{i}" for i in range(11)]))
        assert response.status_code == 413
        assert "11 tests" in response.json()["error"] and "--max-tests-per-run" in response.text
        # What the plugin does next: the start is rejected, the tests' events go on.
        events = [run.start("a::t0"), run.stop("a::t0"), run.stop_run()]
        assert (await client.post("/loader", json=events)).status_code == 200
        detail = (await client.get(f"/api/jobs/{run.job_id}")).json()
        assert detail["job"]["status"] == "passed" and detail["tests"][0]["nodeid"] == "a::t0"


def test_the_test_limit_is_documented_default_and_an_option() -> None:
    assert ingest.MAX_TESTS_PER_RUN == ServeConfig().max_tests_per_run == 50_000
    assert parse_config(["--max-tests-per-run", "7"]).max_tests_per_run == 7


# ---- only real clients can write ------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/json; charset=latin-1",
     "application/jsonx", "application/json-patch+json"],
)
async def test_a_body_that_is_not_declared_json_gets_415_and_stores_nothing(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    run = Run()
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(run.start_run(["a::t"])).encode()
    response = await client.post("/loader", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]
    assert (await client.get(f"/api/jobs/{run.job_id}")).status_code == 404


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
async def test_json_with_or_without_a_utf8_charset_is_taken(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = json.dumps(Run().start_run(["a::t"])).encode()
    response = await client.post("/loader", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


async def test_a_cors_preflight_is_refused_and_no_answer_allows_another_origin(
    client: httpx.AsyncClient,
) -> None:
    preflight = await client.options(
        "/loader",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert not preflight.is_success
    post = await client.post(
        "/loader", json=Run().start_run(["a::t"]), headers={"Origin": "http://evil.example"}
    )
    jobs = await client.get("/api/jobs", headers={"Origin": "http://evil.example"})
    for response in (preflight, post, jobs):
        assert not any(k.lower().startswith("access-control-") for k in response.headers)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io", "localhost.evil", ""]
)
async def test_a_foreign_host_header_gets_421_on_reads_and_writes(
    client: httpx.AsyncClient, host: str
) -> None:
    run = Run()
    post = await client.post("/loader", json=run.start_run(["a::t"]), headers={"Host": host})
    get = await client.get("/api/jobs", headers={"Host": host})
    for response in (post, get):
        assert response.status_code == 421, response.text
        assert "--allowed-host" in response.json()["error"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"/api/jobs/{run.job_id}")).status_code == 404


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8765", "localhost", "LOCALHOST:1", "[::1]:8765", "[::1]"]
)
async def test_loopback_names_are_answered_when_bound_to_loopback(
    client: httpx.AsyncClient, host: str
) -> None:
    assert (await client.get("/healthz", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize(
    ("bound", "allowed", "host", "answered"),
    [
        ("127.0.0.1", ("rt.example.com",), "rt.example.com:443", True),
        ("127.0.0.1", ("rt.example.com",), "localhost", True),
        ("127.0.0.1", ("rt.example.com",), "other.example.com", False),
        ("127.0.0.1", ("*",), "anything.example", True),
        ("0.0.0.0", None, "build-box.lan:8765", True),  # bound beyond loopback: any
        ("0.0.0.0", ("build-box.lan",), "build-box.lan:8765", True),
        ("0.0.0.0", ("build-box.lan",), "evil.example", False),
        ("::1", None, "[::1]:8765", True),
        ("::1", None, "evil.example", False),
    ],
)
async def test_allowed_hosts_extend_or_replace_the_default(
    store: Store, bound: str, allowed: tuple[str, ...] | None, host: str, answered: bool
) -> None:
    app = create_app(ServeConfig(host=bound, allowed_hosts=allowed), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/healthz", headers={"Host": host})
    assert (response.status_code == 200) is answered, response.text


def test_allowed_host_is_a_repeatable_option() -> None:
    config = parse_config(["--allowed-host", "a.example", "--allowed-host", "b.example"])
    assert config.allowed_hosts == ("a.example", "b.example")
    assert parse_config([]).allowed_hosts is None
    assert parse_config(["--allowed-host", "*"]).host_names() is None


# ---- headers ----------------------------------------------------------------------


async def test_every_answer_says_nosniff_and_pages_refuse_framing(
    client: httpx.AsyncClient,
) -> None:
    answers = [
        await client.get("/api/jobs"),
        await client.get("/api/jobs/nope"),
        await client.get("/healthz"),
        await client.get("/openapi.json"),
        await client.get("/no/such/path"),
        await client.post("/loader", json=Run().start_run(["a::t"])),
        await client.post("/loader", json={"type": "nope"}),
        await client.get("/api/jobs", params={"limit": 0}),
    ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY", response.url


async def test_pages_forbid_framing_in_their_csp(store: Store, tmp_path: Any) -> None:
    for name in ("index.html", "job.html", "test.html"):
        (tmp_path / name).write_text("<p>page</p>")
    app = create_app(ServeConfig(), store, static_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path in ("/", "/jobs/x", "/tests?nodeid=a"):
            response = await client.get(path)
            assert response.status_code == 200
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"


async def test_docs_need_no_cdn_the_description_is_served_here(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/redoc")).status_code == 404
    description = await client.get("/openapi.json")
    assert description.status_code == 200
    assert "cdn" not in description.text.lower()
