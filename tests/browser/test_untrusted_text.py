"""Test names, messages and custom data are data: the pages show them as text."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SCRIPT_ID = "test_xss.py::test_evil[<script>alert(1)</script>]"
IMG_MSG = "E   ValueError: <img src=x onerror=alert(2)>\nE   and <b>bold</b> & more"
CUSTOM_ID = "<svg onload=alert(3)>"
ENV = "<i>staging</i>"
CUSTOM_DATA = {
    "<b>key</b>": "<img src=x onerror=alert(4)>",
    "nested": {"x": "<script>alert(5)</script>"},
}

# Elements the pages never create themselves: any of them would be an injection.
INJECTED = "main script, main img, main svg, main b, main i, main iframe, [onerror], [onload]"


def assert_nothing_injected(page: Page) -> None:
    assert page.locator(INJECTED).count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # the page's own


@pytest.fixture
def evil_job(stream: Any) -> Any:
    run = stream(custom_id=CUSTOM_ID)
    run.start(
        [SCRIPT_ID, "test_xss.py::test_fine"],
        env=ENV,
        custom_data=CUSTOM_DATA,
        collect_errors=[{"nodeid": "test_<u>bad</u>.py", "msg": "<marquee>oops</marquee>"}],
    )
    run.run(SCRIPT_ID, "failed", msg=IMG_MSG)
    run.run("test_xss.py::test_fine", "passed")
    run.stop()
    return run


def test_markup_in_a_job_renders_as_literal_text_on_the_job_page(
    watched: Any, evil_job: Any
) -> None:
    page = watched.open(f"/jobs/{evil_job.job_id}")
    name = page.locator(f'tr.test-row[data-nodeid="{SCRIPT_ID}"] .test-name')
    expect(name).to_have_text(SCRIPT_ID)
    expect(page.locator("#job-title")).to_have_text(CUSTOM_ID)
    expect(page.locator(".facts")).to_contain_text(ENV)
    expect(page.locator("#custom-data")).to_contain_text("<b>key</b>")
    expect(page.locator("#custom-data")).to_contain_text("<img src=x onerror=alert(4)>")
    expect(page.locator("#custom-data")).to_contain_text("<script>alert(5)</script>")
    expect(page.locator("#collect-errors")).to_contain_text("<marquee>oops</marquee>")

    evil_row = page.locator(f'tr.test-row[data-nodeid="{SCRIPT_ID}"]')
    evil_row.locator("summary").click()
    expect(evil_row.locator("pre.msg-body")).to_have_text(IMG_MSG)
    # The link to the test's page carries the id percent-encoded.
    href = name.get_attribute("href")
    assert href is not None and "<" not in href and "%3Cscript%3E" in href

    assert_nothing_injected(page)
    watched.assert_clean()


def test_markup_renders_as_text_on_the_jobs_and_test_pages(watched: Any, evil_job: Any) -> None:
    page = watched.open("/")
    job_row = page.locator(f'li.job-row[data-job-id="{evil_job.job_id}"]')
    expect(job_row.locator(".job-title")).to_have_text(CUSTOM_ID)
    expect(job_row.locator(".job-meta")).to_contain_text(ENV)
    assert_nothing_injected(page)

    job_row.locator(".job-title").click()
    page.locator(f'tr.test-row[data-nodeid="{SCRIPT_ID}"] .test-name').click()
    expect(page.locator("#test-name")).to_have_text(SCRIPT_ID)
    # Newest first: this job's result (the module's other test ran the same id).
    newest = page.locator("#history tr").first
    expect(newest).to_have_attribute("data-job-id", evil_job.job_id)
    newest.locator("summary").click()
    expect(newest.locator("pre.msg-body")).to_have_text(IMG_MSG)
    assert_nothing_injected(page)
    watched.assert_clean()
