"""`pytest-rt watch`: a real receiver, a real `pytest --rt` run, and the watcher as a subprocess.

Where a receiver's misbehaviour is the point (a dropped or silent stream), a small
stdlib server stands in for it on a free port.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rt_server_live import LiveServer

from pytest_rt import watch
from pytest_rt.watch import MISSING_EXTRA, WatchError

pytest.importorskip("rich")

FAILING = """
import time

def test_passes():
    time.sleep(0.3)

def test_fails():
    assert 1 == 2, "the sum is off"
"""
PASSING = """
def test_one():
    pass

def test_two():
    pass
"""
# ESC ] 0 ; ... BEL would set the terminal's title; rich never writes it itself.
HOSTILE_ID = "[bold red]x[/]\x1b]0;pwned\x07"
HOSTILE = f"""
import pytest

@pytest.mark.parametrize("n", [1], ids=[{HOSTILE_ID!r}])
def test_markup(n):
    assert False, "[link=https://example.com]click[/link] \\x1b[5mblink"
"""


def watch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_rt.cli", "watch", *args]


def start_watch(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        watch_command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def run_watch(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(watch_command(*args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def wait_for_line(stream: Any, needle: str, timeout: float = 30) -> str:
    """Read ``stream`` (a pipe) line by line until one contains ``needle``."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no line with {needle!r} within {timeout} s: {seen}")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"pytest-rt watch did not end:\n{out}\n{err}") from None
    return proc.returncode, out, err


def rt_run(pytester: pytest.Pytester, server: LiveServer, job_id: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--rt", "--rt-url", f"{server.url}/loader", "--rt-job-id", job_id,
        "--rt-spool", str(pytester.path / ".spool"), "-p", "no:cacheprovider", timeout=120,
    )


@pytest.fixture
def watching_latest(
    pytester: pytest.Pytester, live_server: LiveServer
) -> Iterator[subprocess.Popen[str]]:
    """`pytest-rt watch --latest`, started on an empty receiver and waiting for a job."""
    proc = start_watch("--latest", "--url", live_server.url, "--wait", "60", cwd=pytester.path)
    try:
        # Only once it waits does the run start: it then sees the job as new however
        # quickly the run ends.
        wait_for_line(proc.stderr, "waiting up to 60 s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# -- following a real run ------------------------------------------------------------------


def test_watch_latest_prints_the_failures_and_exits_1_when_the_run_fails(
    pytester: pytest.Pytester, live_server: LiveServer,
    watching_latest: subprocess.Popen[str],
) -> None:
    pytester.makepyfile(test_w=FAILING)
    job_id = f"w-{uuid.uuid4().hex}"
    assert rt_run(pytester, live_server, job_id).ret == 1
    status, out, err = finish(watching_latest)
    assert status == 1, (out, err)
    lines = out.splitlines()
    assert lines[0] == f"pytest-rt watch: job {job_id}: {live_server.url}/jobs/{job_id}"
    assert "FAILED test_w.py::test_fails" in lines, (out, err)
    failed = lines.index("FAILED test_w.py::test_fails")
    assert "the sum is off" in lines[failed + 1]
    assert lines[-1].startswith(f"pytest-rt watch: job {job_id} failed: 1 passed, 1 failed in ")
    assert out.count("test_fails") == 1


def test_watch_latest_exits_0_when_the_run_passes(
    pytester: pytest.Pytester, live_server: LiveServer,
    watching_latest: subprocess.Popen[str],
) -> None:
    pytester.makepyfile(test_w=PASSING)
    job_id = f"w-{uuid.uuid4().hex}"
    assert rt_run(pytester, live_server, job_id).ret == 0
    status, out, err = finish(watching_latest)
    assert status == 0, (out, err)
    assert "FAILED" not in out
    assert out.splitlines()[-1].startswith(f"pytest-rt watch: job {job_id} passed: 2 passed")


def test_a_finished_job_prints_its_failures_and_summary_and_exits_with_its_status(
    pytester: pytest.Pytester, live_server: LiveServer
) -> None:
    pytester.makepyfile(test_w=FAILING)
    job_id = f"w-{uuid.uuid4().hex}"
    rt_run(pytester, live_server, job_id)
    done = run_watch(job_id, "--url", f"{live_server.url}/loader", cwd=pytester.path)
    assert done.returncode == 1, done
    assert "FAILED test_w.py::test_fails" in done.stdout
    assert f"job {job_id} failed: 1 passed, 1 failed" in done.stdout
    # The link the run prints ('live at ...') names the receiver and the job alike.
    link = run_watch(f"{live_server.url}/jobs/{job_id}", cwd=pytester.path)
    assert (link.returncode, link.stdout) == (1, done.stdout)


def test_an_unknown_job_exits_2_with_one_line(
    pytester: pytest.Pytester, live_server: LiveServer
) -> None:
    done = run_watch("no-such-job", "--url", live_server.url, cwd=pytester.path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"pytest-rt watch: no job 'no-such-job' at {live_server.url}\n"


def test_an_unreachable_receiver_exits_2_with_one_line(
    pytester: pytest.Pytester, dead_url: str
) -> None:
    for args in (["--latest"], ["some-job"]):
        done = run_watch(*args, "--url", dead_url, cwd=pytester.path)
        assert done.returncode == 2, done
        base = dead_url.removesuffix("/loader")
        assert done.stderr.startswith(f"pytest-rt watch: cannot reach the receiver at {base}: ")
        assert done.stderr.count("\n") == 1, done.stderr


def test_a_test_name_with_markup_and_escapes_is_printed_as_text_in_logs_and_terminals(
    pytester: pytest.Pytester, live_server: LiveServer
) -> None:
    pytester.makepyfile(test_m=HOSTILE)
    # pytest escapes control characters in ids unless told otherwise: let the ESC through.
    pytester.makeini("[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community"
                     "_support = true\n")
    job_id = f"w-{uuid.uuid4().hex}"
    rt_run(pytester, live_server, job_id)
    shown = "test_m.py::test_markup[[bold red]x[/]\\x1b]0;pwned\\x07]"

    logs = run_watch(job_id, "--url", live_server.url, cwd=pytester.path)
    assert logs.returncode == 1, logs
    assert f"FAILED {shown}" in logs.stdout.splitlines()
    assert "[link=https://example.com]click[/link] \\x1b[5mblink" in logs.stdout
    assert "\x1b" not in logs.stdout

    status, terminal = run_in_terminal(watch_command(job_id, "--url", live_server.url),
                                       cwd=pytester.path)
    assert status == 1, terminal
    assert shown in terminal
    assert "[link=https://example.com]click[/link] \\x1b[5mblink" in terminal
    assert "\x1b]0;pwned" not in terminal and "\x1b[5m" not in terminal


def run_in_terminal(command: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdout and stderr: (status, output)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "300", "TERM": "xterm-256color"}
    proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=secondary,
                            stderr=secondary, env=env)
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError as exc:  # EIO: the terminal's other side closed
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
        status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    return status, b"".join(chunks).decode("utf-8", "replace")


def test_the_terminal_shows_a_live_bar_and_the_failures_of_a_running_job(
    pytester: pytest.Pytester, live_server: LiveServer
) -> None:
    pytester.makepyfile(test_w=FAILING)
    job_id = f"w-{uuid.uuid4().hex}"
    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(_run_after_a_while(pytester, live_server, job_id)))
    runner.start()
    try:
        status, terminal = run_in_terminal(
            watch_command("--latest", "--url", live_server.url, "--wait", "60"),
            cwd=pytester.path)
    finally:
        runner.join(120)
    assert result == [1]
    assert status == 1, terminal
    assert "FAILED" in terminal and "test_w.py::test_fails" in terminal
    assert "2/2" in terminal  # the bar: tests done out of the job's total
    assert "1 passed" in terminal and "1 failed" in terminal


def _run_after_a_while(pytester: pytest.Pytester, server: LiveServer, job_id: str) -> int:
    time.sleep(1.5)  # the watcher is waiting by now (and sees the job as new if not)
    return int(rt_run(pytester, server, job_id).ret)


# -- the command itself --------------------------------------------------------------------


def test_without_rich_it_names_the_extra_and_exits_2(pytester: pytest.Pytester) -> None:
    code = ("import sys; sys.modules['rich'] = None\n"
            "from pytest_rt.cli import main; sys.exit(main(['watch', '--latest']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=pytester.path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", MISSING_EXTRA + "\n")


def test_ctrl_c_exits_130(pytester: pytest.Pytester, live_server: LiveServer) -> None:
    proc = start_watch("--latest", "--url", live_server.url, "--wait", "60", cwd=pytester.path)
    try:
        wait_for_line(proc.stderr, "waiting up to 60 s")
        proc.send_signal(signal.SIGINT)
        status, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert status == 130
    assert err.endswith("pytest-rt watch: interrupted\n")
    assert "Traceback" not in err


def test_usage_errors_exit_2(pytester: pytest.Pytester) -> None:
    both = run_watch("a-job", "--latest", "--url", "http://127.0.0.1:9/", cwd=pytester.path)
    assert (both.returncode, both.stderr) == (
        2, "pytest-rt watch: give a JOB_ID or --latest, not both\n")
    bad_url = run_watch("a-job", "--url", "ftp://example.com", cwd=pytester.path)
    assert bad_url.returncode == 2
    assert bad_url.stderr == (
        "pytest-rt watch: not an http(s) URL of a receiver: 'ftp://example.com'\n")
    assert run_watch("--wait", "soon", cwd=pytester.path).returncode == 2


# -- a receiver that drops or stops talking ------------------------------------------------


class FakeReceiver:
    """Answers the reads `watch` makes for job ``J``; its event stream is scripted."""

    def __init__(self, stream: str, prefix: str = "") -> None:
        # "drop once": a failure, then the stream ends; "silent"; "passed": a job over.
        self.stream = stream
        self.prefix = prefix  # as a proxy serving it under a path would be asked
        self.paths: list[str] = []
        self.streams = 0
        self.sent = False
        self.caught_up = threading.Event()  # read the job's errors with a stream open
        self.stop = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                fake.paths.append(self.path)
                if not self.path.startswith(fake.prefix + "/"):
                    self.send_error(404)
                    return
                self.path = self.path[len(fake.prefix):]
                if self.path.startswith("/api/events"):
                    fake.streams += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(b": connected\n\n")
                    self.wfile.flush()
                    if fake.stream == "drop once" and fake.streams == 1:
                        self.wfile.write(fake.message())
                        return  # HTTP/1.0: the connection closes, the stream ends
                    if fake.stream == "one write":
                        # As the receiver sends one write's messages: each with the Job
                        # as it is after the write, over from the first message on.
                        fake.caught_up.wait(10)  # the watcher has read the job by now
                        fake.sent = True
                        self.wfile.write(fake.message("test_started") + fake.message())
                        self.wfile.flush()
                    fake.stop.wait(30)
                    return
                body = json.dumps(fake.answer(self.path)).encode()
                if fake.streams and "status=error" in self.path:
                    fake.caught_up.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def job(self) -> dict[str, Any]:
        # Over once the watcher has come back for a second stream.
        if self.stream == "passed":
            counts = dict.fromkeys(watch.SHOWN_COUNTS, 0) | {"passed": 2}
            return {"job_id": "J", "status": "passed", "total": 2, "counts": counts,
                    "duration": 0.5}
        over = self.sent or (self.streams >= 2 and self.stream == "drop once")
        counts = {"passed": 0, "failed": 1, "error": 0, "skipped": 0, "running": 0,
                  "not_started": 0 if over else 1, "aborted": 0}
        return {"job_id": "J", "status": "failed" if over else "running", "total": 2,
                "counts": counts, "outcome_counts": {"xfailed": 0, "xpassed": 0},
                "duration": 1.0, "eta_seconds": None, "collect_errors": []}

    def failed_test(self) -> dict[str, Any]:
        return {"nodeid": "t.py::test_f", "status": "failed", "outcome": "failed",
                "msg": "E   assert 0"}

    def answer(self, path: str) -> dict[str, Any]:
        over = self.sent or self.streams >= 2
        tests = [self.failed_test()] if "status=failed" in path and over else []
        return {"job": self.job(), "tests": tests, "tests_total": len(tests)}

    def message(self, kind: str = "test_finished") -> bytes:
        # The receiver's shape: one message per job per window, with the tests that moved.
        tests = [self.failed_test()] if kind == "test_finished" else []
        data = {"kind": kind, "kinds": [kind], "job_id": "J", "job": self.job(),
                "tests": tests}
        return f"data: {json.dumps(data)}\n\n".encode()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_receiver(request: pytest.FixtureRequest) -> Iterator[FakeReceiver]:
    fake = FakeReceiver(*request.param.split(" under "))
    yield fake
    fake.close()


@pytest.mark.parametrize("fake_receiver", ["drop once"], indirect=True)
def test_a_dropped_stream_is_opened_again_and_nothing_is_printed_twice(
    pytester: pytest.Pytester, fake_receiver: FakeReceiver
) -> None:
    done = run_watch("J", "--url", fake_receiver.url, cwd=pytester.path)
    assert done.returncode == 1, done
    assert fake_receiver.streams == 2
    assert done.stdout.count("FAILED t.py::test_f\n    E   assert 0\n") == 1
    assert "the receiver ended the stream; reconnecting (1/5)" in done.stderr
    assert done.stdout.splitlines()[-1] == "pytest-rt watch: job J failed: 1 failed in 1.00 s"


@pytest.mark.parametrize("fake_receiver", ["one write"], indirect=True)
def test_a_failure_after_a_message_saying_the_job_is_over_is_still_printed(
    pytester: pytest.Pytester, fake_receiver: FakeReceiver
) -> None:
    done = run_watch("J", "--url", fake_receiver.url, cwd=pytester.path)
    assert done.returncode == 1, done
    assert done.stdout.count("FAILED t.py::test_f\n    E   assert 0\n") == 1
    assert done.stdout.splitlines()[-1] == "pytest-rt watch: job J failed: 1 failed in 1.00 s"


@pytest.mark.parametrize("fake_receiver", ["silent"], indirect=True)
def test_a_silent_receiver_is_given_up_after_the_retries(
    pytester: pytest.Pytester, fake_receiver: FakeReceiver
) -> None:
    begin = time.monotonic()
    done = run_watch("J", "--url", fake_receiver.url, "--timeout", "0.5", "--retries", "1",
                     cwd=pytester.path)
    assert time.monotonic() - begin < 30
    assert done.returncode == 2, done
    assert fake_receiver.streams == 2
    last = done.stderr.splitlines()[-1]
    assert last == (f"pytest-rt watch: lost the receiver at {fake_receiver.url}: "
                    "nothing heard for 0.5 s")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("fake_receiver", ["passed under /rt"], indirect=True)
def test_a_receiver_served_under_a_path_is_reached_under_it(
    pytester: pytest.Pytester, fake_receiver: FakeReceiver
) -> None:
    done = run_watch("J", "--url", f"{fake_receiver.url}/rt/loader", cwd=pytester.path)
    assert done.returncode == 0, done
    assert done.stdout.splitlines() == [
        f"pytest-rt watch: job J: {fake_receiver.url}/rt/jobs/J",
        "pytest-rt watch: job J passed: 2 passed in 0.50 s",
    ]
    assert fake_receiver.paths and all(p.startswith("/rt/api/") for p in fake_receiver.paths)


# -- small parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "base"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/loader", "http://127.0.0.1:8000"),
    ("https://ci.example.com/rt/loader/", "https://ci.example.com/rt"),
    ("https://ci.example.com/rt", "https://ci.example.com/rt"),
])
def test_the_receivers_base_is_found_from_its_base_or_loader_url(given: str, base: str) -> None:
    assert watch.base_url(given) == base


@pytest.mark.parametrize("bad", ["127.0.0.1:8765", "ftp://x", "http://", "http://h:99999",
                                 "http://user:pw@h/loader"])
def test_a_url_that_is_not_a_receivers_is_refused(bad: str) -> None:
    with pytest.raises(WatchError):
        watch.base_url(bad)


def test_a_job_pages_url_names_the_receiver_and_the_job() -> None:
    assert watch.split_job_link("https://h/rt/jobs/a%2Fb") == ("https://h/rt", "a/b")
    assert watch.split_job_link("http://h:1/jobs/") is None
    assert watch.split_job_link("815c5b2d") is None


def test_control_characters_are_shown_escaped_and_text_is_kept() -> None:
    assert watch.literal("[red]x[/] é ✓") == "[red]x[/] é ✓"
    assert watch.literal("a\x1b[2Jb\rc\nd\u202ee") == "a\\x1b[2Jb\\x0dc\\x0ad\\u202ee"
    assert watch.literal("a\tb", keep_tabs=True) == "a\tb"


def test_the_gist_of_a_failure_is_its_error_lines_else_its_first_lines() -> None:
    traceback = (
        "def test():\n>       assert 1 == 2\nE       assert 1 == 2\n\nt.py:2: AssertionError"
    )
    assert watch.gist(traceback) == ["E       assert 1 == 2"]
    assert watch.gist("one\n\ntwo\nthree", limit=2) == ["one", "two", "... (1 more lines)"]
    assert watch.gist(None) == []


def test_a_reader_that_stops_early_gets_no_traceback(
    pytester: pytest.Pytester, live_server: LiveServer
) -> None:
    """`pytest-rt watch JOB | head`: the pipe closes while failures are still printed."""
    pytester.makepyfile(test_many="""
import pytest

@pytest.mark.parametrize("n", range(600))
def test_fails(n):
    assert "a long enough message to fill the pipe " * 4 == n
""")
    job_id = f"w-{uuid.uuid4().hex}"
    rt_run(pytester, live_server, job_id)
    proc = start_watch(job_id, "--url", live_server.url, cwd=pytester.path)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as head does after its lines
    err = proc.stderr.read()
    proc.stderr.close()
    code = proc.wait(timeout=60)
    assert "Traceback" not in err, err
    assert code in (1, 128 + 13), (code, err)  # all written before the close, or cut short
