"""Issues 9 and 11 in the browser: jobs a team can tell apart and filter, what changed
since the previous job, a failure's captured output as tabs, counts that add up, the
loading and empty states."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def ci(branch: str, build: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "github", "repository": "acme/shop", "branch": branch,
            "commit": f"{build}c0ffee0ddba11", "build": build,
            "build_url": f"https://ci.example/acme/shop/{build}", **extra}


def test_the_jobs_page_shows_where_each_job_comes_from_and_filters_by_project_and_branch(
    watched: Any, stream: Any
) -> None:
    project = f"shop-{uuid.uuid4().hex[:6]}"
    main = stream().start(["t.py::a"], project=project, ci=ci("main", "41"))
    main.run("t.py::a")
    main.stop()
    dev = stream().start(["t.py::a"], project=project, ci=ci("dev", "42"))
    named = stream(custom_id="nightly #7").start(["t.py::a"], project=project,
                                                ci=ci("dev", "43"))
    # A hostile build URL is never a link, and names are text.
    evil = stream().start(["t.py::a"], project=project, ci=ci(
        "<img src=x onerror=alert(1)>", "44", build_url="javascript:alert(1)"))

    page = watched.open(f"/?project={project}")
    expect(page.locator("li.job-row")).to_have_count(4)
    row = page.locator(f'li.job-row[data-job-id="{main.job_id}"]')
    expect(row.locator(".job-title")).to_have_text(f"{project} · main · #41")
    expect(row.locator(".id-project")).to_have_text(project)
    expect(row.locator(".id-branch")).to_have_text("main")
    commit = row.locator("a.id-commit")
    expect(commit).to_have_text("41c0ffee")
    expect(commit).to_have_attribute("href", "https://ci.example/acme/shop/41")
    custom = page.locator(f'li.job-row[data-job-id="{named.job_id}"]')
    expect(custom.locator(".job-title")).to_have_text("nightly #7")
    bad = page.locator(f'li.job-row[data-job-id="{evil.job_id}"]')
    expect(bad.locator(".id-branch")).to_have_text("<img src=x onerror=alert(1)>")
    expect(bad.locator("a")).to_have_count(1)  # the title only: no link to javascript:
    expect(bad.locator("span.id-commit")).to_have_text("44c0ffee")

    page.locator('input[name="branch"]').fill("dev")
    expect(page.locator("li.job-row")).to_have_count(2)
    expect(page).to_have_url(f"{watched.base_url}/?project={project}&branch=dev")
    ids = page.locator("li.job-row").evaluate_all("rows => rows.map(r => r.dataset.jobId)")
    assert set(ids) == {dev.job_id, named.job_id}

    page.locator(f'li.job-row[data-job-id="{dev.job_id}"] .job-title').click()
    expect(page.locator("#job-title")).to_have_text(f"{project} · dev · #42")
    expect(page.locator("#job-identity .id-branch")).to_have_text("dev")
    expect(page.locator("#job-identity a.id-commit")).to_have_attribute(
        "href", "https://ci.example/acme/shop/42")
    watched.assert_clean()


def test_a_job_page_marks_new_still_failing_and_fixed_tests_with_chips_to_filter_them(
    watched: Any, stream: Any
) -> None:
    project = f"shop-{uuid.uuid4().hex[:6]}"
    start = time.time() - 3600
    before = stream(clock=start).start(
        ["t.py::fixed", "t.py::old", "t.py::ok"], project=project, ci=ci("main", "1"))
    before.run("t.py::fixed", "failed", msg="E   was broken")
    before.run("t.py::old", "failed", msg="E   still broken")
    before.run("t.py::ok")
    before.stop()
    now = stream().start(["t.py::fixed", "t.py::old", "t.py::ok", "t.py::added"],
                         project=project, ci=ci("main", "2"))
    now.run("t.py::fixed")
    now.run("t.py::old", "failed", msg="E   still broken")
    now.run("t.py::ok", "failed", msg="E   broke today")
    now.run("t.py::added", "error", msg="E   new test, broken")
    now.stop()

    page = watched.open(f"/jobs/{now.job_id}")
    rows = page.locator("tr.test-row")
    expect(rows).to_have_count(4)
    expect(page.locator('tr[data-nodeid="t.py::ok"] .change')).to_have_text("new")
    expect(page.locator('tr[data-nodeid="t.py::added"] .change')).to_have_text("new")
    expect(page.locator('tr[data-nodeid="t.py::old"] .change')).to_have_text("still failing")
    expect(page.locator('tr[data-nodeid="t.py::fixed"] .change')).to_have_text("fixed")
    buttons = page.locator("#change-buttons")
    expect(buttons.locator('[data-change="new"] .count')).to_have_text("2")
    expect(buttons.locator('[data-change="still_failing"] .count')).to_have_text("1")
    expect(buttons.locator('[data-change="fixed"] .count')).to_have_text("1")

    buttons.locator('[data-change="new"]').click()
    expect(page.locator("tr.test-row:visible")).to_have_count(2)
    expect(page).to_have_url(f"{watched.base_url}/jobs/{now.job_id}?change=new")
    buttons.locator('[data-change="fixed"]').click()
    expect(page.locator("tr.test-row:visible")).to_have_count(1)
    expect(page.locator("tr.test-row:visible")).to_have_attribute("data-nodeid", "t.py::fixed")
    expect(page.locator("#facts")).to_contain_text(before.job_id[:8])
    # The test's history is its project's.
    link = page.locator('tr[data-nodeid="t.py::fixed"] a.test-name')
    assert f"project={project}" in (link.get_attribute("href") or "")
    watched.assert_clean()


def test_a_failures_captured_output_shows_as_tabs_of_text(watched: Any, stream: Any) -> None:
    run = stream().start(["t.py::loud"], project="capture-demo")
    run.run("t.py::loud", "failed", msg="E   AssertionError: boom", sections=[
        {"name": "Captured stdout call", "text": "connecting to <b>db</b>\nretrying"},
        {"name": "Captured stderr call", "text": "warning: slow"},
        {"name": "Captured log call", "text": "ERROR shop.db:db.py:12 refused"},
    ])
    run.stop()
    page = watched.open(f"/jobs/{run.job_id}")
    row = page.locator('tr[data-nodeid="t.py::loud"]')
    row.locator("summary").first.click()
    tabs = row.locator(".section-tab")
    expect(tabs).to_have_text(["Captured stdout call", "Captured stderr call",
                               "Captured log call"])
    body = row.locator(".section-body")
    expect(body).to_have_text("connecting to <b>db</b>\nretrying")
    assert row.locator(".section-body b").count() == 0  # text, never HTML
    tabs.nth(2).click()
    expect(body).to_have_text("ERROR shop.db:db.py:12 refused")
    expect(tabs.nth(2)).to_have_attribute("aria-selected", "true")
    watched.assert_clean()


def test_the_counts_add_up_with_xfail_and_xpass_inside_skipped_and_passed(
    watched: Any, stream: Any
) -> None:
    outcomes = ["passed", "passed", "xpassed", "failed", "skipped", "xfailed", "xfailed"]
    nodeids = [f"t.py::test_{i}" for i in range(len(outcomes))]
    run = stream(custom_id=f"counts-{uuid.uuid4().hex[:6]}").start(nodeids)
    for nodeid, outcome in zip(nodeids, outcomes, strict=True):
        run.run(nodeid, outcome)
    run.stop()
    page = watched.open(f"/jobs/{run.job_id}")
    chips = page.locator("#job-chips")
    expect(chips.locator(".chip-passed")).to_have_text("3 passed (1 xpassed)")
    expect(chips.locator(".chip-skipped")).to_have_text("3 skipped (2 xfailed)")
    expect(chips.locator(".chip")).to_have_count(3)
    numbers = chips.locator(".chip strong").all_inner_texts()
    assert sum(int(n) for n in numbers) == len(outcomes)
    page = watched.open("/")
    row = page.locator(f'li.job-row[data-job-id="{run.job_id}"]')
    expect(row.locator(".chip-skipped")).to_have_text("3 skipped (2 xfailed)")
    watched.assert_clean()


def test_an_empty_receiver_says_how_to_send_a_run_after_loading(own_watched: Any) -> None:
    page = own_watched.page
    # Hold the answers back, to see the page say it is loading.
    held: list[Any] = []
    page.route(re.compile(r"/api/jobs\?"), lambda route: held.append(route))
    own_watched.open("/")
    expect(page.locator("#loading")).to_be_visible()
    expect(page.locator("#empty")).to_be_hidden()
    page.wait_for_timeout(300)  # the held requests reach the route
    assert held
    for route in held:
        route.continue_()
    page.unroute(re.compile(r"/api/jobs\?"))
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.locator("#empty .empty-title")).to_have_text("No jobs yet: run pytest --rt")
    expect(page.locator("#command")).to_contain_text("pytest --rt --rt-url")
    page = own_watched.open("/tests?nodeid=t.py::nothing")
    expect(page.locator("#no-history")).to_be_visible()
    expect(page.locator("#loading")).to_be_hidden()
    own_watched.assert_clean()
