"""The screenshots in docs/screenshots/, taken from a realistic run.

A shop's suite ran five times before (one of them interrupted); the sixth run
is in progress: a dozen tests with every status, one failure with a
traceback, one test still running, two not started yet.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

TRACEBACK = """\
cart = <Cart items=3 total=Decimal('100.00')>, code = 'SPRING10'

    def test_total_with_discount(cart, code):
        cart.apply(code)
>       assert cart.total() == Decimal("90.00")
E       AssertionError: assert Decimal('100.00') == Decimal('90.00')
E        +  where Decimal('100.00') = <bound method Cart.total of <Cart items=3>>()

tests/test_checkout.py:42: AssertionError"""

SETUP_ERROR = """\
    @pytest.fixture
    def payments():
>       return PaymentsClient.connect(timeout=2)
E       ConnectionRefusedError: [Errno 111] Connection refused

tests/conftest.py:31: ConnectionRefusedError"""

FLAKY = "tests/test_checkout.py::test_total_with_discount"
CAPTURED = [
    {"name": "Captured stdout call", "text": "applying SPRING10 to cart 8812\ncart total: 100.00"},
    {"name": "Captured log call", "text": (
        "WARNING  shop.discounts:discounts.py:57 code SPRING10 expired on 2026-05-31\n"
        "INFO     shop.cart:cart.py:120 total recomputed: 100.00")},
]

# nodeid: (outcome, duration, extra stopTestItem fields)
SUITE: dict[str, tuple[str, float, dict[str, Any]]] = {
    "tests/test_api.py::test_login[admin]": ("passed", 0.41, {}),
    "tests/test_api.py::test_logout": ("passed", 0.12, {}),
    "tests/test_cart.py::test_add_item": ("passed", 0.21, {}),
    "tests/test_cart.py::test_legacy_coupon": ("xpassed", 0.09, {}),
    FLAKY: ("failed", 1.93, {"msg": TRACEBACK, "sections": CAPTURED}),
    "tests/test_checkout.py::test_refund": ("error", 0.22, {"msg": SETUP_ERROR}),
    "tests/test_checkout.py::test_gift_card": (
        "skipped",
        0.001,
        {"msg": "gift cards are off in staging"},
    ),
    "tests/test_checkout.py::test_currency_rounding": (
        "xfailed",
        0.003,
        {"msg": "rounding bug #123"},
    ),
    "tests/test_search.py::test_fuzzy_match": (
        "passed",
        3.42,
        {"rerun_msgs": ("E   TimeoutError: index not ready",)},
    ),
    "tests/test_search.py::TestIndex::test_rebuild": ("passed", 7.84, {}),
    "tests/test_search.py::TestIndex::test_incremental": ("running", 5.1, {}),
    "tests/test_reports.py::test_pdf_export": ("not_started", 2.6, {}),
    "tests/test_reports.py::test_csv_export": ("not_started", 0.8, {}),
}
DESCRIPTIONS = {
    "tests/test_api.py::test_login[admin]": "Admins log in with a password and a TOTP code.",
    FLAKY: "A 10% code takes 10% off the cart's total.",
}
CUSTOM_DATA = {"python": "3.12.7", "trigger": "schedule"}


def ci(number: int) -> dict[str, Any]:
    """The CI build of run ``number`` (GitHub Actions on the main branch)."""
    return {
        "provider": "github", "repository": "acme/shop", "branch": "main",
        "commit": f"{number * 7919:07x}3aff300", "pull_request": None, "build": str(number),
        "build_url": f"https://github.com/acme/shop/actions/runs/{number}",
    }


def earlier_run(
    stream: Any,
    hours_ago: float,
    number: int,
    env: str,
    flaky_passes: bool,
    interrupted: bool = False,
) -> None:
    run = stream(clock=time.time() - hours_ago * 3600)
    with run.in_one_batch():
        run.start(
            list(SUITE), env=env, custom_data=CUSTOM_DATA, workers=2, descriptions=DESCRIPTIONS,
            project="shop", ci=ci(number),
        )
        for i, (nodeid, (outcome, duration, _)) in enumerate(SUITE.items()):
            if interrupted and i >= 8:
                break
            if nodeid == FLAKY:
                outcome = "passed" if flaky_passes else "failed"
            elif outcome in ("running", "not_started", "error"):
                outcome = "passed"
            msg = TRACEBACK if outcome == "failed" else ""
            run.run(
                nodeid,
                outcome,
                duration * (0.9 + 0.05 * (number % 4)),
                msg=msg,
                worker=f"gw{i % 2}",
            )
        run.stop(exitstatus=2 if interrupted else None, interrupted=interrupted)


def current_run(stream: Any) -> Any:
    run = stream(clock=time.time() - 26)
    with run.in_one_batch():
        run.start(
            list(SUITE),
            env="staging",
            custom_data=CUSTOM_DATA,
            workers=2,
            descriptions=DESCRIPTIONS,
            project="shop",
            ci=ci(1482),
        )
        for i, (nodeid, (outcome, duration, extra)) in enumerate(SUITE.items()):
            worker = f"gw{i % 2}"
            if outcome == "not_started":
                continue
            if outcome == "running":
                run.clock = time.time() - 2.4
                run.begin(nodeid, worker=worker)
                continue
            run.run(nodeid, outcome, duration, worker=worker, **extra)
    return run


@pytest.fixture
def shop(own_stream: Any) -> Any:
    for number, (hours, env, passes, interrupted) in enumerate(
        [
            (30, "staging", True, False),
            (26, "prod", False, False),
            (20, "staging", True, True),
            (8, "staging", False, False),
            (3, "prod", True, False),
        ],
        start=1477,
    ):
        earlier_run(own_stream, hours, number, env, passes, interrupted)
    return current_run(own_stream)


def test_screenshots_of_the_three_pages_and_a_failure(
    own_watched: Any, shop: Any, save_screenshot: Any
) -> None:
    page = own_watched.open("/")
    expect(page.locator("li.job-row")).to_have_count(6)
    page.mouse.move(0, 0)
    expect(page.locator("li.job-row").first.locator(".eta")).to_contain_text("left")
    save_screenshot(page, "jobs")

    page.locator("li.job-row").first.locator(".job-title").click()
    failed = page.locator(f'tr.test-row[data-nodeid="{FLAKY}"]')
    failed.locator("summary").click()
    expect(failed.locator("pre.msg-body")).to_be_visible()
    expect(failed.locator(".change")).to_have_text("new")
    failed.locator(".section-tab").nth(1).click()
    expect(failed.locator(".section-body")).to_contain_text("expired")
    expect(page.locator("#slowest li")).to_have_count(10)
    page.evaluate("window.scrollTo(0, 0)")
    save_screenshot(page, "job")
    # The whole failure: the traceback and, under it, what the test printed and logged.
    failed.evaluate("row => row.scrollIntoView({block: 'start'})")
    page.evaluate("window.scrollBy(0, -12)")
    save_screenshot(page, "failure")

    failed.locator(".test-name").click()
    expect(page.locator("#flaky")).to_be_visible()
    expect(page.locator("#history tr")).to_have_count(6)
    page.locator("#history tr").first.locator("summary").click()
    save_screenshot(page, "test")
    own_watched.assert_clean()
