"""The dashboard's statuses come from pytest_rt.protocol, and its one status table
shows every word the protocol has."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import expect

from pytest_rt.protocol import JOB_STATUSES, OUTCOMES, SHOWN_STATUSES

pytestmark = pytest.mark.browser


def test_the_jobs_filter_offers_the_protocols_job_statuses(watched: Any) -> None:
    page = watched.open("/")
    options = page.locator('#filters select[name="status"] option')
    expect(options).to_have_count(1 + len(JOB_STATUSES))
    assert options.evaluate_all("os => os.map(o => o.value)") == ["", *JOB_STATUSES]
    watched.assert_clean()


def test_the_job_pages_status_filter_has_each_shown_status(watched: Any, stream: Any) -> None:
    run = stream()
    run.start(["t.py::a"])
    page = watched.open(f"/jobs/{run.job_id}")
    buttons = page.locator("#filter-buttons button")
    expect(buttons).to_have_count(1 + len(SHOWN_STATUSES))
    shown = buttons.evaluate_all("bs => bs.map(b => b.dataset.status)")
    assert shown[0] == "all" and sorted(shown[1:]) == sorted(SHOWN_STATUSES)
    watched.assert_clean()


def test_every_word_of_the_protocol_has_a_label(watched: Any) -> None:
    page = watched.open("/")
    words = sorted({*SHOWN_STATUSES, *JOB_STATUSES, *OUTCOMES})
    labels = page.evaluate(
        """async (words) => {
          const { label } = await import(new URL("static/common.js", document.baseURI).href);
          return words.map(label);
        }""",
        words,
    )
    # A word the table does not know is shown as itself.
    assert [word for word, shown in zip(words, labels, strict=True) if shown == word] == []
