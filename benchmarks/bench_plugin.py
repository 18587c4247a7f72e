"""What --rt costs a test run, measured side by side with its baselines in one run.

    .venv/bin/python benchmarks/bench_plugin.py            # the full run (~5 min)
    .venv/bin/python benchmarks/bench_plugin.py --quick    # a smoke run (~1 min)

Variants, each a fresh `python -m pytest` subprocess on the same generated suite
of trivial tests, run round-robin so machine noise spreads evenly:

- plain: pytest-rt installed, --rt not given (the baseline every ratio is against)
- reportlog: pytest-reportlog writing its local JSON-lines file
- seed-sync: the original plugin's way (one synchronous POST per event on the
  test thread), reproduced in benchmarks/seed_sync_plugin.py for comparison
- rt-single: --rt to a receiver that takes one event per POST (like Testgr)
- rt-batch: --rt to a receiver that offers batches (like `pytest-rt serve`)

Then the end-of-run wait against a dead port and a silent one, and the peak
memory of the test process with a large backlog of undelivered events.
Machines here are noisy: read the medians and ratios, not single times.
"""

from __future__ import annotations

import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    batch = False
    count = 0

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).count += body.count(b'"event_id"')
        self.send_response(200)
        if self.batch:
            self.send_header("X-Pytest-RT-Batch", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve(batch: bool) -> tuple[http.server.ThreadingHTTPServer, type[_Handler]]:
    """A minimal receiver. In-process but on its own threads; it costs the same CPU
    for every --rt variant, and the plain/reportlog runs don't use it."""
    handler = type("Handler", (_Handler,), {"batch": batch, "count": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


def make_suite(directory: Path, tests: int) -> Path:
    suite = directory / "suite"
    suite.mkdir()
    per_file = 100
    for f in range(tests // per_file):
        body = "".join(f"def test_{i}():\n    pass\n\n" for i in range(per_file))
        (suite / f"test_f{f:03d}.py").write_text(body)
    return suite


def run_pytest(suite: Path, args: list[str], env: dict[str, str] | None = None
               ) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and output of one pytest subprocess."""
    cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite), *args]
    # Bytecode caching on, as on a user's machine (this sandbox turns it off): else
    # every variant pays for compiling its plugins on every run.
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**base_env, **(env or {})}, cwd=suite.parent)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    # wait4, not wait: it also returns the child's own peak RSS.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{out.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss, out.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def overhead(suite: Path, tmp: Path, rounds: int) -> dict[str, list[float]]:
    single, single_h = serve(batch=False)
    batch, batch_h = serve(batch=True)
    url_single = f"http://127.0.0.1:{single.server_address[1]}/loader"
    url_batch = f"http://127.0.0.1:{batch.server_address[1]}/loader"
    spool = str(tmp / "spool")
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "plain": ([], {}),
        "reportlog": (["--report-log", str(tmp / "log.jsonl")], {}),
        "seed-sync": (["-p", "seed_sync_plugin", "--seed-url", url_single],
                      {"PYTHONPATH": str(HERE)}),
        "rt-single": (["--rt", "--rt-url", url_single, "--rt-spool", spool], {}),
        "rt-batch": (["--rt", "--rt-url", url_batch, "--rt-spool", spool], {}),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for args, env in variants.values():  # warm the file cache and write bytecode
        run_pytest(suite, args, env)
    for r in range(rounds):
        for name, (args, env) in variants.items():
            elapsed, _, out = run_pytest(suite, args, env)
            if name.startswith("rt-") and "not delivered" in out:
                raise SystemExit(f"{name}: events were not delivered:\n{out[-1500:]}")
            times[name].append(elapsed)
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    single.shutdown()
    batch.shutdown()
    single.server_close()
    batch.server_close()
    return times


def end_wait(suite: Path, tmp: Path, rounds: int, flush: float) -> dict[str, list[float]]:
    dead = f"http://127.0.0.1:{free_port()}/loader"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    silent = f"http://127.0.0.1:{listener.getsockname()[1]}/loader"
    out: dict[str, list[float]] = {"plain": [], "dead receiver": [], "silent receiver": []}
    for _ in range(rounds):
        out["plain"].append(run_pytest(suite, [])[0])
        for name, url in (("dead receiver", dead), ("silent receiver", silent)):
            args = ["--rt", "--rt-url", url, "--rt-spool", str(tmp / f"spool-{name[:4]}"),
                    "--rt-flush-timeout", str(flush)]
            out[name].append(run_pytest(suite, args)[0])
    listener.close()
    return out


def memory(tmp: Path, events: int) -> dict[str, int]:
    suite = tmp / "big"
    suite.mkdir()
    n = events // 2
    (suite / "test_big.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('i', range({n}))\n"
        "def test_many(i):\n    pass\n")
    dead = f"http://127.0.0.1:{free_port()}/loader"
    plain = run_pytest(suite, [])[1]
    backed = run_pytest(suite, ["--rt", "--rt-url", dead, "--rt-spool", str(tmp / "spool-mem"),
                                "--rt-flush-timeout", "1"])[1]
    return {"plain": plain, "rt, receiver down": backed}


def table(title: str, times: dict[str, list[float]], base: str = "plain") -> None:
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{title}")
    print(f"{'variant':<18}{'median s':>10}{'min s':>9}{'max s':>9}{'ratio':>8}")
    for name, values in times.items():
        print(f"{name:<18}{med[name]:>10.3f}{min(values):>9.3f}{max(values):>9.3f}"
              f"{med[name] / med[base]:>7.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events")
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    backlog = 20_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        suite = make_suite(tmp, args.tests)
        print(f"{args.tests} trivial tests, {rounds} rounds, python {sys.version.split()[0]}",
              file=sys.stderr)
        table(f"Overhead on {args.tests} trivial tests (ratio against plain, medians)",
              overhead(suite, tmp, rounds))
        table("End-of-run wait, --rt-flush-timeout 10 (whole run; ratio against plain)",
              end_wait(suite, tmp, 1 if args.quick else 3, 10.0))
        mem = memory(tmp, backlog)
        print(f"\nPeak RSS of the test process, {backlog} events backed up (receiver down)")
        for name, kib in mem.items():
            print(f"{name:<22}{kib / 1024:>8.1f} MiB")
        print(f"{'difference':<22}{(mem['rt, receiver down'] - mem['plain']) / 1024:>8.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
