"""Receivers and proxies that misbehave: no event is counted as delivered that was not.

Each test runs the real plugin (an inner pytest, in-process) or the Transport
against a raw-socket receiver from tests/hostile.py, then compares what the
receiver really accepted (requests it answered first with a complete,
well-framed 2xx, as h11 reads its bytes) with what the client acknowledged
(the journal's `.acked` count), and finally replays what is left to a good
receiver: every event must have arrived somewhere, exactly once after dropping
duplicate event_ids, as receivers do.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hostile import HostileServer, Reply, StalledListener, hostile, ok
from pytest_rt import http11
from pytest_rt.transport import HttpTarget, Transport, TransportError

from .helpers import assert_whole_stream, journal_events, journals, module_with, nodeids_of, replay

MAX_BODY: int = getattr(http11, "MAX_BODY", 1 << 20)
SOCKET_BUFFERS = 16 << 20  # what the kernel may have taken on loopback beyond what was read
BATCH = "X-Pytest-RT-Batch: 1"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy",
                   "NO_PROXY", "all_proxy", "ALL_PROXY")

# Written by the inner run: when its session finished, when it unconfigured, when its tests
# ran, and which sender threads were still alive after the plugin's own unconfigure.
CLOCK_CONFTEST = """
import json, pathlib, threading, time
import pytest

marks = {{}}

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid, location):
    marks.setdefault("tests_start", time.monotonic())

@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid, location):
    marks["tests_end"] = time.monotonic()

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    marks["finish"] = time.monotonic()

@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    marks["end"] = time.monotonic()
    marks["senders"] = [t.name for t in threading.enumerate()
                        if t.name == "pytest-rt-sender" and t.is_alive()]
    pathlib.Path({out!r}).write_text(json.dumps(marks))
"""


class Inner:
    """An inner pytest run with --rt against `url`, and what it left behind."""

    def __init__(self, rt: Any, url: str) -> None:
        self.pytester: pytest.Pytester = rt.pytester
        self.rt = rt
        rt.url = url
        pytester = self.pytester
        self.clock = pytester.path / "clock.json"
        pytester.makeconftest(CLOCK_CONFTEST.format(out=str(self.clock)))

    @property
    def spool(self) -> Path:
        return self.pytester.path / ".spool"

    def run(self, *args: str) -> pytest.RunResult:
        return self.rt.run(*args)

    def marks(self) -> dict[str, Any]:
        marks: dict[str, Any] = json.loads(self.clock.read_text())
        return marks

    def end_of_run(self) -> float:
        marks = self.marks()
        return float(marks["end"] - marks["finish"])

    def tests_time(self) -> float:
        marks = self.marks()
        return float(marks["tests_end"] - marks["tests_start"])

    def journal(self) -> tuple[list[dict[str, Any]], int]:
        """The run's events, from its journal, and how many it counts as acknowledged."""
        [path] = journals(self.spool)
        events = [json.loads(line) for line in journal_events(path)]
        acked_file = path.with_suffix(".acked")
        acked = int(acked_file.read_text().strip() or 0) if acked_file.exists() else 0
        return events, acked


def ids(events: list[dict[str, Any]]) -> set[str]:
    return {e["event_id"] for e in events}


def union(*streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event that arrived anywhere, duplicates dropped, in seq order."""
    seen: dict[str, dict[str, Any]] = {}
    for stream in streams:
        for event in stream:
            seen.setdefault(event["event_id"], event)
    return sorted(seen.values(), key=lambda e: e["seq"])


def replay_to(inner: Inner, url: str) -> None:
    if journals(inner.spool):
        done = replay(str(inner.spool), "--url", url, "--timeout", "20")
        assert done.returncode == 0, done.stdout + done.stderr


def by_index(first: Reply | bytes, then: Reply | bytes, until: int = 0,
             after: Reply | bytes | None = None) -> Any:
    """A script: `first` for request 0, `then` for requests 1..until (or all), then `after`."""
    def script(request: Any) -> Reply | bytes:
        if request.index == 0:
            return first
        if after is None or request.index <= until:
            return then
        return after
    return script


# -- item 1: a stray answer never acknowledges an event ---------------------------------------

def test_a_batching_receiver_answering_its_first_post_twice_gets_no_refused_event_acknowledged(
        rt, receiver):
    """Measured before the fix: ~186 of 2,000 events acknowledged that the receiver 503'd."""
    first = ok(200, b"{}", BATCH)
    script = by_index(Reply(first + first), ok(503, b"busy", BATCH))
    rt.pytester.makepyfile(test_mod=module_with(999))  # 2 + 2 * 999 = 2,000 events
    inner = Inner(rt, "")
    with hostile(script) as server:
        inner.rt.url = server.url
        inner.run("--rt-flush-timeout", "2").assert_outcomes(passed=999)
        accepted = server.accepted_events()
    events, acked = inner.journal()
    assert len(events) == 2000
    wrongly = ids(events[:acked]) - ids(accepted)
    assert not wrongly, f"{len(wrongly)} events acknowledged that the receiver refused"
    replay_to(inner, receiver.url)
    assert_whole_stream(union(accepted, receiver.events), nodeids_of("test_mod", 999))


def test_forty_unsolicited_200s_lose_no_event_sent_one_per_post(rt, receiver):
    """Before the fix each stray 200 was taken for the answer to the next event: 40 lost."""
    retry_now = ok(503, b"busy", "Retry-After: 0")
    script = by_index(Reply(ok() + ok() * 40), retry_now, until=40, after=ok())
    rt.pytester.makepyfile(test_mod=module_with(30))
    inner = Inner(rt, "")
    with hostile(script) as server:
        inner.rt.url = server.url
        inner.run("--rt-flush-timeout", "5").assert_outcomes(passed=30)
        accepted = server.accepted_events()
    replay_to(inner, receiver.url)
    assert_whole_stream(union(accepted, receiver.events), nodeids_of("test_mod", 30))


# -- item 2: an endless or huge answer stalls neither the tests nor the end of the run ---------

CPU_BOUND = "\n".join(
    ["import time"] +
    [f"def test_{i:03d}():\n    assert sum(k * k for k in range(20000)) > 0\n"
     for i in range(200)])

ENDLESS = {
    "10 GB Content-Length": (b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
                             b"x" * 65536),
    "huge chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n",
                   b"x" * 65536),
    "endless chunk extension": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
                                b"e" * 65536),
    "endless body without framing": (b"HTTP/1.1 200 OK\r\n\r\n", b"z" * 65536),
}


@pytest.mark.parametrize("name", list(ENDLESS))
def test_an_endless_answer_neither_stalls_the_tests_nor_holds_more_than_the_caps(
        rt, receiver, name):
    head, filler = ENDLESS[name]
    flush = 2.0
    rt.pytester.makepyfile(test_cpu=CPU_BOUND)
    inner = Inner(rt, "")
    with hostile(lambda request: Reply(head, endless=filler)) as server:
        inner.rt.url = server.url
        inner.run("--rt-flush-timeout", str(flush)).assert_outcomes(passed=200)
        sent = dict(server.sent)
        accepted = server.accepted_events()
    marks = inner.marks()
    assert marks["senders"] == []
    # No timing assertion (load on the machine moves it): what stalled the tests before was
    # reading an ever-growing buffer, and what is read is bounded by the caps below.
    # benchmarks/bench_plugin.py --hostile measures the tests' time against a good receiver.
    assert inner.end_of_run() < flush + 15  # a hang, not a figure (a loaded CI machine)
    assert sent and max(sent.values()) <= http11.MAX_HEAD + MAX_BODY + SOCKET_BUFFERS, sent
    events, acked = inner.journal()
    assert accepted == [] and acked == 0  # no answer was ever complete
    replay_to(inner, receiver.url)
    assert_whole_stream(union(receiver.events), [f"test_cpu.py::test_{i:03d}" for i in range(200)])
    assert len(events) == 402


# -- item 4: a stalled connect or TLS handshake is cut at the deadline -------------------------

@pytest.fixture(params=["TLS handshake", "connect"])
def stalled_url(request, silent_port):
    if request.param == "TLS handshake":
        yield f"https://127.0.0.1:{silent_port}/loader"  # accepts TCP, never speaks TLS
        return
    stalled = StalledListener()
    try:
        yield f"http://127.0.0.1:{stalled.port}/loader"
    finally:
        stalled.close()


def test_abort_ends_a_stalled_connect_or_handshake_at_once(stalled_url):
    transport = Transport(HttpTarget(url=stalled_url, timeout=30))
    errors: list[BaseException] = []

    def post() -> None:
        try:
            transport.post(b"{}")
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    time.sleep(0.3)  # inside connect() or the handshake by now
    transport.abort()
    thread.join(5.0)  # the cut takes one 50 ms slice; the rest is room for a busy machine
    still_stuck = thread.is_alive()
    transport.close()
    assert not still_stuck, "abort() left the request stalled in connect or the handshake"
    assert len(errors) == 1 and isinstance(errors[0], TransportError), errors


def test_a_stalled_connect_or_handshake_ends_the_run_on_time_with_no_sender_left(
        rt, stalled_url):
    flush = 3.0
    rt.pytester.makepyfile(test_mod=module_with(2))
    inner = Inner(rt, stalled_url)
    result = inner.run("--rt-timeout", "30", "--rt-flush-timeout", str(flush))
    result.assert_outcomes(passed=2)
    marks = inner.marks()
    assert marks["senders"] == [], "the sender thread outlived pytest_unconfigure"
    # The contract is flush + 1 s (benchmarks/bench_plugin.py --hostile measures it); the bug
    # left the sender stalled in connect past unconfigure (checked above). Here: a hang only.
    assert inner.end_of_run() <= flush + 12, inner.end_of_run()
    events, acked = inner.journal()
    assert (len(events), acked) == (6, 0)  # all kept for replay


# -- review leftovers: a 404/405 mid-deploy, a 407 to CONNECT ---------------------------------

@pytest.mark.parametrize("status", [404, 405])
def test_a_404_or_405_after_the_first_delivery_rejects_nothing_for_good(rt, receiver, status):
    """A load balancer mid-deploy: a few 404/405s between 200s; every event must arrive."""
    script = by_index(ok(), ok(status, b"not here"), until=3, after=ok())
    rt.pytester.makepyfile(test_mod=module_with(5))
    inner = Inner(rt, "")
    with hostile(script) as server:
        inner.rt.url = server.url
        result = inner.run("--rt-flush-timeout", "5")
        accepted = server.accepted_events()
    result.assert_outcomes(passed=5)
    assert "rejected an event" not in result.stdout.str()
    replay_to(inner, receiver.url)
    assert_whole_stream(union(accepted, receiver.events), nodeids_of("test_mod", 5))


def test_a_proxy_answering_407_to_connect_stops_delivery_at_once_and_keeps_the_events(
        rt, monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    flush = 30.0
    refuse = Reply(ok(407, b"", 'Proxy-Authenticate: Basic realm="x"'))
    rt.pytester.makepyfile(test_mod=module_with(2))
    inner = Inner(rt, "https://receiver.example/loader")  # only the proxy could reach it
    with hostile(lambda request: refuse) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        result = inner.run("--rt-flush-timeout", str(flush))
        connects = [r for r in proxy.requests if r.method == "CONNECT"]
    result.assert_outcomes(passed=2)
    assert connects and len(connects) <= 2, f"{len(connects)} CONNECTs: retried instead of stopping"
    assert inner.end_of_run() < flush / 3  # the bug retried up to the flush timeout
    assert "407" in result.stdout.str()
    events, acked = inner.journal()
    assert (len(events), acked) == (6, 0)


def test_the_hostile_server_itself_records_what_h11_parses(receiver):
    """The helper's own check: a well-framed 2xx is accepted, anything else is not."""
    answers = [Reply(ok()), Reply(ok(503)), Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")]
    with HostileServer(lambda request: answers[request.index]) as server:
        transport = Transport(HttpTarget(url=server.url, timeout=0.5))
        try:
            statuses = [transport.post(b'{"event_id": "%d", "seq": %d}' % (i, i)).status
                        for i in range(2)]
            with pytest.raises(TransportError):
                transport.post(b'{"event_id": "2", "seq": 2}')
        finally:
            transport.close()
        assert statuses == [200, 503]
        assert [e["seq"] for e in server.accepted_events()] == [0]
        assert [r.index for r in server.requests] == [0, 1, 2]
