"""A real uvicorn: persistence across restarts, live events, shutdown, and ``serve_main``."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from rt_server_events import Run
from rt_server_live import LiveServer, start_server

from pytest_rt.server.cli import parse_config, serve_main
from pytest_rt.server.config import ServeConfig, db_url_from_arg, is_loopback
from pytest_rt.server.runner import public_without_token


def test_jobs_survive_a_restart(config: ServeConfig, sqlite_db: str) -> None:
    run = Run()
    passing = run.passing("a::t")
    first = start_server(config, sqlite_db)
    try:
        with httpx.Client(base_url=first.url) as client:
            response = client.post("/loader", json=[run.start_run(["a::t"]), *passing])
            assert response.status_code == 200
    finally:
        first.stop()
    second = start_server(config, sqlite_db)
    try:
        with httpx.Client(base_url=second.url) as client:
            detail = client.get(f"/api/jobs/{run.job_id}").json()
            assert detail["tests"][0]["status"] == "passed"
            again = client.post("/loader", json=passing)
            assert again.json() == {"accepted": 0, "duplicates": 2}  # event ids persisted too
    finally:
        second.stop()


class EventReader:
    """Reads ``/api/events`` on a thread; `messages` gets each parsed ``data:`` line."""

    def __init__(self, url: str) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.ended = threading.Event()
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the event stream did not open"

    def _read(self, url: str) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(5, read=30)) as client, client.stream(
                "GET", url
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    self.lines.append(line)
                    if line.startswith(": connected"):
                        self.connected.set()
                    if line.startswith("data: "):
                        self.messages.put(json.loads(line[len("data: ") :]))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, timeout: float = 10) -> dict[str, Any]:
        return self.messages.get(timeout=timeout)


def test_the_event_stream_shows_each_change(live_server: LiveServer) -> None:
    run = Run()
    other = Run()
    everything = EventReader(f"{live_server.url}/api/events")
    one_job = EventReader(f"{live_server.url}/api/events?job={run.job_id}")
    with httpx.Client(base_url=live_server.url) as client:
        client.post("/loader", json=run.start_run(["a::t1"]))
        client.post("/loader", json=other.start_run(["b::t"]))
        client.post("/loader", json=run.start("a::t1"))
        client.post("/loader", json=run.stop("a::t1", "failed", msg="boom"))
        client.post("/loader", json=run.stop_run(exitstatus=1))
    # Coalesced: one message per job per window, with the tests that moved in it.
    mine = [one_job.next()]
    while "job_finished" not in mine[-1]["kinds"]:
        mine.append(one_job.next())
    kinds = [k for m in mine for k in m["kinds"]]
    assert kinds == ["job_started", "test_started", "test_finished", "job_finished"]
    assert all(m["job_id"] == run.job_id for m in mine)
    tests = {t["nodeid"]: t for m in mine for t in m["tests"]}
    assert tests["a::t1"]["status"] == "failed" and tests["a::t1"]["msg"] == "boom"
    assert mine[-1]["kind"] == "job_finished" and mine[-1]["job"]["status"] == "failed"
    assert mine[-1]["job"]["counts"]["failed"] == 1
    # The jobs list gets each job's changes, without tests.
    seen = [everything.next()]
    while not any(m["job_id"] == run.job_id and "job_finished" in m["kinds"] for m in seen) or (
        not any(m["job_id"] == other.job_id for m in seen)
    ):
        seen.append(everything.next())
    assert {m["job_id"] for m in seen} == {run.job_id, other.job_id}
    assert not any("tests" in m for m in seen)
    assert one_job.messages.empty()
    live_server.stop()
    assert one_job.ended.wait(5) and everything.ended.wait(5)


def test_a_client_that_goes_away_is_unsubscribed(live_server: LiveServer) -> None:
    hub = live_server.server.hub
    with socket.create_connection(("127.0.0.1", live_server.server.port), timeout=5) as sock:
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        received = b""
        while b": connected" not in received:
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
        assert hub.subscribers == 1
    deadline = time.monotonic() + 5
    while hub.subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.subscribers == 0


def test_a_server_with_an_open_event_stream_stops_quickly(live_server: LiveServer) -> None:
    reader = EventReader(f"{live_server.url}/api/events")
    took = live_server.stop()
    assert took < 3, f"stopping took {took:.1f}s"
    assert reader.ended.wait(5)


def test_serve_prints_its_url_accepts_with_the_token_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "served.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_rt.server.cli", "--port", "0", "--db", str(db),
         "--token", "tok-123"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("pytest-rt receiver: http://127.0.0.1:"), line
        assert f"(db: sqlite:///{db})" in line
        base = line.split()[2]
        run = Run()
        with httpx.Client(base_url=base) as client:
            denied = client.post("/loader", json=run.start_run(["a::t"]))
            assert denied.status_code == 401
            ok = client.post(
                "/loader",
                json=run.start_run(["a::t"]),
                headers={"Authorization": "Bearer tok-123"},
            )
            assert ok.status_code == 200
            reader = EventReader(f"{base}api/events")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=10)
            assert reader.ended.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "tok-123" not in out + err + line
    assert "Traceback" not in err


def test_serve_without_the_server_extra_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from pytest_rt.server.cli import serve_main\n"
        "sys.exit(serve_main([]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'pip install "pytest-rt[server]"' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_serve_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--port", "70000"]) == 2
    assert serve_main(["--max-body", "0"]) == 2
    assert serve_main(["--nope"]) == 2
    assert "--port" in capsys.readouterr().err


def test_options_resolve_into_one_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTEST_RT_TOKEN", "from-env")
    config = parse_config(["--db", str(tmp_path / "x.db"), "--max-body", "5"])
    assert config == ServeConfig(
        db_url=f"sqlite:///{tmp_path / 'x.db'}", token="from-env", max_body=5
    )
    assert parse_config(["--token", "cli"]).token == "cli"
    assert "from-env" not in repr(config)
    assert db_url_from_arg("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert db_url_from_arg("sqlite:///x.db") == "sqlite:///x.db"


def test_a_public_address_without_a_token_is_warned_about() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert public_without_token(replace(ServeConfig(), host="0.0.0.0"))
    assert not public_without_token(replace(ServeConfig(), host="0.0.0.0", token="t"))
    assert not public_without_token(ServeConfig())


def test_the_dashboard_url_is_printed_after_binding(
    config: ServeConfig, sqlite_db: str
) -> None:
    live = start_server(config, sqlite_db)
    try:
        deadline = time.monotonic() + 5
        with httpx.Client(base_url=live.url) as client:
            while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        live.stop()
