"""Shared fixtures: a real HTTP receiver on 127.0.0.1 (free port) that records events.

The receiver is the standard library's ThreadingHTTPServer, so what the plugin
talks to is a real socket and a real HTTP parser; its behaviour (batching
offer, scripted failures, silence) is set per test.

No test reaches port 8765, the default receiver's (port_guard/rt_port_guard.py): in this
process and in every pytest the tests start, a connection there is refused, and the test
that tried fails. The user's own PYTEST_RT_* settings are hidden from the tests.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# httpx imports httpcore at its first request. A pytester test's first request would then
# have httpcore dropped again when pytester restores sys.modules, and a later test's
# requests would raise a new httpcore's errors that httpx no longer maps to its own (a
# 'Server disconnected' escaping `except httpx.HTTPError`). Imported here, it stays.
with contextlib.suppress(ImportError):  # (a venv without httpx)
    import httpcore  # noqa: F401

# Property tests: CI's machine has two cores and runs three lanes of tests at once, so data
# generation may be slow; that is no failure of the property (explicit settings still win).
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("pytest-rt", deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("pytest-rt")
except ImportError:  # hypothesis is a test dependency; the bare venvs have it too
    pass

# -- the guard of port 8765 ----------------------------------------------------------------

GUARD_DIR = Path(__file__).with_name("port_guard")
GUARD = "rt_port_guard"


def _load_guard() -> Any:
    """rt_port_guard, imported once per process, under the name port_guard/sitecustomize.py
    imports it by (the sockets are patched once)."""
    if GUARD not in sys.modules:
        spec = importlib.util.spec_from_file_location(GUARD, GUARD_DIR / f"{GUARD}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[GUARD] = module
        spec.loader.exec_module(module)
    return sys.modules[GUARD]


guard = _load_guard()


def _prepended(name: str, value: str, sep: str) -> str:
    return sep.join([value, *(item for item in os.environ.get(name, "").split(sep) if item)])


@pytest.fixture(scope="session", autouse=True)
def _test_environment() -> Iterator[None]:
    """What every test runs in:

    - every Python a test starts loads the guard (port_guard/sitecustomize.py on PYTHONPATH;
      a sitecustomize runs before xdist replaces a worker's sys.path);
    - its own log of attempts, one per process of the suite (each xdist worker its own);
    - the user's PYTEST_RT_URL, _TOKEN, _JOB_ID... are hidden: they would reach the inner
      runs (only once the tests run: the suite itself may run with --rt and them).
    """
    fd, log = tempfile.mkstemp(prefix="pytest-rt-guard-", suffix=".log")
    os.close(fd)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PYTEST_RT_") and not name.startswith("PYTEST_RT_TEST_"):
                mp.delenv(name)
        mp.setenv("PYTHONPATH", _prepended("PYTHONPATH", str(GUARD_DIR), os.pathsep))
        mp.setenv(guard.LOG, log)
        yield
    Path(log).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _port_8765_is_off_limits(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it, or anything it started, tried to connect to port 8765."""
    log = Path(os.environ[guard.LOG])
    log.write_text("")
    yield
    attempts = log.read_text().splitlines()
    if attempts and "default_port_refused" not in request.fixturenames:
        pytest.fail(f"tried to reach port {guard.PORT} (the default receiver's; use the "
                    f"`receiver` fixture or `dead_url`):\n" + "\n".join(attempts[:5]),
                    pytrace=False)


@pytest.fixture
def default_port_refused() -> None:
    """For the tests of the default URL: their connections to port 8765 are refused by the
    guard, as if nobody listened, and do not fail them."""


@dataclass
class Behaviour:
    batch: bool = False  # answer with X-Pytest-RT-Batch: 1
    heartbeat: str | None = None  # answer with X-Pytest-RT-Heartbeat: <this>
    dashboard: str | None = None  # answer with X-Pytest-RT-Dashboard: <this>
    fail_first: int = 0  # answer the first N requests with `fail_status`
    fail_status: int = 503
    retry_after: str | None = None
    reset_first: int = 0  # close the first N connections without an answer
    delay: float = 0.0  # seconds before answering
    reject: Callable[[Any], int | None] | None = None  # status for a body, or None


@dataclass
class Receiver:
    """A recording HTTP receiver; `events` holds every accepted event in arrival order."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    events: list[dict[str, Any]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)  # each accepted POST body, parsed
    headers: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loader"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle and the
            # client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver._decide(body, dict(self.headers))
                if status is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                answer = b'{"ok": true}' if status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                if receiver.behaviour.batch:
                    self.send_header("X-Pytest-RT-Batch", "1")
                if receiver.behaviour.heartbeat:
                    self.send_header("X-Pytest-RT-Heartbeat", receiver.behaviour.heartbeat)
                if receiver.behaviour.dashboard:
                    self.send_header("X-Pytest-RT-Dashboard", receiver.behaviour.dashboard)
                if receiver.behaviour.retry_after and status >= 400:
                    self.send_header("Retry-After", receiver.behaviour.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self.port = server.server_address[1]
        self._server = server
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def _decide(self, body: bytes, headers: dict[str, str]) -> int | None:
        b = self.behaviour
        if b.delay:
            time.sleep(b.delay)
        with self.lock:
            self.requests += 1
            n = self.requests
        if n <= b.reset_first:
            return None
        if n <= b.reset_first + b.fail_first:
            return b.fail_status
        parsed = json.loads(body)
        if b.reject is not None and (status := b.reject(parsed)) is not None:
            return status
        with self.lock:
            self.bodies.append(parsed)
            self.headers.append(headers)
            self.events.extend(parsed if isinstance(parsed, list) else [parsed])
        return 200

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what tests ask ------------------------------------------------------------------

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_]

    def unique(self) -> list[dict[str, Any]]:
        """Events with duplicate event_ids dropped, as docs/protocol.md tells receivers."""
        seen: set[str] = set()
        out = []
        for event in self.events:
            if event["event_id"] not in seen:
                seen.add(event["event_id"])
                out.append(event)
        return out

    def stops(self) -> dict[str, dict[str, Any]]:
        """stopTestItem by node id (asserting there is one per test)."""
        stops = self.of_type("stopTestItem")
        by_id = {e["test"]: e for e in stops}
        assert len(by_id) == len(stops), [e["test"] for e in stops]
        return by_id


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A URL nobody listens on: connections are refused.

    The port stays bound (without listening) for the test, so a receiver the
    test starts afterwards can't be given the same port.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/loader"
    sock.close()


class RtRun:
    """Runs an inner pytest with --rt against a URL, in-process or in a subprocess."""

    def __init__(self, pytester: pytest.Pytester, url: str) -> None:
        self.pytester = pytester
        self.url = url

    def args(self, *args: str) -> list[str]:
        spool = str(self.pytester.path / ".spool")
        return ["--rt", "--rt-url", self.url, "--rt-spool", spool, "-p", "no:cacheprovider",
                *args]

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest(*self.args(*args))

    def run_subprocess(self, *args: str, timeout: float = 60) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self.args(*args), timeout=timeout)


@pytest.fixture
def rt(pytester: pytest.Pytester, receiver: Receiver) -> RtRun:
    return RtRun(pytester, receiver.url)
