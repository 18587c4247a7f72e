"""Slow and greedy clients against ``pytest-rt serve`` (issue 8, finding 3).

Starts the real receiver (``python -m pytest_rt.cli serve``) on a free port with
a fresh SQLite file and an open-file limit of ``--nofile`` (default 1024 soft
and hard, a common default), then:

1. opens ``--heads`` connections (default 1,100) that each send half a request
   head and stall; meanwhile times ``GET /healthz`` and runs a real
   ``pytest --rt`` of ``--tests`` tests (default 200: 404 events), and counts
   what the receiver stored;
2. opens ``--bodies`` connections (default 100) that each announce a
   ``--body-mb`` MB body (default 10) and send all of it but the last byte,
   and reports the server's RSS before, at the peak (VmHWM) and after.

    python benchmarks/bench_slow_clients.py
    python benchmarks/bench_slow_clients.py --src /path/to/other/checkout/src  # compare

``--src`` puts another checkout's ``src`` first on the server's PYTHONPATH
(the figures before a change are taken that way).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

HEAD = b"POST /loader HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def start(tmp: Path, nofile: int, src: str | None) -> tuple[subprocess.Popen[str], str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_rt.cli", "serve", "--port", "0",
         "--db", str(tmp / "rt.sqlite3")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        preexec_fn=limit,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http://" not in line:
        raise SystemExit(f"the receiver did not start: {line!r}")
    return proc, line.split()[2].rstrip("/")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def healthz_seconds(url: str) -> float | None:
    begin = time.monotonic()
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:
            answer.read()
    except OSError:
        return None
    return time.monotonic() - begin


def slow_heads(args: argparse.Namespace, tmp: Path) -> None:
    proc, url = start(tmp, args.nofile, args.src)
    port = int(url.rsplit(":", 1)[1])
    with ExitStack() as stack:
        opened = refused = 0
        for _ in range(args.heads):
            try:
                sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), 5))
                sock.sendall(HEAD)
                opened += 1
            except OSError:
                refused += 1
        took = healthz_seconds(url)
        shown = f"{took * 1000:.0f} ms" if took is not None else "no answer in 10 s"
        print(f"{args.heads} half-sent heads ({opened} opened, {refused} refused): "
              f"/healthz {shown}")
        suite = tmp / "suite"
        suite.mkdir()
        (suite / "test_many.py").write_text(textwrap.dedent(f"""
            import pytest
            @pytest.mark.parametrize("i", range({args.tests}))
            def test_n(i):
                pass
        """))
        job = suite / "job.txt"
        begin = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             "--rt", "--rt-url", f"{url}/loader", "--rt-job-file", str(job), str(suite)],
            capture_output=True, text=True, cwd=suite,
        )
        summary = [line for line in run.stdout.splitlines() if line.startswith("pytest-rt:")]
        print(f"pytest --rt with {args.tests} tests ({time.monotonic() - begin:.1f} s): "
              f"{' / '.join(summary) or run.stdout[-300:]}")
        stored = "?"
        if job.exists():
            try:
                with urllib.request.urlopen(
                    f"{url}/api/jobs/{job.read_text().strip()}?limit=1", timeout=10
                ) as answer:
                    import json

                    counts = json.loads(answer.read())["job"]["counts"]
                    stored = f"{counts['passed']} of {args.tests} tests passed, stored"
            except OSError as exc:
                stored = f"cannot read the job: {exc}"
        print(f"  the receiver holds: {stored}")
    proc.terminate()
    proc.wait(15)


def greedy_bodies(args: argparse.Namespace, tmp: Path) -> None:
    proc, url = start(tmp, args.nofile, args.src)
    port = int(url.rsplit(":", 1)[1])
    size = args.body_mb * 1024 * 1024
    before = rss_mb(proc.pid)
    chunk = b" " * (1024 * 1024)
    sent = [0]

    def one(stack: ExitStack) -> None:
        try:
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), 30))
            sock.sendall(HEAD + f"Content-Length: {size}\r\n\r\n".encode())
            left = size - 1
            while left > 0:
                piece = chunk[: min(len(chunk), left)]
                sock.sendall(piece)
                left -= len(piece)
                sent[0] += len(piece)
        except OSError:  # answered 503 (or 413) and closed: the budget is full
            pass

    with ExitStack() as stack:
        threads = [threading.Thread(target=one, args=(stack,)) for _ in range(args.bodies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        time.sleep(1)
        during = rss_mb(proc.pid)
        peak = rss_mb(proc.pid, "VmHWM")
        took = healthz_seconds(url)
    time.sleep(1)
    after = rss_mb(proc.pid)
    print(f"{args.bodies} unfinished {args.body_mb} MB bodies ({sent[0] / 2**20:.0f} MB sent): "
          f"server RSS {before:.0f} MB before, {during:.0f} MB while held, peak {peak:.0f} MB, "
          f"{after:.0f} MB after they closed; /healthz meanwhile "
          f"{'%.0f ms' % (took * 1000) if took is not None else 'no answer'}")
    proc.terminate()
    proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", type=int, default=1100)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--body-mb", type=int, default=10)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--src", default=None, help="another checkout's src for the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a").mkdir()
        (Path(tmp) / "b").mkdir()
        slow_heads(args, Path(tmp) / "a")
        greedy_bodies(args, Path(tmp) / "b")


if __name__ == "__main__":
    main()
