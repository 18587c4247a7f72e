"""Issue 8 in the dashboard: abandoned jobs, the delete button, a job's tests in pages."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import expect  # noqa: E402
from rt_browser import RunStream, serve  # noqa: E402

pytestmark = pytest.mark.browser


def test_an_abandoned_job_shows_below_running_ones_with_when_it_was_last_heard(
    tmp_path: Path, watch_at: Any
) -> None:
    # A server that abandons jobs silent for 1.5 s.
    with serve(tmp_path / "rt.sqlite3", stale_after=1.5) as server:
        done = RunStream(server.client, custom_id="done", clock=time.time() - 600)
        done.start(["t.py::test_a"])
        done.run("t.py::test_a")
        done.stop()
        watched = watch_at(server.url)
        page = watched.open("/")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        silent = RunStream(server.client, custom_id="silent", clock=time.time() - 60)
        silent.start(["t.py::test_a", "t.py::test_b"])
        silent.begin("t.py::test_a")
        row = page.locator(f'li.job-row[data-job-id="{silent.job_id}"]')
        expect(row.locator(".badge")).to_have_text("Running")
        # Nothing more is heard: the server marks it, and the page follows live.
        expect(row.locator(".badge")).to_have_text("Abandoned")
        expect(row.locator(".heard")).to_contain_text("last heard today")
        expect(row.locator(".eta")).to_have_text("")
        expect(row.locator(".chip-aborted")).to_have_text("1 aborted")
        live = RunStream(server.client, custom_id="live")
        live.start(["t.py::test_a"])
        expect(page.locator("li.job-row .job-title")).to_have_text(["live", "silent", "done"])
        # A late event: running again, its test too.
        silent.finish("t.py::test_b")
        expect(row.locator(".badge")).to_have_text("Running")
        expect(row.locator(".heard")).to_have_text("")
        job_page = watched.open(f"/jobs/{silent.job_id}")
        expect(job_page.locator("#job-status .badge")).to_have_text("Running")
        expect(job_page.locator("#job-status .badge")).to_have_text("Abandoned")
        expect(job_page.locator("#facts")).to_contain_text("Last heard")
        expect(job_page.locator('tr[data-nodeid="t.py::test_a"] .badge')).to_have_text("Aborted")
        watched.assert_clean()


def test_the_delete_button_asks_first_then_deletes_the_job(watched: Any, stream: Any) -> None:
    run = stream(custom_id=f"doomed-{uuid.uuid4().hex[:6]}")
    run.start(["t.py::test_a", "t.py::test_b"])
    run.run("t.py::test_a")
    run.run("t.py::test_b", "failed", msg="E   no")
    run.stop()
    page = watched.open(f"/jobs/{run.job_id}")
    expect(page.locator("#job-title")).to_have_text(run.custom_id)
    page.locator("#delete-job").click()  # the confirm is dismissed: nothing happens
    expect(page.locator("#job-title")).to_be_visible()
    assert watched.dialogs and "cannot be undone" in watched.dialogs[0]
    assert "2 tests" in watched.dialogs[0]
    watched.dialogs.clear()
    assert run.client.get(f"/api/jobs/{run.job_id}").status_code == 200
    page.evaluate("window.confirm = () => true")
    page.locator("#delete-job").click()
    expect(page.locator("#deleted")).to_be_visible()
    expect(page.locator("#job-head")).to_be_hidden()
    assert run.client.get(f"/api/jobs/{run.job_id}").status_code == 404
    jobs = watched.open("/")
    expect(jobs.locator("#connection")).to_have_attribute("data-state", "live")
    expect(jobs.locator(f'li.job-row[data-job-id="{run.job_id}"]')).to_have_count(0)
    watched.assert_clean()


def test_a_big_job_shows_its_first_page_of_tests_and_more_on_demand(
    watched: Any, stream: Any
) -> None:
    run = stream(custom_id=f"big-{uuid.uuid4().hex[:6]}")
    nodeids = [f"t.py::test_{i:04d}" for i in range(1200)]
    with run.in_one_batch():
        run.start(nodeids)
        for nodeid in nodeids:
            run.run(nodeid)
        run.stop()
    page = watched.open(f"/jobs/{run.job_id}")
    rows = page.locator("#tests-body tr.test-row")
    expect(rows).to_have_count(1000)
    expect(page.locator("#more")).to_have_text("Show 200 more (200 not shown)")
    expect(page.locator('#filter-buttons [data-status="passed"] .count')).to_have_text("1200")
    page.locator("#more").click()
    expect(rows).to_have_count(1200)
    expect(page.locator("#more-box")).to_be_hidden()
    assert rows.nth(1199).get_attribute("data-nodeid") == nodeids[-1]
    watched.assert_clean()
