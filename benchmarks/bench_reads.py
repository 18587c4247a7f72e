"""Read benchmark for ``pytest-rt serve`` at scale (issue 8): the jobs list and job pages.

Builds a database straight into the schema (bulk inserts, indexes built after
the load), then starts the real receiver on it (``python -m
pytest_rt.server.cli`` on a free 127.0.0.1 port) and times the reads the
dashboard makes, over HTTP, from a cold start and then repeated:

- ``GET /api/jobs`` (the front page: 50 jobs, running first), and ``?limit=1000``;
- ``GET /api/jobs/{id}`` of a running job, and of a job with 100,000 tests.

The default size is the issue's: 100,000 jobs, 10,000 of them running (all
sharing one pool of node ids, heard from just now), 100 tests each (10
million test rows), plus one finished and one running job of 100,000 tests.
``--scale 0.1`` divides the jobs (not the big jobs' tests) by 10. Event ids
(``rt_seen``) are not generated: no read touches them.

    python benchmarks/bench_reads.py                       # full size, SQLite
    python benchmarks/bench_reads.py --scale 0.1           # 10,000 jobs, 1 million rows
    python benchmarks/bench_reads.py --db postgresql://... # PostgreSQL (an empty database)
    python benchmarks/bench_reads.py --keep /tmp/reads.sqlite3   # build once, reuse

The builder adapts to the schema the imported code defines (it fills the
columns and tables it finds), so the same script measures an older checkout:
``PYTHONPATH=/path/to/old/src python benchmarks/bench_reads.py``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rt_receiver import start_server  # benchmarks/, the script's own folder
from sqlalchemy import Engine, inspect, text

from pytest_rt.server import schema
from pytest_rt.server.config import db_url_from_arg

NODE_POOL = 300  # distinct node ids shared by every job
TESTS_PER_JOB = 100
BIG_JOB_TESTS = 100_000
STATS_SLOTS = 4
RANKS = {"running": 0, "abandoned": 1}


def nodeid(n: int) -> str:
    return f"tests/test_mod{n // 20:02d}.py::TestThing::test_case_{n:04d}"


class Builder:
    """Generates the rows and writes them with the driver's bulk path."""

    def __init__(self, engine: Engine, jobs: int, running: int, per_job: int) -> None:
        self.engine = engine
        self.jobs, self.running, self.per_job = jobs, running, per_job
        insp = inspect(engine)
        self.columns = {
            name: [c["name"] for c in insp.get_columns(name)]
            for name in insp.get_table_names()
        }
        self.now = time.time()
        self.rng = random.Random(8)
        # key -> the newest durations (duration, job id), for a per-test stats table
        self.recent: dict[str, collections.deque[tuple[float, str]]] = collections.defaultdict(
            lambda: collections.deque(maxlen=STATS_SLOTS)
        )
        self.test_id = 0
        self.running_ids: list[str] = []
        self.big_ids: dict[str, str] = {}

    def has(self, table: str, column: str) -> bool:
        return column in self.columns.get(table, [])

    def job_row(self, job_id: str, status: str, start: float,
                stop: float | None) -> dict[str, Any]:
        heard = self.now if status == "running" else stop
        return {
            "job_id": job_id, "status": status, "env": "CI", "custom_id": None,
            "custom_data": json.dumps({"branch": "main"}), "created": start,
            "start_time": start, "stop_time": stop, "exitstatus": None if stop is None else 0,
            "interrupted": False, "xdist": False, "workers": 0, "collect_errors": None,
            "last_heard": heard, "rank": RANKS.get(status, 2), "sort_time": start,
        }

    def test_rows(self, job_id: str, start: float, count: int, running: bool,
                  first: int = 0) -> Iterator[dict[str, Any]]:
        for i in range(count):
            n = (first + i) % NODE_POOL if count <= NODE_POOL else first + i
            key = nodeid(n)
            self.test_id += 1
            row: dict[str, Any] = {
                "id": self.test_id, "job_id": job_id, "key": key, "nodeid": key, "position": i,
                "location": key.rsplit("::", 1)[1], "uuid": None, "description": None,
                "file": key.split("::", 1)[0], "markers": "[]", "status": "passed",
                "outcome": "passed", "msg": "", "when_": "call", "start_time": start + i,
                "stop_time": None, "duration": None, "worker": None, "reruns": 0,
                "rerun_msgs": "[]",
            }
            if running and i >= count // 2:
                row.update(status="running" if i == count // 2 else "not_started",
                           outcome=None, msg=None, when_=None)
                if i > count // 2:
                    row["start_time"] = None
            else:
                duration = round(self.rng.uniform(0.01, 2.0), 4)
                row.update(stop_time=start + i + duration, duration=duration)
                self.recent[key].appendleft((duration, job_id))
            yield row

    def build(self) -> None:
        with self.engine.begin() as conn:
            indexes = [idx for table in schema.metadata.sorted_tables for idx in table.indexes
                       if table.name in self.columns]
            for idx in indexes:  # a bulk load is several times faster without them
                idx.drop(conn, checkfirst=True)
        begin = time.time() - 86400 * 200
        every = max(1, self.jobs // max(1, self.running))
        jobs: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        tests: list[dict[str, Any]] = []
        for j in range(self.jobs):
            job_id = f"job-{j:06d}"
            start = begin + j * 150
            running = j % every == every - 1 and len(self.running_ids) < self.running
            if running:
                self.running_ids.append(job_id)
            stop = None if running else start + 120
            jobs.append(self.job_row(job_id, "running" if running else "passed", start, stop))
            runs.append({"job_id": job_id, "run_id": "r", "started": True,
                         "stopped": not running, "start_time": start, "stop_time": stop})
            tests.extend(self.test_rows(job_id, start, self.per_job, running, first=j))
            if len(tests) >= 200_000:
                self.flush(jobs, runs, tests)
                print(f"  {j + 1:,} jobs, {self.test_id:,} tests", file=sys.stderr)
        for status in ("passed", "running"):
            job_id = f"big-{status}"
            start = self.now - 3600
            self.big_ids[status] = job_id
            jobs.append(self.job_row(job_id, status, start, None if status == "running"
                                     else start + 3000))
            runs.append({"job_id": job_id, "run_id": "r", "started": True,
                         "stopped": status != "running", "start_time": start})
            tests.extend(self.test_rows(job_id, start, BIG_JOB_TESTS, status == "running"))
        self.flush(jobs, runs, tests)
        if "rt_test_stats" in self.columns:
            self.flush_stats()
        print("  building the indexes", file=sys.stderr)
        with self.engine.begin() as conn:
            for idx in indexes:
                idx.create(conn)
            conn.execute(text("ANALYZE"))

    def flush(self, *batches: list[dict[str, Any]]) -> None:
        for table, rows in zip(("rt_jobs", "rt_runs", "rt_tests"), batches, strict=True):
            self.insert(table, rows)
            rows.clear()

    def flush_stats(self) -> None:
        rows = []
        for key, recent in self.recent.items():
            row: dict[str, Any] = {"key": key}
            for slot in range(STATS_SLOTS):
                duration, job_id = recent[slot] if slot < len(recent) else (None, None)
                row[f"d{slot + 1}"], row[f"j{slot + 1}"] = duration, job_id
            firsts = [d for d, _ in list(recent)[:3]]
            row["median"] = statistics.median(firsts) if firsts else None
            rows.append(row)
        self.insert("rt_test_stats", rows)

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        columns = [c for c in self.columns[table] if c in rows[0]]
        values = [tuple(row.get(c) for c in columns) for row in rows]
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.engine.dialect.name == "postgresql":
                names = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join("?" for _ in columns)
                names = ", ".join(f'"{c}"' for c in columns)
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)
            raw.commit()
        finally:
            raw.close()


def get(url: str, timeout: float) -> tuple[float, int]:
    begin = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            size = len(answer.read())
            status = answer.status
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{url} answered {exc.code}") from None
    elapsed = time.perf_counter() - begin
    assert status == 200 and size > 0
    return elapsed, size


def server_options() -> list[str]:
    """Keep the running jobs running: the bench measures the worst case, 10,000 live jobs."""
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest_rt.server.cli", "--help"], capture_output=True, text=True
    ).stdout
    return ["--stale-after", "100000000"] if "--stale-after" in help_text else []


def measure(base: str, cases: list[tuple[str, str]], repeats: int, timeout: float) -> None:
    print("\n| read | cold | median | p99 | answer size |")
    print("|---|---:|---:|---:|---:|")
    for name, path in cases:
        try:
            cold, size = get(base + path, timeout)
        except TimeoutError:  # the code before issue 8: note it and go on
            print(f"| {name} | > {timeout:,.0f} s | | | |", flush=True)
            continue
        # A read of seconds (the code before issue 8) gets a few repeats, not 30.
        count = repeats if cold < 2 else 2
        times = [get(base + path, timeout)[0] for _ in range(count)]
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"| {name} | {1000 * cold:,.0f} ms | {1000 * statistics.median(times):,.1f} ms | "
              f"{1000 * p99:,.1f} ms | {size / 1e6:.2f} MB |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 100,000 jobs (default 1)")
    parser.add_argument("--db", help="a PostgreSQL URL (an empty database) instead of SQLite")
    parser.add_argument("--keep", type=Path, help="SQLite file to build, or reuse when it exists")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per read")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    args = parser.parse_args(argv)
    jobs = int(100_000 * args.scale)
    running = int(10_000 * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "reads.sqlite3"
        url = db_url_from_arg(args.db) if args.db else f"sqlite:///{path}"
        engine = schema.make_engine(url)
        builder = Builder(engine, jobs, running, TESTS_PER_JOB)
        reuse = args.keep is not None and args.keep.exists() and args.keep.stat().st_size > 1e6
        if not reuse:
            begin = time.time()
            builder.build()
            print(f"built {jobs:,} jobs ({running:,} running), {builder.test_id:,} test rows in "
                  f"{time.time() - begin:,.0f} s", flush=True)
        else:
            every = max(1, jobs // max(1, running))
            builder.running_ids = [f"job-{j:06d}" for j in range(jobs) if j % every == every - 1]
            builder.big_ids = {"passed": "big-passed", "running": "big-running"}
        engine.dispose()
        proc, port = start_server(url, server_options())
        try:
            base = f"http://127.0.0.1:{port}"
            cases = [
                ("`GET /api/jobs` (first page)", "/api/jobs"),
                ("`GET /api/jobs?limit=1000`", "/api/jobs?limit=1000"),
                ("job page, a running job of 100 tests", f"/api/jobs/{builder.running_ids[-1]}"),
                ("job page, finished, 100,000 tests", f"/api/jobs/{builder.big_ids['passed']}"),
                ("job page, running, 100,000 tests", f"/api/jobs/{builder.big_ids['running']}"),
            ]
            print(f"\nReads, {url.split(':', 1)[0]}, {jobs:,} jobs ({running:,} running), "
                  f"{builder.test_id or 'existing'} test rows, {args.repeats} repeats")
            measure(base, cases, args.repeats, args.timeout)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nload average: {os.getloadavg()[0]:.2f} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
