"""The store: one engine, one writer thread, and the read API's queries.

Writes go through a single thread (one transaction per request, so a request
is all-or-nothing and two requests never race on the same upsert); reads run
in the caller's thread, on their own pooled connections (SQLite's WAL lets
them read while the writer writes). The lifecycle's writes (marking silent
jobs abandoned, deleting jobs) run on the writer thread too, in short
transactions between the requests'.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, make_url, or_, select, update

from . import notify, reads, schema
from .ingest import Event, clean_text, nodeid_key
from .schema import make_engine
from .writer import JobCache, Statements, WriteResult, apply_events

ETA_SECONDS = 1.0  # how long a running job's ETA is reused (it is a guess anyway)
TESTS_PAGE = 1000  # tests per job page unless asked otherwise
MAX_TESTS_PAGE = 10_000
PURGE_ROWS = 5000  # rows deleted per transaction: other writes wait at most that long
SWEEP_JOBS = 500  # jobs marked abandoned or picked for deletion per transaction


class Store:
    """Everything the app reads and writes, for one database URL."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.url = url
        self._stmts = Statements(self.engine.dialect)
        self._jobs = JobCache()
        # PostgreSQL may be shared by many receivers: the writer then locks job rows
        # instead of trusting its cache, and changes reach every receiver's dashboards
        # through NOTIFY (notify.py). SQLite is one receiver's, as its file is.
        self.shared = self.engine.dialect.name == "postgresql"
        self.channel = notify.channel_for(self.engine) if self.shared else None
        self._last_write = 0.0
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pytest-rt-writer")
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
            result = apply_events(conn, self._stmts, events, now, self._jobs, self.shared)
            self._notify(conn, result.changes)
        self._jobs.update(result.statuses)  # committed: now the cache may say so
        return result

    def _notify(self, conn: Connection, changes: Sequence[tuple[str, str, str | None]]) -> None:
        """On a shared database, tell every receiver (this one too) at commit."""
        if self.channel is not None and changes:
            notify.send(conn, self.channel, changes)

    # -- the lifecycle's writes (writer thread only) --------------------------

    def abandon_stale(self, now: float, stale_after: float) -> list[str]:
        """Mark running jobs not heard of for ``stale_after`` seconds abandoned (a bounded
        number per call: call again while it returns SWEEP_JOBS ids)."""
        cutoff = now - stale_after
        j = schema.jobs
        with self.engine.begin() as conn:
            candidates = list(conn.scalars(
                select(j.c.job_id)
                .where(j.c.status == "running", or_(j.c.last_heard < cutoff,
                                                    j.c.last_heard.is_(None)))
                .limit(SWEEP_JOBS)
            ))
            silent = []
            for job_id in candidates:
                heard = self._jobs.heard.get(job_id)
                if heard is not None and heard[1] >= cutoff:
                    # Heard since last_heard was written (HEARD_PRECISION): write it now.
                    conn.execute(
                        update(j).where(j.c.job_id == job_id).values(last_heard=heard[1])
                    )
                    self._jobs.heard[job_id] = (heard[1], heard[1])
                else:
                    silent.append(job_id)
            if silent:
                silent = list(conn.scalars(
                    update(j)
                    # Checked again on the row as it is when the update gets it: another
                    # receiver may have heard of the job since the select.
                    .where(j.c.job_id.in_(silent), j.c.status == "running",
                           or_(j.c.last_heard < cutoff, j.c.last_heard.is_(None)))
                    .values(status="abandoned", rank=schema.rank("abandoned"))
                    .returning(j.c.job_id)
                ))
                self._notify(conn, [("job_finished", job_id, None) for job_id in silent])
        self._jobs.update(dict.fromkeys(silent, "abandoned"))
        return silent

    def expired_jobs(self, before: float) -> list[str]:
        """Jobs to delete: finished (or abandoned) before ``before``."""
        j = schema.jobs
        ended = func.coalesce(j.c.stop_time, j.c.last_heard, j.c.created)
        with self.engine.connect() as conn:
            return list(conn.scalars(
                select(j.c.job_id)
                .where(j.c.status.not_in(("running", "deleting")), ended < before)
                .limit(SWEEP_JOBS)
            ))

    def deleting_jobs(self) -> list[str]:
        j = schema.jobs
        with self.engine.connect() as conn:
            return list(conn.scalars(
                select(j.c.job_id).where(j.c.status == "deleting").limit(SWEEP_JOBS)
            ))

    def mark_deleting(self, job_ids: Sequence[str]) -> list[str]:
        """Hide jobs from every read at once; :meth:`purge_step` then removes their rows.
        The ids of those that exist."""
        j = schema.jobs
        with self.engine.begin() as conn:
            found = list(conn.scalars(select(j.c.job_id).where(j.c.job_id.in_(job_ids))))
            if found:
                conn.execute(
                    update(j).where(j.c.job_id.in_(found))
                    .values(status="deleting", rank=schema.rank("deleting"))
                )
                self._notify(conn, [("job_deleted", job_id, None) for job_id in found])
        self._jobs.update(dict.fromkeys(found, "deleting"))
        return found

    def purge_step(self, job_id: str) -> bool:
        """Delete up to PURGE_ROWS rows of a job marked deleting; True once it is gone.

        Tests first, then event ids, the job row last: a purge cut short (a
        restart) leaves the job marked, and the next sweep finishes it.
        """
        t, s, j = schema.tests, schema.seen, schema.jobs
        with self.engine.begin() as conn:
            some = select(t.c.id).where(t.c.job_id == job_id).limit(PURGE_ROWS)
            if conn.execute(delete(t).where(t.c.id.in_(some))).rowcount:
                return False
            ids = select(s.c.event_id).where(s.c.job_id == job_id).limit(PURGE_ROWS)
            gone = conn.execute(
                delete(s).where(s.c.job_id == job_id, s.c.event_id.in_(ids))
            ).rowcount
            if gone:
                return False
            conn.execute(delete(schema.runs).where(schema.runs.c.job_id == job_id))
            conn.execute(delete(j).where(j.c.job_id == job_id, j.c.status == "deleting"))
        self._jobs.forget([job_id])
        self._etas.pop(job_id, None)
        return True

    # -- reads --------------------------------------------------------------

    def jobs_page(
        self, status: str | None, env: str | None, limit: int, offset: int,
        project: str | None = None, branch: str | None = None,
    ) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows, total = reads.list_jobs(conn, status, env, limit, offset, project, branch)
            jobs = self._job_objects(conn, rows, time.time())
        return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}

    def job_detail(
        self, job_id: str, offset: int = 0, limit: int = TESTS_PAGE, status: str | None = None,
        change: str | None = None,
    ) -> dict[str, Any] | None:
        """A job and one page of its tests (run order), optionally of one shown status
        and of one change since the previous job (reads.mark_changes)."""
        job_id = clean_text(job_id)
        now = time.time()
        with self.engine.connect() as conn:
            row = reads.job_row(conn, job_id)
            if row is None:
                return None
            job = self._job_objects(conn, [row], now)[0]
            finished = row["status"] != "running"
            stored = _stored_status(status, finished)
            previous = reads.previous_job(conn, row)
            rows: list[RowMapping]
            if change is not None:
                if status is not None and stored is None:
                    rows, total = [], 0
                else:
                    rows, total = reads.changed_tests(
                        conn, job_id, previous, change, offset, limit, stored
                    )
            elif status is None:
                rows = reads.test_rows(conn, job_id, offset=offset, limit=limit)
                total = job["total"]
            elif stored is None:  # e.g. "aborted" while it runs: none can be
                rows, total = [], 0
            else:
                rows = reads.test_rows(conn, job_id, offset=offset, limit=limit, status=stored)
                total = reads.count_tests_with(conn, job_id, stored)
            medians = reads.history_medians(conn, [t["key"] for t in rows], job_id)
            tests = [reads.test_object(t, finished, medians.get(t["key"])) for t in rows]
            changes = reads.mark_changes(conn, job_id, previous, rows, tests)
        return {
            "job": job, "tests": tests, "tests_total": total, "offset": offset, "limit": limit,
            "changes": changes,
        }

    def history(
        self, nodeid: str, limit: int, project: str | None = None, branch: str | None = None
    ) -> dict[str, Any]:
        nodeid = clean_text(nodeid)
        with self.engine.connect() as conn:
            return reads.test_history(
                conn, nodeid_key(nodeid), nodeid, limit, project, branch
            )

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
                medians = reads.history_medians(conn, keys, job_id) if keys else {}
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
        etas = self._etas_of(conn, [row for row in rows if row["status"] == "running"], now,
                             eta_age)
        return [
            reads.job_object(row, counts[row["job_id"]], etas.get(row["job_id"]), now)
            for row in rows
        ]

    def _etas_of(
        self, conn: Connection, rows: Sequence[Mapping[Any, Any]], now: float, max_age: float
    ) -> dict[str, float | None]:
        """Running jobs' ETAs, reused for ``max_age`` seconds: with a dashboard open,
        every POST asks for one."""
        found: dict[str, float | None] = {}
        missing = []
        for row in rows:
            cached = self._etas.get(row["job_id"])
            if cached is not None and now - cached[0] < max_age:
                found[row["job_id"]] = cached[1]
            else:
                missing.append(row)
        if missing:
            fresh = reads.etas(conn, missing, now)
            if len(self._etas) > 1000:
                self._etas.clear()
            for job_id, eta in fresh.items():
                self._etas[job_id] = (now, eta)
            found.update(fresh)
        return found


def _stored_status(shown: str | None, finished: bool) -> str | None:
    """The stored status whose tests show as ``shown`` (None: no test can)."""
    if shown == "aborted":
        return "running" if finished else None
    if shown == "running" and finished:
        return None
    return shown
