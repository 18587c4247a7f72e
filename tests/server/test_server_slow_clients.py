"""Issue 8, slow and greedy clients: real uvicorn on a free port, raw sockets.

Each test is a finding that failed before: half-sent heads were never timed
out, bodies had no deadline and no shared memory budget, connections had no
cap, and the open-file limit was never raised.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from rt_server_live import LiveServer, start_server

from pytest_rt.server.config import ServeConfig

HEAD = b"POST /loader HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@contextmanager
def server(sqlite_db: str, **options: object) -> Iterator[LiveServer]:
    config = replace(ServeConfig(port=0), **options)  # type: ignore[arg-type]
    running = start_server(config, sqlite_db)
    try:
        yield running
    finally:
        running.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before it closed the connection, or None if it kept it open."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return got


def test_a_half_sent_head_is_closed_after_the_head_timeout(sqlite_db: str) -> None:
    with server(sqlite_db, head_timeout=0.5) as live, ExitStack() as stack:
        silent = stack.enter_context(connect(live.server.port))
        half = stack.enter_context(connect(live.server.port))
        half.sendall(HEAD)  # no blank line: the head never ends
        begin = time.monotonic()
        assert closed_within(half, 5) == b""
        assert closed_within(silent, 5) == b""
        assert time.monotonic() - begin < 3


def test_a_kept_alive_connection_that_starts_a_head_and_stalls_is_closed(sqlite_db: str) -> None:
    with server(sqlite_db, head_timeout=0.5) as live, connect(live.server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b'{"status":"ok"}' not in answer:
            answer += sock.recv(65536)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # uvicorn's keep-alive timer stops here
        assert closed_within(sock, 5) == b""


def test_a_body_that_does_not_arrive_in_time_gets_408(sqlite_db: str) -> None:
    with server(sqlite_db, body_timeout=0.5) as live, connect(live.server.port) as sock:
        sock.sendall(HEAD + b"Content-Length: 100\r\n\r\n[{")
        answer = closed_within(sock, 5)
        assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
        assert b"did not arrive" in answer


def test_bodies_past_the_inflight_budget_get_503_and_the_budget_comes_back(
    sqlite_db: str,
) -> None:
    with server(sqlite_db, max_body=100_000, max_inflight=100_000) as live, ExitStack() as stack:
        greedy = stack.enter_context(connect(live.server.port))
        greedy.sendall(HEAD + b"Content-Length: 99000\r\n\r\n" + b" " * 90_000)
        time.sleep(0.5)
        second = stack.enter_context(connect(live.server.port))
        second.sendall(HEAD + b"Content-Length: 20000\r\n\r\n" + b" " * 20_000)
        answer = closed_within(second, 5)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503"), answer
        assert b"retry-after: 1" in answer.lower()
        greedy.close()
        time.sleep(0.3)
        ok = httpx.post(f"{live.url}/loader", json={"type": "stopTestRun", "job_id": "j"})
        assert ok.status_code == 200, ok.text


def test_past_the_connection_cap_the_connection_idle_longest_is_closed(sqlite_db: str) -> None:
    with server(sqlite_db, max_connections=5) as live, ExitStack() as stack:
        idle = [stack.enter_context(connect(live.server.port)) for _ in range(5)]
        time.sleep(0.2)
        with httpx.Client(base_url=live.url, timeout=5) as client:
            assert client.get("/healthz").status_code == 200
        assert closed_within(idle[0], 5) == b""  # the oldest made room
        assert closed_within(idle[-1], 0.3) is None  # the newest stays


# ---- a real ``pytest-rt serve`` with a low open-file limit ---------------------------

TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("i", range(100))
    def test_n(i):
        assert i % 10 != 7
    """
)


@contextmanager
def serve_process(tmp_path: Path, nofile: tuple[int, int], *args: str) -> Iterator[str]:
    """``pytest-rt serve`` in a subprocess whose open-file limit is ``nofile``."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_rt.cli", "serve", "--port", "0",
         "--db", str(tmp_path / "rt.sqlite3"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "pytest-rt receiver: http://" in line, (line, proc.stderr and proc.stderr.read())
        url = line.split()[2].rstrip("/")
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def nofile_of(url: str) -> tuple[int, int]:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    pid = int(out.stdout.split("pid=")[1].split(",")[0])
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_serve_raises_its_open_file_limit_to_the_hard_limit(tmp_path: Path) -> None:
    with serve_process(tmp_path, (256, 512)) as url:
        assert nofile_of(url) == (512, 512)


def test_300_half_sent_heads_against_256_files_leave_health_and_a_real_run_whole(
    tmp_path: Path,
) -> None:
    with serve_process(tmp_path, (256, 256)) as url, ExitStack() as stack:
        port = int(url.rsplit(":", 1)[1])
        opened = 0
        for _ in range(300):
            try:
                sock = stack.enter_context(connect(port))
                sock.sendall(HEAD)
                opened += 1
            except OSError:  # closed to make room: as a slow client would find it
                pass
        assert opened >= 250
        begin = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - begin < 2
        (tmp_path / "test_many.py").write_text(TESTS)
        job = tmp_path / "job.txt"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             "--rt", "--rt-url", f"{url}/loader", "--rt-job-file", str(job), str(tmp_path)],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
            env={**os.environ, "PYTEST_ADDOPTS": ""},
        )
        assert "events delivered" in run.stdout, run.stdout[-2000:]
        detail = httpx.get(f"{url}/api/jobs/{job.read_text().strip()}", timeout=10).json()
        assert detail["job"]["status"] == "failed"
        assert detail["job"]["counts"]["passed"] == 90 and detail["job"]["counts"]["failed"] == 10


def peak_rss_mb(url: str) -> float:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    pid = int(out.stdout.split("pid=")[1].split(",")[0])
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_start_test_run_of_a_million_tests_gets_413_at_once_within_500_mb(
    tmp_path: Path,
) -> None:
    tests = ",".join(f'"t{i}"' for i in range(1_000_000))
    body = f'{{"type":"startTestRun","job_id":"huge","tests":[{tests}]}}'.encode()
    assert len(body) < 10 * 1024 * 1024  # under --max-body: the test limit is what refuses
    with serve_process(tmp_path, (1024, 1024)) as url, httpx.Client(timeout=30) as client:
        begin = time.monotonic()
        answer = client.post(
            f"{url}/loader", content=body, headers={"Content-Type": "application/json"}
        )
        took = time.monotonic() - begin
        assert answer.status_code == 413 and "1000000 tests" in answer.text
        assert took < 5
        other = client.post(f"{url}/loader", json={"type": "stopTestRun", "job_id": "other"})
        assert other.status_code == 200
        assert peak_rss_mb(url) < 500
