"""Ingest benchmark for ``pytest-rt serve`` (issue 4, section 8).

Starts the real receiver (``python -m pytest_rt.server.cli``) on a free
127.0.0.1 port with a fresh SQLite file, then for N = 1, 4, 16 concurrent
clients posts for ``--seconds`` each: one event per POST, and batches of 500
events (the plugin's batch size). Each client is an asyncio task with its own
keep-alive HTTP/1.1 connection (hand-written, so the client costs little of
the 2 cores). Prints events/s, p99 latency per POST, and a count check: the
server must hold every test that was sent, each with its result.

``--db postgresql://...`` uses a fresh schema of that database (dropped at the end);
``--receivers 3`` starts three receivers on it, and client i posts to receiver i mod 3
(as a load balancer would spread them). ``--fleet`` is issue 9's scenario instead:
``--fleet-jobs`` (50) pytest-like clients of ``--fleet-tests`` (500) tests each, at once,
every test's start and stop sent in the plugin's way (batches of what is pending), while
``--fleet-dashboards`` (100) dashboards spread over the receivers read ``/api/events``:
``--fleet-job-pages`` of them (half) follow one job each, as a job page does, the others
the jobs list. It checks that every event was stored and every dashboard got every
update: a job page, each of its job's tests in its final state and the job finished; the
jobs list, every job finished with all its tests counted. It reports the messages and
bytes the dashboards got, and the receivers' CPU.

Issue 10 (the events defined once, as pydantic models) asked to keep a hand-written
validator only if pydantic cost more than 10% of the throughput. Measured 2026-11-30 on
the 2-core machine with others' tests running (load 2-3): ``--quick --clients 1,4
--batches 500,1``, 8 rounds alternating the models and the hand-written validator
(``loader.parse_body`` swapped in the receiver), medians of events/s:

    clients x events/POST   hand      models    CPU/event hand -> models
    1 x 500                 34,406    33,575    22 -> 23 us
    4 x 500                 36,200    34,933    23 -> 24 us
    1 x 1                    2,254     2,172    343 -> 350 us
    4 x 1                    2,642     2,782    311 -> 315 us

(-4% to +5%; an earlier set of 8 rounds gave -5% to -11%, the machine's swing.) In
process, the models parse a 500-event batch in ~6.3 us per event against ~5.6. Reading
the JSON with pydantic as well (``validate_json``) cost more in the receiver (-7% to
-15%), so Python's json reads it. The models validate: the hand-written validator is gone.

    python benchmarks/bench_ingest.py            # 30 s per case
    python benchmarks/bench_ingest.py --quick    # ~3 s per case
    python benchmarks/bench_ingest.py --quick --db postgresql://127.0.0.1:5432/rt --receivers 3
    python benchmarks/bench_ingest.py --fleet --db postgresql://127.0.0.1:5432/rt --receivers 3
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

from rt_receiver import start_server  # benchmarks/, the script's own folder

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
    """A dashboard: reads /api/events until told to stop, counting the messages in
    ``received[0]``; ``received[1]`` becomes 1 if the receiver ended the stream (it does
    so to a dashboard 10,000 messages behind: the browser reconnects and reloads)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    tail = b""  # a message's "data: " may straddle two reads
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                received[1:] = [1]
                break
            received[0] += (tail + chunk).count(b"data: ")
            tail = chunk[-5:]
    finally:
        writer.close()
        await writer.wait_closed()


async def run_case(ports: list[int], case: Case, seconds: float, watchers: int = 0) -> None:
    port = ports[0]
    job_id = f"bench-{case.clients}-{case.batch}-{uuid.uuid4().hex[:8]}"
    conn = await Connection.open(port)
    start = {"fw": "2", "type": "startTestRun", "job_id": job_id, "tests": [], "env": "bench",
             "startTime": time.time(), "run_id": "bench", "event_id": uuid.uuid4().hex}
    await conn.request("POST", "/loader", json.dumps(start).encode())
    await conn.close()  # idle for the whole case: the server's keep-alive would drop it
    counter = itertools.count()
    stop_watching = asyncio.Event()
    received = [0, 0]
    watching = [asyncio.create_task(watch(port, received, stop_watching)) for _ in range(watchers)]
    await asyncio.sleep(0.2 if watchers else 0)
    begin = time.perf_counter()
    results = await asyncio.gather(
        *(client(ports[i % len(ports)], case, job_id, counter, begin + seconds)
          for i in range(case.clients))
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


@dataclass
class Fleet:
    """Issue 9's scenario: many pytest-like runs at once, many dashboards watching."""

    jobs: int
    tests: int
    dashboards: int
    events: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    job_pages: int = -1  # dashboards following one job (-1: half of them)
    received: list[int] = field(default_factory=list)  # messages per dashboard
    dropped: int = 0  # dashboards the receivers disconnected (they fell too far behind)
    stored_ok: int = 0  # jobs stored whole, finished
    complete: int = 0  # dashboards that got every update
    bytes: int = 0  # what all the dashboards read


@dataclass
class Dashboard:
    """What one fleet dashboard saw of ``/api/events`` (its ``job``, or the jobs list)."""

    job: str | None
    messages: int = 0
    bytes: int = 0
    dropped: bool = False
    finished: dict[str, int] = field(default_factory=dict)  # job -> passed, once finished
    tests: dict[str, str] = field(default_factory=dict)  # a job page's tests' latest status

    def take(self, data: bytes) -> None:
        self.messages += 1
        # The jobs list only needs each job's end: the rest is not parsed (the client
        # shares the 2 cores with the receivers). kind and kinds come first.
        if self.job is None and b'"job_finished"' not in data[:120]:
            return
        message = json.loads(data)
        for test in message.get("tests", ()):
            self.tests[test["nodeid"]] = test["status"]
        job = message.get("job") or {}
        if "job_finished" in message.get("kinds", ()) and job.get("status") == "passed":
            self.finished[message["job_id"]] = job["counts"]["passed"]

    def complete(self, fleet: Fleet) -> bool:
        if self.job is None:
            return len(self.finished) == fleet.jobs and all(
                n == fleet.tests for n in self.finished.values())
        return (self.finished.get(self.job) == fleet.tests and len(self.tests) == fleet.tests
                and all(s == "passed" for s in self.tests.values()))


async def fleet_dashboard(port: int, board: Dashboard, stop: asyncio.Event) -> None:
    """Reads ``/api/events`` until told to stop. The body is chunked, one chunk a write
    of the receiver's, each write whole events: the chunk sizes fall between events."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    query = f"?job={board.job}" if board.job is not None else ""
    writer.write(f"GET /api/events{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    buffer = b""
    try:
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 0.5)
            except asyncio.TimeoutError:
                continue
            if not chunk:
                board.dropped = True
                break
            board.bytes += len(chunk)
            *events, buffer = (buffer + chunk).split(b"\n\n")
            for item in events:
                at = item.find(b"data: ")
                if at >= 0:
                    board.take(item[at + 6 :])
    finally:
        writer.close()
        await writer.wait_closed()


async def fleet_run(port: int, fleet: Fleet, index: int, rng_seed: int) -> None:
    """One pytest --rt-like run: startTestRun with its tests, then each test's start and
    stop in batches of whatever is pending (1 to 40 events, as the plugin's sender finds
    them), then stopTestRun."""
    import random

    rng = random.Random(rng_seed)
    job_id = f"fleet-{index}"
    names = [f"fleet/test_{index % 7}.py::test_{i}" for i in range(fleet.tests)]
    now = time.time()
    events: list[dict[str, Any]] = [{
        "fw": "2", "type": "startTestRun", "job_id": job_id, "run_id": job_id,
        "event_id": uuid.uuid4().hex, "env": "fleet", "startTime": now,
        "tests": [{"nodeid": n, "location": n.rsplit("::", 1)[1]} for n in names],
    }]
    for name in names:
        for kind in ("startTestItem", "stopTestItem"):
            events.append(event(job_id, kind, name, now) | {"run_id": job_id})
    events.append({"fw": "2", "type": "stopTestRun", "job_id": job_id, "run_id": job_id,
                   "event_id": uuid.uuid4().hex, "stopTime": time.time(), "exitstatus": 0})
    conn = await Connection.open(port)
    try:
        i = 0
        while i < len(events):
            size = 1 if i == 0 else rng.randint(1, 40)
            body = json.dumps(events[i : i + size]).encode()
            begin = time.perf_counter()
            status, _ = await conn.request("POST", "/loader", body)
            fleet.latencies.append(time.perf_counter() - begin)
            if status != 200:
                fleet.errors += 1
                await asyncio.sleep(0.05)
                continue  # the plugin retries the same batch
            fleet.events += len(events[i : i + size])
            i += size
    finally:
        await conn.close()


async def fleet_case(ports: list[int], fleet: Fleet) -> None:
    stop = asyncio.Event()
    pages = fleet.dashboards // 2 if fleet.job_pages < 0 else fleet.job_pages
    boards = [Dashboard(f"fleet-{i % fleet.jobs}" if i < pages else None)
              for i in range(fleet.dashboards)]
    watching = [asyncio.create_task(fleet_dashboard(ports[i % len(ports)], board, stop))
                for i, board in enumerate(boards)]
    await asyncio.sleep(1.0)  # every stream open before the first event
    begin = time.perf_counter()
    await asyncio.gather(*(fleet_run(ports[i % len(ports)], fleet, i, i)
                           for i in range(fleet.jobs)))
    fleet.elapsed = time.perf_counter() - begin
    deadline = time.monotonic() + 60  # let the dashboards drain their queues
    while time.monotonic() < deadline and any(
        not b.complete(fleet) and not b.dropped for b in boards
    ):
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*watching)
    fleet.received = [b.messages for b in boards]
    fleet.dropped = sum(b.dropped for b in boards)
    fleet.complete = sum(b.complete(fleet) for b in boards)
    fleet.bytes = sum(b.bytes for b in boards)
    fleet.job_pages = pages
    conn = await Connection.open(ports[0])
    try:
        for index in range(fleet.jobs):
            status, body = await conn.request("GET", f"/api/jobs/fleet-{index}?limit=1")
            job = json.loads(body)["job"] if status == 200 else {}
            if job.get("status") == "passed" and job["counts"]["passed"] == fleet.tests:
                fleet.stored_ok += 1
    finally:
        await conn.close()


def fresh_schema(url: str) -> tuple[str, Any]:
    """A URL of ``url``'s database whose tables live in a new schema, and a dropper."""
    from sqlalchemy import create_engine, text

    from pytest_rt.server.config import db_url_from_arg

    base = db_url_from_arg(url)
    schema = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per case (default 30)")
    parser.add_argument("--quick", action="store_true", help="3 s per case")
    parser.add_argument("--clients", default="1,4,16", help="comma-separated (default 1,4,16)")
    parser.add_argument("--watchers", type=int, default=0,
                        help="dashboards reading /api/events meanwhile (default 0)")
    parser.add_argument("--db", default=None,
                        help="a PostgreSQL URL (a fresh schema of it); default a SQLite file")
    parser.add_argument("--receivers", type=int, default=1,
                        help="receiver processes on the database (PostgreSQL; default 1)")
    parser.add_argument("--batches", default=f"1,{BATCH}",
                        help=f"events per POST, comma-separated (default 1,{BATCH})")
    parser.add_argument("--fleet", action="store_true", help="issue 9's scenario (see above)")
    parser.add_argument("--fleet-jobs", type=int, default=50)
    parser.add_argument("--fleet-tests", type=int, default=500)
    parser.add_argument("--fleet-dashboards", type=int, default=100)
    parser.add_argument("--fleet-job-pages", type=int, default=-1,
                        help="dashboards following one job each (default: half)")
    args = parser.parse_args(argv)
    if args.receivers > 1 and args.db is None:
        parser.error("--receivers above 1 needs --db postgresql://... (SQLite is one process's)")
    seconds = 3.0 if args.quick else args.seconds
    cases = [Case(int(n), int(batch)) for batch in args.batches.split(",")
             for n in args.clients.split(",")]
    fleet = Fleet(args.fleet_jobs, args.fleet_tests, args.fleet_dashboards,
                  job_pages=args.fleet_job_pages)
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        if args.db is not None:
            db, drop = fresh_schema(args.db)
            kind = f"PostgreSQL, {args.receivers} receiver process(es)"
        else:
            db, kind = str(Path(tmp) / "bench.sqlite3"), "SQLite, 1 receiver process"
        procs: list[subprocess.Popen[str]] = []
        try:
            ports = []
            for _ in range(args.receivers):
                proc, port = start_server(str(db))
                procs.append(proc)
                ports.append(port)
            if args.fleet:
                cpu = sum(cpu_seconds(p.pid) for p in procs)
                asyncio.run(fleet_case(ports, fleet))
                fleet.server_cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu
            else:
                for case in cases:
                    cpu = sum(cpu_seconds(p.pid) for p in procs)
                    asyncio.run(run_case(ports, case, seconds, args.watchers))
                    case.server_cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu
                    print(f"  done: {case.clients} clients x {case.batch} events/POST",
                          file=sys.stderr)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
                if proc.stdout is not None:
                    proc.stdout.close()
            if drop is not None:
                drop()
    if args.fleet:
        return report_fleet(fleet, kind)
    watching = f", {args.watchers} dashboard(s) watching" if args.watchers else ""
    print(f"\nIngest into pytest-rt serve ({kind}), {seconds:g} s per case{watching}\n")
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


def report_fleet(fleet: Fleet, kind: str) -> int:
    ordered = sorted(fleet.latencies)
    p99 = 1000 * ordered[int(len(ordered) * 0.99)] if ordered else 0.0
    print(f"\n{fleet.jobs} pytest-like runs of {fleet.tests} tests at once into {kind}, "
          f"{fleet.dashboards} dashboards watching ({fleet.job_pages} job pages, "
          f"{fleet.dashboards - fleet.job_pages} jobs lists)\n")
    print(f"- events: {fleet.events:,} sent and acknowledged in {fleet.elapsed:.1f} s: "
          f"{fleet.events / fleet.elapsed:,.0f} events/s; {len(ordered):,} POSTs, p99 "
          f"{p99:.0f} ms; {fleet.errors} refused and retried")
    print(f"- stored: {fleet.stored_ok} of {fleet.jobs} jobs finished with all their tests")
    print(f"- dashboards: {fleet.complete} of {fleet.dashboards} got every update; "
          f"{fleet.dropped} disconnected for falling behind")
    print(f"- sent to the dashboards: {sum(fleet.received):,} messages "
          f"(per dashboard {min(fleet.received):,} to {max(fleet.received):,}), "
          f"{fleet.bytes / 1e6:,.1f} MB")
    print(f"- receivers' CPU: {fleet.server_cpu:.1f} s; load average at the end "
          f"{os.getloadavg()[0]:.2f} (2 cores)")
    ok = fleet.stored_ok == fleet.jobs and fleet.complete == fleet.dashboards
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
