"""Fixtures for the dashboard's browser tests.

A real uvicorn serves the app on a free port with a SQLite file of its own;
Debian's Chromium (never a downloaded browser) is driven by Playwright; runs
are streamed into the server as the plugin would send them, by POSTing the
protocol's events (docs/protocol.md) with httpx.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rt_browser import CHROMIUM, CHROMIUM_FLAGS, LiveServer, RunStream, serve

VIEWPORT: Any = {"width": 1280, "height": 800}  # a playwright ViewportSize
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Screenshots go to docs/ only when asked: a plain test run must not rewrite
# tracked files (their timestamps and job ids change at every run).
UPDATE_SCREENSHOTS = os.environ.get("PYTEST_RT_SCREENSHOTS") == "1"


def _missing() -> str | None:
    """Why these tests cannot run here, or None."""
    for module, what in [
        ("playwright", "playwright (extra 'browser')"),
        ("httpx", "httpx (extra 'test')"),
        ("fastapi", "the server extra"),
        ("uvicorn", "the server extra"),
        ("sqlalchemy", "the server extra"),
    ]:
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed"
    if not CHROMIUM.exists():
        return f"Chromium not found at {CHROMIUM}: run scripts/install-chromium.sh"
    return None


MISSING = _missing()
HERE = Path(__file__).parent

if MISSING is None:
    from playwright.sync_api import Browser, Page, sync_playwright


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests, saying why, when Chromium or a package is missing."""
    if MISSING is None:
        return
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=MISSING))


# ---- the server -----------------------------------------------------------------




@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session: each test streams jobs with ids of its own."""
    with serve(tmp_path_factory.mktemp("rt-db") / "receiver.sqlite3") as server:
        yield server


class Servers:
    """Servers a test starts and stops itself (all stopped at the end)."""

    def __init__(self) -> None:
        self._stacks: dict[int, ExitStack] = {}

    def start(self, db: Path, port: int = 0) -> LiveServer:
        stack = ExitStack()
        server = stack.enter_context(serve(db, port))
        self._stacks[server.port] = stack
        return server

    def stop(self, server: LiveServer) -> None:
        self._stacks.pop(server.port).close()

    def close(self) -> None:
        while self._stacks:
            self._stacks.popitem()[1].close()


@pytest.fixture
def servers() -> Iterator[Servers]:
    """Start and stop servers in a test; ask for it before ``watch_at``."""
    started = Servers()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server with an empty database, for pages that show every job."""
    with serve(tmp_path / "receiver.sqlite3") as server:
        yield server


# ---- streaming runs -------------------------------------------------------------


@pytest.fixture
def stream(live_server: LiveServer) -> Any:
    """Make a RunStream into the session's server: ``stream(custom_id=..., clock=...)``."""

    def make(**kwargs: Any) -> RunStream:
        return RunStream(live_server.client, **kwargs)

    return make


@pytest.fixture
def stream_into() -> Any:
    """Make a RunStream into any server: ``stream_into(server, custom_id=...)``."""

    def make(server: LiveServer, **kwargs: Any) -> RunStream:
        return RunStream(server.client, **kwargs)

    return make


@pytest.fixture
def own_stream(own_server: LiveServer) -> Any:
    """Make a RunStream into ``own_server``."""

    def make(**kwargs: Any) -> RunStream:
        return RunStream(own_server.client, **kwargs)

    return make


# ---- the browser ----------------------------------------------------------------


# Module scope, not session: Playwright's sync API keeps an asyncio loop running on
# the main thread while it lives, and async tests elsewhere (anyio) can't start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


# Records what the page must never do: fire a dialog, break its CSP, throw.
WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Watched:
    page: Page
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def assert_clean(self, allowed: str | None = None) -> None:
        """No dialog, no uncaught error or console error, no CSP violation.

        ``allowed``: a console error the test expects (e.g. a 404 that the page
        handles), matched as a substring.
        """
        assert self.dialogs == []
        assert [e for e in self.errors if not (allowed and allowed in e)] == []
        assert self.page.evaluate("window.__cspViolations") == []


@contextmanager
def watch(browser: Browser, base_url: str) -> Iterator[Watched]:
    """A fresh browser context and page on ``base_url``, recording what must not happen."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.add_init_script(WATCH_SCRIPT)
        watched = Watched(page, base_url)

        def on_dialog(dialog: Any) -> None:
            watched.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: watched.errors.append(f"pageerror: {error}"))

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                watched.errors.append(f"{msg.text} {msg.location.get('url', '')}")

        page.on("console", on_console)
        yield watched
    finally:
        context.close()


@pytest.fixture
def watched(browser: Browser, live_server: LiveServer) -> Iterator[Watched]:
    """A page on the session's server."""
    with watch(browser, live_server.url) as page:
        yield page


@pytest.fixture
def watch_at(browser: Browser) -> Iterator[Any]:
    """Open a watched page on any server: ``watch_at(url)``."""
    with ExitStack() as stack:
        yield lambda url: stack.enter_context(watch(browser, url))


@pytest.fixture
def own_watched(browser: Browser, own_server: LiveServer) -> Iterator[Watched]:
    """A page on a server of its own (``own_server``)."""
    with watch(browser, own_server.url) as page:
        yield page


@pytest.fixture
def save_screenshot(tmp_path: Path) -> Any:
    """Save a page's screenshot: ``save_screenshot(page, "jobs")``. With
    ``PYTEST_RT_SCREENSHOTS=1`` into docs/screenshots/, else into tmp_path."""
    folder = DOCS_SCREENSHOTS if UPDATE_SCREENSHOTS else tmp_path / "screenshots"

    def save(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, "an empty-looking screenshot"
        return path

    return save
