"""A job page left open while a run streams in updates itself, without a reload."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def row(page: Page, nodeid: str) -> Any:
    return page.locator(f'tr.test-row[data-nodeid="{nodeid}"]')


def mark_page(page: Page) -> None:
    """Leave a mark in the page: a reload or a navigation would wipe it."""
    page.evaluate("window.__marker = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1


def test_job_page_shows_tests_turning_passed_and_failed_as_events_arrive(
    watched: Any, stream: Any
) -> None:
    run = stream(custom_id="live-events")
    nodeids = ["test_live.py::test_one", "test_live.py::test_two", "test_live.py::test_three"]
    page = watched.open(f"/jobs/{run.job_id}")
    # Opened before the run exists: the page waits for it.
    expect(page.locator("#waiting")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    mark_page(page)

    run.start(nodeids, env="ci")
    expect(page.locator("#job-title")).to_have_text("live-events")
    expect(page.locator("#job-status")).to_have_text("Running")
    for nodeid in nodeids:
        expect(row(page, nodeid).locator(".badge")).to_have_text("Not started")

    run.begin(nodeids[0])
    expect(row(page, nodeids[0]).locator(".badge")).to_have_text("Running")
    run.finish(nodeids[0], "passed", duration=0.25)
    expect(row(page, nodeids[0]).locator(".badge")).to_have_text("Passed")
    expect(row(page, nodeids[0]).locator(".col-duration")).to_contain_text("250 ms")

    failure = "def test_two():\n>   assert 1 == 2\nE   assert 1 == 2"
    run.run(nodeids[1], "failed", duration=0.5, msg=failure)
    expect(row(page, nodeids[1]).locator(".badge")).to_have_text("Failed")
    expect(row(page, nodeids[1]).locator("summary")).to_have_text("assert 1 == 2")
    expect(page.locator("#job-tally")).to_have_text("2 / 3 finished")

    run.run(nodeids[2], "passed")
    run.stop()
    expect(page.locator("#job-status")).to_have_text("Failed")
    expect(row(page, nodeids[2]).locator(".badge")).to_have_text("Passed")
    expect(page.locator("#job-tally")).to_have_text("3 / 3 finished")
    assert_not_reloaded(page)
    # The page asked for the job before it existed: a 404 it handled.
    watched.assert_clean(allowed=f"404 (Not Found) {watched.base_url}/api/jobs/{run.job_id}")


def test_filters_and_search_narrow_the_list_and_the_message_expands(
    watched: Any, stream: Any
) -> None:
    run = stream(custom_id="filters")
    tests = {
        "test_f.py::test_alpha": "passed",
        "test_f.py::test_beta": "failed",
        "test_f.py::test_gamma": "skipped",
        "test_f.py::test_alphabet": "failed",
    }
    run.start(list(tests))
    for nodeid, outcome in tests.items():
        run.run(nodeid, outcome, msg="E   boom\nsecond line" if outcome == "failed" else "")
    run.stop()
    page = watched.open(f"/jobs/{run.job_id}")
    visible = page.locator("tr.test-row:visible")
    expect(visible).to_have_count(4)

    page.locator('.seg-btn[data-status="failed"]').click()
    expect(page.locator('.seg-btn[data-status="failed"] .count')).to_have_text("2")
    expect(visible).to_have_count(2)
    page.locator("#search").fill("alphabet")
    expect(visible).to_have_count(1)
    expect(visible.locator(".test-leaf")).to_have_text("test_alphabet")
    assert "status=failed" in page.url and "q=alphabet" in page.url

    body = visible.locator("pre.msg-body")
    expect(body).to_be_hidden()
    visible.locator("summary").click()
    expect(body).to_be_visible()
    expect(body).to_have_text("E   boom\nsecond line")
    visible.locator("summary").click()
    expect(body).to_be_hidden()

    page.locator('.seg-btn[data-status="all"]').click()
    page.locator("#search").fill("")
    expect(visible).to_have_count(4)
    watched.assert_clean()


PLUGIN_SUITE = """
import time
import pytest

def test_quick():
    time.sleep(0.3)

def test_slow_pass():
    time.sleep(1.5)

def test_slow_fail():
    time.sleep(0.5)
    assert 6 * 7 == 41

@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass
"""


def test_a_real_pytest_run_streams_into_an_open_job_page(
    watched: Any, live_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(PLUGIN_SUITE))
    job_id = str(uuid.uuid4())
    page = watched.open(f"/jobs/{job_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    mark_page(page)

    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "test_suite.py",
        "--rt",
        "--rt-url",
        f"{live_server.url}/loader",
        "--rt-job-id",
        job_id,
        "--rte",
        "plugin-run",
        "--rt-spool",
        str(tmp_path / "spool"),
    ]
    with subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            # Seen while the inner run is still going: live, not after the fact.
            expect(row(page, "test_suite.py::test_slow_pass").locator(".badge")).to_have_text(
                "Running", timeout=15_000
            )
            assert proc.poll() is None
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1, out

    expect(page.locator("#job-status")).to_have_text("Failed")
    expected = {
        "test_quick": "Passed",
        "test_slow_pass": "Passed",
        "test_slow_fail": "Failed",
        "test_skipped": "Skipped",
    }
    for name, status in expected.items():
        expect(row(page, f"test_suite.py::{name}").locator(".badge")).to_have_text(status)
    expect(row(page, "test_suite.py::test_slow_fail").locator("summary")).to_contain_text("== 41")
    expect(page.locator(".facts")).to_contain_text("plugin-run")
    assert_not_reloaded(page)
    watched.assert_clean(allowed=f"404 (Not Found) {watched.base_url}/api/jobs/{job_id}")


def test_after_a_lost_connection_the_page_catches_up_with_what_it_missed(
    servers: Any, watch_at: Any, stream_into: Any, tmp_path: Path
) -> None:
    db = tmp_path / "receiver.sqlite3"
    server = servers.start(db)
    run = stream_into(server, custom_id="reconnect")
    nodeids = ["test_r.py::test_before", "test_r.py::test_while_away"]
    run.start(nodeids)
    run.run(nodeids[0], "passed")
    watched = watch_at(server.url)
    page = watched.open(f"/jobs/{run.job_id}")
    expect(row(page, nodeids[0]).locator(".badge")).to_have_text("Passed")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    mark_page(page)

    servers.stop(server)
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    # The same server comes back on the same port and database, and the run
    # goes on while the page is still waiting to reconnect: no live event
    # of that reaches the page.
    server = servers.start(db, port=server.port)
    run.client = server.client
    run.run(nodeids[1], "failed", msg="E   missed it")
    run.stop()

    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(row(page, nodeids[1]).locator(".badge")).to_have_text("Failed")
    expect(page.locator("#job-status")).to_have_text("Failed")
    assert_not_reloaded(page)
    watched.assert_clean(allowed="net::ERR_CONNECTION_REFUSED")


def test_a_second_shard_joining_the_job_adds_its_tests_to_the_open_page(
    watched: Any, stream: Any
) -> None:
    first = stream(custom_id="shards")
    first.start(["test_a.py::test_1", "test_a.py::test_2"])
    page = watched.open(f"/jobs/{first.job_id}")
    expect(page.locator("tr.test-row")).to_have_count(2)
    mark_page(page)

    second = stream(job_id=first.job_id, custom_id="shards")
    second.start(["test_b.py::test_3", "test_b.py::test_4"])
    expect(page.locator("tr.test-row")).to_have_count(4)
    expect(row(page, "test_b.py::test_4").locator(".badge")).to_have_text("Not started")
    for run, nodeids in [
        (first, ["test_a.py::test_1", "test_a.py::test_2"]),
        (second, ["test_b.py::test_3", "test_b.py::test_4"]),
    ]:
        for nodeid in nodeids:
            run.run(nodeid, "passed")
    first.stop()
    expect(page.locator("#job-status")).to_have_text("Running")  # the other shard goes on
    second.stop()
    expect(page.locator("#job-status")).to_have_text("Passed")
    expect(page.locator("#job-tally")).to_have_text("4 / 4 finished")
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    assert_not_reloaded(page)
    watched.assert_clean()
