"""What --rt costs a test run, measured side by side with its baselines in one run.

    .venv/bin/python benchmarks/bench_plugin.py            # the full run (~5 min)
    .venv/bin/python benchmarks/bench_plugin.py --quick    # a smoke run (~1 min)
    .venv/bin/python benchmarks/bench_plugin.py --instructions  # callgrind counts (~8 min)
    .venv/bin/python benchmarks/bench_plugin.py --hostile  # receivers that never stop

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

`--instructions` counts instructions instead of seconds (valgrind's callgrind,
installed from Debian's package when missing): the pytest process, sender
thread included, at two suite sizes, plain and with --rt; from the slope, the
instructions each test costs and the fixed cost of a run. The same total comes
out whatever else the machine does, so differences of 1% are real.

`--hostile` measures instead what receivers that never stop answering cost:
CPU-bound tests against a good receiver and against answers with a 10 GB
Content-Length, a huge chunk, an endless chunk extension and an endless
unframed body. Reported: the tests' own time (first test start to last test
end) and the end of the run (last test end to process exit), medians.
Machines here are noisy: read the medians and ratios, not single times.
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import shutil
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
    suite.mkdir(parents=True)
    per_file = 100
    for f in range(tests // per_file):
        body = "".join(f"def test_{i}():\n    pass\n\n" for i in range(per_file))
        (suite / f"test_f{f:03d}.py").write_text(body)
    return suite


def run_pytest(suite: Path, args: list[str], env: dict[str, str] | None = None
               ) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and output of one pytest subprocess."""
    # --rootdir: else pytest takes the common folder of every argument that is a path,
    # and an --rt-spool or --report-log path beside the suite, once it exists, makes
    # every node id longer and its node chain deeper than in the plain run.
    cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={suite}",
           str(suite), *args]
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


HOSTILE_ANSWERS = {
    "10 GB Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
    "huge chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",
    "endless chunk extension": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
    "endless unframed body": b"HTTP/1.1 200 OK\r\n\r\n",
}


def valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing valgrind (Debian package)...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=False,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")
    return found


def count_instructions(suite: Path, args: list[str], out: Path) -> tuple[int, int]:
    """Instructions of one pytest process under callgrind: (main thread, other threads).

    With the receiver down, the test thread's count is the same from run to run.
    With a receiver, both threads' counts depend on time (how many events each
    wake-up of the sender finds, which thread a garbage collection lands on), and
    valgrind slows time 50-fold: read those slopes as +-0.1 M per test.
    """
    cmd = [valgrind(), "--tool=callgrind", "--separate-threads=yes",
           f"--callgrind-out-file={out}",
           PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--rootdir={suite}",
           str(suite), *args]  # --rootdir: see run_pytest
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"  # the same dict layouts every time: the same count
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=suite.parent)
    undelivered = "not delivered" in proc.stdout and "rt-down" not in out.name
    if proc.returncode not in (0, 1) or undelivered:
        raise SystemExit(f"pytest under valgrind failed:\n{proc.stdout[-2000:]}"
                         f"{proc.stderr[-2000:]}")
    totals = []
    for part in sorted(out.parent.glob(out.name + "-*")):  # one file per thread: -01, -02...
        match = re.search(r"^(?:summary|totals): (\d+)", part.read_text(), re.MULTILINE)
        assert match, f"no total in {part}"
        totals.append(int(match.group(1)))
    return totals[0], sum(totals[1:])


def instructions(tmp: Path, small: int, large: int) -> None:
    single, _ = serve(batch=False)
    batch, _ = serve(batch=True)
    spool = str(tmp / "spool-i")
    # Receiver down (a port bound but not listening: refused at once): the sender sleeps
    # in its backoff, so this counts the test thread's own cost, the same every time.
    down = socket.socket()
    down.bind(("127.0.0.1", 0))
    variants: dict[str, list[str]] = {
        "plain": [],
        "reportlog": ["--report-log", str(tmp / "log-i.jsonl")],
        "rt-down": ["--rt", "--rt-url", f"http://127.0.0.1:{down.getsockname()[1]}/loader",
                    "--rt-spool", spool, "--rt-flush-timeout", "0"],
        "rt-batch": ["--rt", "--rt-url", f"http://127.0.0.1:{batch.server_address[1]}/loader",
                     "--rt-spool", spool],
        "rt-single": ["--rt", "--rt-url",
                      f"http://127.0.0.1:{single.server_address[1]}/loader",
                      "--rt-spool", spool],
    }
    suites = {n: make_suite(tmp / f"i{n}", n) for n in (small, large)}
    counts: dict[str, dict[int, tuple[int, int]]] = {name: {} for name in variants}
    for name, args in variants.items():
        for n, suite in suites.items():
            run_pytest(suite, args)  # bytecode written, as on a user's machine
            counts[name][n] = count_instructions(suite, args, tmp / f"cg.{name}.{n}")
            main, other = counts[name][n]
            print(f"  {name} {n}: {main / 1e9:.3f} G + {other / 1e9:.3f} G", file=sys.stderr)
    single.shutdown()
    batch.shutdown()
    single.server_close()
    batch.server_close()
    down.close()
    for which, title in ((0, "the test (main) thread"), (1, "other threads (the sender)")):
        c = {name: {n: v[which] for n, v in by_n.items()} for name, by_n in counts.items()}
        per_test = {name: (v[large] - v[small]) / (large - small) for name, v in c.items()}
        fixed = {name: c[name][small] - small * per_test[name] for name in c}
        print(f"\nInstructions of {title}, callgrind, {small} and {large} trivial tests")
        print(f"{'variant':<12}{f'{small} tests':>12}{f'{large} tests':>12}{'per test':>11}"
              f"{'added/test':>12}{'fixed':>10}{'added fixed':>13}")
        for name in variants:
            added = per_test[name] - per_test["plain"]
            print(f"{name:<12}{c[name][small] / 1e9:>11.3f}G{c[name][large] / 1e9:>11.3f}G"
                  f"{per_test[name] / 1e6:>10.3f}M{added / 1e6:>+11.3f}M"
                  f"{fixed[name] / 1e6:>9.0f}M{(fixed[name] - fixed['plain']) / 1e6:>+12.0f}M")


def sender_instructions(tmp: Path, small: int, large: int) -> None:
    """The sender's instructions per event at the batch sizes of a real run.

    Under callgrind a run is ~50 times slower, so the sender's 50 ms linger finds a
    few events where a real run's finds a hundred, and its per-request cost is
    counted per handful of events. `pytest-rt replay` sends a journal as a run's
    sender does (the same Sender and Transport, Sender.to), with no linger to
    depend on: full batches of 500 to a batching receiver, pipelines of 32
    one-event requests to one that isn't. Journals of both sizes come from runs
    against a receiver that is down; the slope is the cost of one event.
    """
    down = socket.socket()
    down.bind(("127.0.0.1", 0))
    url_down = f"http://127.0.0.1:{down.getsockname()[1]}/loader"
    journals: dict[int, Path] = {}
    for n in (small, large):
        spool = tmp / f"spool-r{n}"
        run_pytest(make_suite(tmp / f"r{n}", n),
                   ["--rt", "--rt-url", url_down, "--rt-spool", str(spool),
                    "--rt-flush-timeout", "0"])
        journals[n] = next((spool / "spool").glob("*.jsonl"))
    down.close()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"
    print(f"\nInstructions of `pytest-rt replay` (the sender), callgrind, journals of "
          f"{small} and {large} tests")
    print(f"{'receiver':<12}{'events':>8}{f'{small}':>10}{f'{large}':>10}{'per event':>11}"
          f"{'per test':>10}")
    for name, batch in (("batches", True), ("one per POST", False)):
        server, handler = serve(batch=batch)
        url = f"http://127.0.0.1:{server.server_address[1]}/loader"
        totals: dict[int, int] = {}
        events: dict[int, int] = {}
        for n, journal in [(0, journals[small]), *journals.items()]:  # 0: writes bytecode
            copy = tmp / f"replay-{batch}-{n}" / "spool"
            copy.mkdir(parents=True)
            shutil.copy(journal, copy / journal.name)  # replay removes what it delivered
            out = tmp / f"cg.replay.{batch}.{n}"
            before = handler.count
            cmd = [PYTHON, "-m", "pytest_rt.cli", "replay", str(copy.parent), "--url", url]
            if n:
                cmd = [valgrind(), "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            events[n] = handler.count - before
            if proc.returncode != 0 or any(copy.glob("*.jsonl")):
                raise SystemExit(f"replay failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            if not n:
                continue
            match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
            assert match, f"no total in {out}"
            totals[n] = int(match.group(1))
        per_event = (totals[large] - totals[small]) / (events[large] - events[small])
        per_test = (totals[large] - totals[small]) / (large - small)
        print(f"{name:<12}{events[large]:>8}{totals[small] / 1e9:>9.3f}G"
              f"{totals[large] / 1e9:>9.3f}G{per_event / 1e6:>10.4f}M{per_test / 1e6:>9.4f}M")
        server.shutdown()
        server.server_close()


def hostile_server(answer: bytes) -> tuple[socket.socket, threading.Event]:
    """Answers each connection's first request with `answer`, then endless filler
    ("a" bytes) until the client goes away."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            filler = b"a" * 65536
            try:
                while not stop.is_set():
                    if not conn.recv(65536):
                        return
                    conn.sendall(answer)
                    while not stop.is_set():
                        conn.sendall(filler)
            except OSError:
                return

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, stop


HOSTILE_CONFTEST = """
import os, time
_marks = {}
def pytest_runtest_logstart(nodeid, location):
    _marks.setdefault("first", time.time())
def pytest_runtest_logfinish(nodeid, location):
    _marks["last"] = time.time()
def pytest_unconfigure(config):
    with open(os.environ["BENCH_MARKS"], "w") as f:
        f.write(f"{_marks.get('first', 0)} {_marks.get('last', 0)}")
"""


def hostile(tmp: Path, rounds: int, tests: int, flush: float) -> dict[str, dict[str, list[float]]]:
    suite = tmp / "cpu"
    suite.mkdir()
    (suite / "conftest.py").write_text(HOSTILE_CONFTEST)
    (suite / "test_cpu.py").write_text(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('i', range({tests}))\n"
        "def test_cpu(i):\n    sum(x * x for x in range(100_000))\n")
    marks = tmp / "marks"
    good, _ = serve(batch=True)
    servers = {name: hostile_server(answer) for name, answer in HOSTILE_ANSWERS.items()}
    ports = {"good receiver": good.server_address[1]}
    ports.update({name: listener.getsockname()[1] for name, (listener, _) in servers.items()})
    out: dict[str, dict[str, list[float]]] = {name: {"tests": [], "end": []} for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            url = f"http://127.0.0.1:{port}/loader"
            args = ["--rt", "--rt-url", url, "--rt-spool", str(tmp / "spool-hostile"),
                    "--rt-flush-timeout", str(flush)]
            started = time.time()
            elapsed = run_pytest(suite, args, {"BENCH_MARKS": str(marks)})[0]
            first, last = map(float, marks.read_text().split())
            out[name]["tests"].append(last - first)
            out[name]["end"].append(started + elapsed - last)
    for listener, stop in servers.values():
        stop.set()
        listener.close()
    good.shutdown()
    good.server_close()
    return out


def hostile_table(flush: float, results: dict[str, dict[str, list[float]]]) -> None:
    base = statistics.median(results["good receiver"]["tests"])
    print(f"\nHostile receivers, CPU-bound tests, --rt-flush-timeout {flush:g} (medians)")
    print(f"{'receiver':<26}{'tests s':>9}{'ratio':>8}{'end of run s':>14}")
    for name, values in results.items():
        tests = statistics.median(values["tests"])
        print(f"{name:<26}{tests:>9.2f}{tests / base:>7.2f}x"
              f"{statistics.median(values['end']):>14.2f}")


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
    parser.add_argument("--instructions", action="store_true",
                        help="only the instruction counts (callgrind), 100 and 500 tests")
    parser.add_argument("--hostile", action="store_true",
                        help="only the hostile-receiver table (400 CPU-bound tests)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    backlog = 20_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.instructions:
            instructions(tmp, 100, 500)
            sender_instructions(tmp, 1000, 5000)
            return 0
        if args.hostile:
            hostile_table(3.0, hostile(tmp, rounds, 400, 3.0))
            return 0
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
