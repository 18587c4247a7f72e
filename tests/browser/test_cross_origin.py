"""Issue 8: a page on another origin cannot write into the receiver, nor read it by rebinding.

Before, with no token, Chromium stored a job from another origin's
``fetch(url, {mode: "no-cors", body, headers: {"Content-Type": "text/plain"}})``.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra 'browser')")
from playwright.sync_api import Browser  # noqa: E402
from rt_browser import CHROMIUM, CHROMIUM_FLAGS, LiveServer  # noqa: E402

pytestmark = pytest.mark.browser

ATTACK = """<!doctype html><meta charset="utf-8"><title>elsewhere</title><script>
const url = "%(url)s/loader";
const event = (id) => JSON.stringify({type: "startTestRun", job_id: id, tests: ["x.py::t"]});
window.results = [];
(async () => {
  try {
    const r = await fetch(url, {mode: "no-cors", method: "POST", body: event("%(plain)s"),
                                headers: {"Content-Type": "text/plain"}});
    results.push("no-cors " + r.type);
  } catch (e) { results.push("no-cors failed"); }
  try {
    const r = await fetch(url, {method: "POST", body: event("%(json)s"),
                                headers: {"Content-Type": "application/json"}});
    results.push("json " + r.status);
  } catch (e) { results.push("json failed"); }
  results.push("beacon " + navigator.sendBeacon(url, event("%(beacon)s")));
  window.done = true;
})();
</script>"""


class _Page(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


def other_origin(page: str) -> Iterator[str]:
    handler = type("Page", (_Page,), {"page": page.encode()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_page_on_another_origin_stores_nothing(browser: Browser, live_server: LiveServer) -> None:
    ids = {name: f"xorigin-{name}-{uuid.uuid4().hex}" for name in ("plain", "json", "beacon")}
    page_html = ATTACK % {"url": live_server.url, **ids}
    for url in other_origin(page_html):
        page = browser.new_page()
        try:
            page.goto(url)
            page.wait_for_function("window.done === true", timeout=15_000)
            results = page.evaluate("window.results")
        finally:
            page.close()
    # no-cors hides the answer; the JSON one needs a preflight, which is refused.
    assert results[0] == "no-cors opaque" and results[1] == "json failed", results
    live_server.client.post("/loader", json={"type": "stopTestRun", "job_id": "flush"})
    for job_id in ids.values():
        assert live_server.client.get(f"/api/jobs/{job_id}").status_code == 404, job_id


def test_a_rebound_name_gets_421_in_the_browser(
    browser: Browser, live_server: LiveServer
) -> None:
    # DNS rebinding: a name of the attacker's that now resolves to 127.0.0.1.
    rules = "--host-resolver-rules=MAP rebound.example 127.0.0.1"
    rebound = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_FLAGS, rules]
    )
    try:
        page = rebound.new_page()
        answer = page.goto(f"http://rebound.example:{live_server.port}/api/jobs")
        assert answer is not None and answer.status == 421
        assert "--allowed-host" in (page.text_content("body") or "")
    finally:
        rebound.close()
