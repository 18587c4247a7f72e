"""The jobs page follows runs live; the test page shows a test's history."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_jobs_page_lists_a_new_run_and_follows_its_progress_live(watched: Any, stream: Any) -> None:
    page = watched.open("/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.evaluate("window.__marker = 1")

    run = stream(custom_id=f"jobs-page-{uuid.uuid4().hex[:6]}")
    nodeids = [f"test_jobs.py::test_{i}" for i in range(4)]
    run.start(nodeids, env="jobs-env")
    job_row = page.locator(f'li.job-row[data-job-id="{run.job_id}"]')
    expect(job_row.locator(".badge")).to_have_text("Running")
    expect(job_row.locator(".job-title")).to_have_text(run.custom_id)
    expect(job_row.locator(".job-meta")).to_contain_text("jobs-env")
    expect(job_row.locator(".tally")).to_have_text("0 / 4")
    # A running job is listed first.
    expect(page.locator("li.job-row").first).to_have_attribute("data-job-id", run.job_id)

    run.run(nodeids[0], "passed")
    run.run(nodeids[1], "failed", msg="E   nope")
    expect(job_row.locator(".tally")).to_have_text("2 / 4")
    expect(job_row.locator(".chip-passed")).to_have_text("1 passed")
    expect(job_row.locator(".chip-failed")).to_have_text("1 failed")
    expect(job_row.locator(".chip-not_started")).to_have_text("2 not started")
    widths = job_row.locator(".progress .seg").evaluate_all(
        "segs => segs.map(s => s.className + ' ' + s.style.width)"
    )
    assert "seg seg-passed 25%" in widths and "seg seg-failed 25%" in widths

    run.run(nodeids[2], "skipped", msg="no network")
    run.run(nodeids[3], "passed")
    run.stop()
    expect(job_row.locator(".badge")).to_have_text("Failed")
    expect(job_row.locator(".tally")).to_have_text("4 / 4")
    assert page.evaluate("window.__marker") == 1

    job_row.locator(".job-title").click()
    expect(page).to_have_url(f"{watched.base_url}/jobs/{run.job_id}")
    expect(page.locator("#job-title")).to_have_text(run.custom_id)
    watched.assert_clean()


def results_of(stream: Any, nodeid: str, outcomes: list[str]) -> list[Any]:
    """One finished job per outcome, oldest first, an hour apart."""
    runs = []
    start = time.time() - 3600 * len(outcomes)
    for i, outcome in enumerate(outcomes):
        run = stream(clock=start + 3600 * i)
        run.start([nodeid], env="hist")
        run.run(
            nodeid,
            outcome,
            duration=0.5 + i / 10,
            msg="E   assert False" if outcome == "failed" else "",
        )
        run.stop()
        runs.append(run)
    return runs


def test_test_page_shows_history_newest_first_and_a_flaky_marker(watched: Any, stream: Any) -> None:
    nodeid = f"test_hist.py::test_flips_{uuid.uuid4().hex[:6]}"
    runs = results_of(stream, nodeid, ["passed", "failed", "passed", "failed"])
    page = watched.open(f"/tests?nodeid={nodeid}")
    expect(page.locator("#test-name")).to_have_text(nodeid)
    rows = page.locator("#history tr")
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.jobId)") == [
        run.job_id for run in reversed(runs)
    ]
    expect(rows.first.locator(".badge")).to_have_text("Failed")
    expect(page.locator("#flaky")).to_be_visible()
    expect(page.locator("#flaky")).to_contain_text("Flaky")
    expect(page.locator("#stats")).to_contain_text("50%")
    expect(page.locator("#strip a")).to_have_count(4)

    # A new result shows up without a reload.
    page.evaluate("window.__marker = 1")
    later = stream()
    later.start([nodeid], env="hist")
    later.run(nodeid, "passed")
    later.stop()
    expect(rows).to_have_count(5)
    expect(rows.first).to_have_attribute("data-job-id", later.job_id)
    assert page.evaluate("window.__marker") == 1
    watched.assert_clean()


def test_a_test_that_always_passes_is_not_marked_flaky(watched: Any, stream: Any) -> None:
    nodeid = f"test_hist.py::test_steady_{uuid.uuid4().hex[:6]}"
    results_of(stream, nodeid, ["passed", "passed", "passed"])
    page = watched.open(f"/tests?nodeid={nodeid}")
    expect(page.locator("#history tr")).to_have_count(3)
    expect(page.locator("#stats")).to_contain_text("100%")
    expect(page.locator("#flaky")).to_be_hidden()
    watched.assert_clean()
