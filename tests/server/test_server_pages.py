"""The dashboard's pages: one shell around each page's part, carrying the protocol's words."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import httpx
import pytest

from pytest_rt.protocol import vocabulary
from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.store import Store

pytestmark = pytest.mark.anyio

PAGES = {"/": "jobs.js", "/jobs/a%2Fjob": "job.js", "/tests?nodeid=t.py::a": "test.js"}


class _Head(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.protocol: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(named.get("src"))
        if tag == "meta" and named.get("name") == "pytest-rt-protocol":
            self.protocol.append(named.get("content"))


async def test_each_page_is_the_shell_with_its_own_script_and_the_protocols_words(
    store: Store,
) -> None:
    app = create_app(ServeConfig(), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for path, script in PAGES.items():
            page = await client.get(path)
            assert page.status_code == 200
            head = _Head()
            head.feed(page.text)
            assert [src.rsplit("/", 1)[1] for src in head.scripts if src] == [script]
            assert len(head.scripts) == 1  # nothing inline: script-src 'self'
            assert [json.loads(words or "") for words in head.protocol] == [vocabulary()]
            assert page.text.count('class="topbar"') == 1
            assert not re.search(r"\$\{?\w", page.text), "a placeholder left unfilled"
        answer = await client.get("/protocol.json")
        assert answer.json() == vocabulary()
        assert answer.headers["cache-control"] == "no-cache"


async def test_a_static_directory_of_its_own_brings_its_own_shell(store: Store, tmp_path) -> None:
    """The shell is read from the static directory served, as each page's part is; the
    package's is the fallback (a directory with only the pages' parts)."""
    (tmp_path / "index.html").write_text("<main>jobs</main>\n")
    app = create_app(ServeConfig(), store, static_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert 'class="topbar"' in (await client.get("/")).text  # the package's shell
        (tmp_path / "page.html").write_text("<title>$title</title>$body")
        assert (await client.get("/")).text == "<title>Jobs</title><main>jobs</main>\n"
