"""``--root-path``: the receiver behind a proxy that serves it under a path (e.g. /rt/).

The proxy strips the prefix; uvicorn puts it back into the ASGI path. What is checked here
without a proxy: every route still answers (the POST fast path too), the dashboard link names
the prefix, and the pages' URLs are relative, so they resolve under any prefix. Through a real
nginx: tests/deploy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
import pytest
from rt_api import HOOKS
from rt_server_events import Run
from rt_server_live import LiveServer, start_server

from pytest_rt.server.cli import parse_config
from pytest_rt.server.config import ServeConfig


@pytest.fixture
def prefixed(sqlite_db: str) -> Iterator[LiveServer]:
    running = start_server(ServeConfig(port=0, root_path="/rt"), sqlite_db)
    yield running
    running.stop()


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]  # noqa: ARG002 - HTMLParser's
    ) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.urls.append(value)


def test_root_path_is_given_as_a_path_without_its_trailing_slash() -> None:
    assert parse_config(["--root-path", "/rt/"]).root_path == "/rt"
    assert parse_config([]).root_path == ""
    with pytest.raises(SystemExit):
        parse_config(["--root-path", "rt"])


def test_under_a_root_path_posts_are_taken_and_name_the_prefixed_dashboard(
    prefixed: LiveServer,
) -> None:
    run = Run()
    with httpx.Client(event_hooks=HOOKS, base_url=prefixed.url, timeout=10) as client:
        # What the proxy forwards for /rt/loader: the path without the prefix.
        answer = client.post("/loader", json=[run.start_run([]), run.stop_run()])
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-pytest-rt-dashboard"] == f"{prefixed.url}/rt/"
        assert client.get(f"/api/jobs/{run.job_id}").json()["job"]["status"] == "passed"


@pytest.mark.parametrize("page", ["/", "/jobs/a%2Fjob", "/tests?nodeid=t.py::a"])
def test_every_url_a_page_names_is_relative_and_resolves_under_the_prefix(
    prefixed: LiveServer, page: str
) -> None:
    with httpx.Client(event_hooks=HOOKS, base_url=prefixed.url, timeout=10) as client:
        html = client.get(page)
        assert html.status_code == 200
        links = _Links()
        links.feed(html.text)
        assert links.urls, "the page names its files"
        # Where the browser is (behind the proxy), and what it asks the proxy for.
        seen = f"http://proxy.example/rt{page}"
        for url in links.urls:
            assert not url.startswith("/"), f"{page}: absolute URL {url!r}"
            target = urljoin(seen, url)
            assert target.startswith("http://proxy.example/rt/"), (page, url, target)
            forwarded = target[len("http://proxy.example/rt") :]
            assert client.get(forwarded).status_code == 200, (page, url)
        for name in ("common.js", "jobs.js", "job.js", "test.js"):
            script = client.get(f"/static/{name}").text
            # Modules import each other relatively, and the API is reached from BASE.
            assert not re.search(r"""from\s+["']/""", script), name
            assert not re.search(r"""[`"']/(api|static|jobs|tests)\b""", script), name
