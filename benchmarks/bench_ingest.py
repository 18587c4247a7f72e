"""Ingest benchmark for ``pytest-rt serve`` (issue 4, section 8).

Starts the real receiver (``python -m pytest_rt.server.cli``) on a free
127.0.0.1 port with a fresh SQLite file, then for N = 1, 4, 16 concurrent
clients posts for ``--seconds`` each: one event per POST, and batches of 500
events (the plugin's batch size). Each client is an asyncio task with its own
keep-alive HTTP/1.1 connection (hand-written, so the client costs little of
the 2 cores). Prints events/s, p99 latency per POST, and a count check: the
server must hold every test that was sent, each with its result.

    python benchmarks/bench_ingest.py            # 30 s per case
    python benchmarks/bench_ingest.py --quick    # ~3 s per case
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BATCH = 500


@dataclass
class Case:
    clients: int
    batch: int  # events per POST (1: one event per POST)
    events: int = 0
    posts: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu: float = 0.0  # seconds of CPU the server process used for this case
    watched: int = 0  # live-event messages the watchers received
    check: str = ""

    def cpu_us_per_event(self) -> float:
        return 1e6 * self.server_cpu / self.events if self.events else 0.0

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed else 0.0

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def event(job_id: str, kind: str, nodeid: str, now: float) -> dict[str, Any]:
    base = {"fw": "2", "type": kind, "job_id": job_id, "custom_id": None,
            "event_id": uuid.uuid4().hex, "run_id": "bench", "seq": 0, "test": nodeid,
            "uuid": None, "worker": None}
    if kind == "startTestItem":
        return base | {"startTime": f"{now:.6f}"}
    return base | {"status": "passed", "msg": "", "stopTime": f"{now:.6f}", "outcome": "passed",
                   "when": "call", "duration": 0.0001, "reruns": 0, "rerun_msgs": []}


async def client(port: int, case: Case, job_id: str, counter: itertools.count[int],
                 deadline: float) -> tuple[int, int]:
    """Post until the deadline; returns (tests sent, events sent) as the server acknowledged."""
    conn = await Connection.open(port)
    tests = events = 0
    pending: list[str] = []  # started tests whose stop is not sent yet (single-event mode)
    try:
        while time.perf_counter() < deadline:
            now = time.time()
            if case.batch == 1:
                if pending:
                    body = [event(job_id, "stopTestItem", pending.pop(), now)]
                else:
                    nodeid = f"bench.py::test_{next(counter)}"
                    pending.append(nodeid)
                    body = [event(job_id, "startTestItem", nodeid, now)]
                payload = json.dumps(body[0]).encode()
            else:
                body = []
                for _ in range(case.batch // 2):
                    nodeid = f"bench.py::test_{next(counter)}"
                    body += [event(job_id, "startTestItem", nodeid, now),
                             event(job_id, "stopTestItem", nodeid, now)]
                payload = json.dumps(body).encode()
            begin = time.perf_counter()
            status, answer = await conn.request("POST", "/loader", payload)
            case.latencies.append(time.perf_counter() - begin)
            case.posts += 1
            if status != 200 or json.loads(answer)["accepted"] != len(body):
                case.errors += 1
                continue
            events += len(body)
            tests += sum(1 for e in body if e["type"] == "stopTestItem")
        if pending:  # finish the last started test so the count check is exact
            payload = json.dumps(event(job_id, "stopTestItem", pending.pop(), time.time())).encode()
            status, _ = await conn.request("POST", "/loader", payload)
            case.errors += status != 200
            events += 1
            tests += 1
    finally:
        await conn.close()
    return tests, events


async def watch(port: int, received: list[int], stop: asyncio.Event) -> None:
    """A dashboard: reads /api/events until told to stop, counting the messages."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                break
            received[0] += chunk.count(b"data: ")
    finally:
        writer.close()
        await writer.wait_closed()


async def run_case(port: int, case: Case, seconds: float, watchers: int = 0) -> None:
    job_id = f"bench-{case.clients}-{case.batch}-{uuid.uuid4().hex[:8]}"
    conn = await Connection.open(port)
    start = {"fw": "2", "type": "startTestRun", "job_id": job_id, "tests": [], "env": "bench",
             "startTime": time.time(), "run_id": "bench", "event_id": uuid.uuid4().hex}
    await conn.request("POST", "/loader", json.dumps(start).encode())
    await conn.close()  # idle for the whole case: the server's keep-alive would drop it
    counter = itertools.count()
    stop_watching = asyncio.Event()
    received = [0]
    watching = [asyncio.create_task(watch(port, received, stop_watching)) for _ in range(watchers)]
    await asyncio.sleep(0.2 if watchers else 0)
    begin = time.perf_counter()
    results = await asyncio.gather(
        *(client(port, case, job_id, counter, begin + seconds) for _ in range(case.clients))
    )
    case.elapsed = time.perf_counter() - begin
    await asyncio.sleep(0.5 if watchers else 0)
    stop_watching.set()
    await asyncio.gather(*watching)
    case.watched = received[0]
    tests = sum(t for t, _ in results)
    case.events = sum(e for _, e in results)
    conn = await Connection.open(port)
    status, body = await conn.request("GET", "/api/jobs?env=bench&limit=1000")
    job = next(j for j in json.loads(body)["jobs"] if j["job_id"] == job_id)
    stored, passed = job["total"], job["counts"]["passed"]
    ok = stored == tests and passed == tests and case.errors == 0
    case.check = f"{'ok' if ok else 'LOST'} ({passed}/{tests} tests)"
    await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), robust to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start_server(db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_rt.server.cli", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("pytest-rt receiver: "):
        proc.kill()
        raise SystemExit(f"the receiver did not start: {line!r}")
    port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
    return proc, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per case (default 30)")
    parser.add_argument("--quick", action="store_true", help="3 s per case")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated (default 1,4,16)")
    parser.add_argument("--watchers", type=int, default=0,
                        help="dashboards reading /api/events meanwhile (default 0)")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    cases = [Case(int(n), batch) for batch in (1, BATCH) for n in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(Path(tmp) / "bench.sqlite3")
        try:
            for case in cases:
                cpu = cpu_seconds(proc.pid)
                asyncio.run(run_case(port, case, seconds, args.watchers))
                case.server_cpu = cpu_seconds(proc.pid) - cpu
                print(f"  done: {case.clients} clients x {case.batch} events/POST", file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    watching = f", {args.watchers} dashboard(s) watching" if args.watchers else ""
    print(f"\nIngest into pytest-rt serve (SQLite), {seconds:g} s per case{watching}\n")
    print("| clients | events/POST | POSTs | events | events/s | p99 latency "
          "| server CPU/event | count check |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for c in cases:
        print(f"| {c.clients} | {c.batch} | {c.posts} | {c.events} | {c.rate:,.0f} | "
              f"{c.p99_ms():.1f} ms | {c.cpu_us_per_event():.0f} us | {c.check} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (2 cores; above ~2 the figures"
          " are held back by other work on the machine)")
    if args.watchers:
        for c in cases:
            per = c.watched / args.watchers
            print(f"  {c.clients} x {c.batch}: each dashboard got {per:,.0f} messages"
                  f" for {c.events:,} events")
    return 0 if all(c.check.startswith("ok") for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
