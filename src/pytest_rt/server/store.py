"""The store: one engine, one writer thread, and the read API's queries.

Writes go through a single thread (one transaction per request, so a request
is all-or-nothing and two requests never race on the same upsert); reads run
in the caller's thread, on their own pooled connections (SQLite's WAL lets
them read while the writer writes).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, RowMapping, make_url

from . import reads
from .ingest import Event, clean_text, nodeid_key
from .schema import make_engine
from .writer import JobCache, Statements, WriteResult, apply_events

MEDIAN_CACHE_JOBS = 64
ETA_SECONDS = 1.0  # how long a running job's ETA is reused (it is a guess anyway)


class Store:
    """Everything the app reads and writes, for one database URL."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.url = url
        self._stmts = Statements(self.engine.dialect)
        self._jobs = JobCache()
        self._last_write = 0.0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pytest-rt-writer")
        self._medians: OrderedDict[str, dict[str, float | None]] = OrderedDict()
        self._medians_lock = threading.Lock()
        self._etas: dict[str, tuple[float, float | None]] = {}

    def describe(self) -> str:
        """The database URL without its password, for the start-up line."""
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.writer.shutdown(wait=True)
        self.engine.dispose()

    # -- writes -------------------------------------------------------------

    def write(self, events: Sequence[Event]) -> WriteResult:
        """Apply ``events`` in one transaction (call from the writer thread only)."""
        # Strictly increasing: the dedupe in apply_events tells this write's
        # event ids from older ones by their ``received`` stamp.
        self._last_write = now = max(time.time(), self._last_write + 1e-6)
        with self.engine.begin() as conn:
            result = apply_events(conn, self._stmts, events, now, self._jobs)
        self._jobs.update(result.statuses)  # committed: now the cache may say so
        return result

    # -- reads --------------------------------------------------------------

    def jobs_page(
        self, status: str | None, env: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows, total = reads.list_jobs(conn, status, env, limit, offset)
            jobs = self._job_objects(conn, rows, time.time())
        return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}

    def job_detail(self, job_id: str) -> dict[str, Any] | None:
        job_id = clean_text(job_id)
        now = time.time()
        with self.engine.connect() as conn:
            row = reads.job_row(conn, job_id)
            if row is None:
                return None
            job = self._job_objects(conn, [row], now)[0]
            rows = reads.test_rows(conn, job_id)
            medians = self._medians_for(conn, row, [t["key"] for t in rows])
            finished = row["status"] != "running"
            tests = [reads.test_object(t, finished, medians.get(t["key"])) for t in rows]
        return {"job": job, "tests": tests}

    def history(self, nodeid: str, limit: int) -> dict[str, Any]:
        nodeid = clean_text(nodeid)
        with self.engine.connect() as conn:
            return reads.test_history(conn, nodeid_key(nodeid), nodeid, limit)

    def change_messages(
        self, changes: Sequence[tuple[str, str, str | None]]
    ) -> list[dict[str, Any]]:
        """The ``/api/events`` messages for a write's changes: one Job snapshot per job."""
        now = time.time()
        messages: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            by_job: dict[str, list[tuple[str, str | None]]] = {}
            for kind, job_id, key in changes:
                by_job.setdefault(job_id, []).append((kind, key))
            for job_id, items in by_job.items():
                row = reads.job_row(conn, job_id)
                if row is None:
                    continue
                job = self._job_objects(conn, [row], now, eta_age=ETA_SECONDS)[0]
                keys = [key for _, key in items if key is not None]
                tests = {t["key"]: t for t in reads.test_rows(conn, job_id, keys)} if keys else {}
                finished = row["status"] != "running"
                medians = self._medians_for(conn, row, keys) if keys else {}
                for kind, key in items:
                    test_row = tests.get(key) if key is not None else None
                    messages.append({
                        "kind": kind,
                        "job_id": job_id,
                        "nodeid": test_row["nodeid"] if test_row is not None else None,
                        "job": job,
                        "test": reads.test_object(test_row, finished, medians.get(test_row["key"]))
                        if test_row is not None
                        else None,
                    })
        return messages

    def _job_objects(
        self, conn: Connection, rows: Sequence[RowMapping], now: float, eta_age: float = 0.0
    ) -> list[dict[str, Any]]:
        counts = reads.status_counts(conn, [row["job_id"] for row in rows])
        objects = []
        for row in rows:
            eta = self._eta(conn, row, now, eta_age) if row["status"] == "running" else None
            objects.append(reads.job_object(row, counts[row["job_id"]], eta, now))
        return objects

    def _eta(
        self, conn: Connection, row: Mapping[Any, Any], now: float, max_age: float
    ) -> float | None:
        """A running job's ETA, reused for ``max_age`` seconds: with a dashboard
        open, every POST asks for one, and it reads every unfinished test."""
        job_id = row["job_id"]
        cached = self._etas.get(job_id)
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        pending, mean = reads.pending_tests(conn, job_id)
        medians = self._medians_for(conn, row, [key for key, _, _ in pending])
        eta = reads.eta_seconds(pending, medians, mean, row["workers"] or 0, now)
        if len(self._etas) > 1000:
            self._etas.clear()
        self._etas[job_id] = (now, eta)
        return eta

    def _medians_for(
        self, conn: Connection, row: Mapping[Any, Any], keys: Sequence[str]
    ) -> dict[str, float | None]:
        """History medians of a job's tests, cached: earlier jobs do not change."""
        job_id = row["job_id"]
        with self._medians_lock:
            first = job_id not in self._medians
            cached = self._medians.setdefault(job_id, {})
            self._medians.move_to_end(job_id)
            while len(self._medians) > MEDIAN_CACHE_JOBS:
                self._medians.popitem(last=False)
            missing = [key for key in keys if key not in cached]
        if first:  # one query for all the job's tests, not one per test as they start
            missing = list(dict.fromkeys([*missing, *reads.job_keys(conn, job_id)]))
        if missing:
            before = row["start_time"] if row["start_time"] is not None else row["created"]
            found = reads.history_medians(conn, missing, job_id, before)
            with self._medians_lock:
                cached.update(found)
        return cached
