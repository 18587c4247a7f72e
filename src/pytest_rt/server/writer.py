"""Apply a request's events to the database, inside the caller's transaction.

Every write is an upsert whose result does not depend on arrival order: a
test's start never overrides its result, a result always wins, a declaration
in ``startTestRun`` only fills in descriptive fields. That is what makes a
stop-before-start, items-before-``startTestRun`` and replays come out right,
and what lets a batch be applied as a few ``executemany`` calls.

Two things are kept here for the reads: each test key's newest durations
(``rt_test_stats``, so an ETA never scans a test's history) and each job's
``last_heard`` (so a run that went silent can be marked abandoned).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from . import schema
from .ingest import Event, Heartbeat, ItemStart, ItemStop, RunStart, RunStop
from .status import FINISHED, job_status

CHUNK = 500  # bound on bound parameters per IN (...)
# A job's last_heard is written at most this often (seconds): a write per POST
# would cost the one-event-per-POST path an UPDATE; the sweep flushes the rest.
HEARD_PRECISION = 5.0
SEEN_KEYS = ("event_id", "job_id", "received")
START_KEYS = (
    "job_id", "key", "nodeid", "status", "start_time", "uuid", "worker", "reruns", "position",
)
STOP_KEYS = (
    "job_id", "key", "nodeid", "status", "outcome", "msg", "when_", "stop_time", "duration",
    "reruns", "rerun_msgs", "uuid", "worker", "position", "sections",
)
STATS_KEYS = ("key", "d1", "j1", "median")


@dataclass
class WriteResult:
    accepted: int = 0
    duplicates: int = 0
    # (kind, job_id, test key or None), in the order the dashboard should see them
    changes: list[tuple[str, str, str | None]] = field(default_factory=list)
    # the stored status of every job this write touched (for JobCache, once committed)
    statuses: dict[str, str] = field(default_factory=dict)


class JobCache:
    """The stored status of recently written jobs, kept by the single writer.

    It spares the hot path (one test event per POST) two queries: whether the
    job row exists, and whether the job had already ended. It assumes one
    receiver writes to the database (job rows are never deleted, so "exists"
    cannot go stale; a status can only change through this writer).
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.statuses: OrderedDict[str, str] = OrderedDict()
        # when each job's last_heard was last written (and when it was last heard)
        self.heard: dict[str, tuple[float, float]] = {}

    def update(self, statuses: dict[str, str]) -> None:
        for job_id, status in statuses.items():
            self.statuses[job_id] = status
            self.statuses.move_to_end(job_id)
        while len(self.statuses) > self.size:
            job_id, _ = self.statuses.popitem(last=False)
            self.heard.pop(job_id, None)

    def forget(self, job_ids: Iterable[str]) -> None:
        """Jobs deleted: the next event of one creates it anew."""
        for job_id in job_ids:
            self.statuses.pop(job_id, None)
            self.heard.pop(job_id, None)


class DriverStatement:
    """A statement compiled once and run through the driver with plain rows.

    SQLAlchemy's per-row parameter processing was the largest cost of a
    500-event batch; the hot upserts only bind str, float, int and None,
    which every driver takes as they are.
    """

    def __init__(self, stmt: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        # The values of the literals SQLAlchemy bound (in CASE ... THEN 'running').
        self.constants = {k: v for k, v in compiled.params.items() if k not in keys}
        order = compiled.positiontup if compiled.positional else None
        # itemgetter of two or more names gives a tuple (every statement here has more).
        self.pick = operator.itemgetter(*order) if order else None
        assert order is None or len(order) > 1

    def params(self, row: dict[str, Any]) -> Any:
        merged = row | self.constants
        return merged if self.pick is None else self.pick(merged)

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Execute for each row; the number of rows written."""
        if len(rows) == 1:
            return conn.exec_driver_sql(self.sql, self.params(rows[0])).rowcount
        return conn.exec_driver_sql(self.sql, [self.params(row) for row in rows]).rowcount


class Statements:
    """The upserts, built once per dialect (SQLAlchemy caches their compiled form)."""

    def __init__(self, dialect: Dialect) -> None:
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        t, r, j = schema.tests, schema.runs, schema.jobs
        self.ensure_job = insert(j).on_conflict_do_nothing(index_elements=[j.c.job_id])
        # No conflict target: a database made before issue 8 keys rt_seen by the
        # event id alone, a new one by (job, event id); either refuses a repeat.
        self.seen = insert(schema.seen).on_conflict_do_nothing()

        def keep(name: str, ins: Any) -> Any:
            return func.coalesce(getattr(ins.excluded, name), t.c[name])

        declare = insert(t)
        self.declare = declare.on_conflict_do_update(
            index_elements=[t.c.job_id, t.c.key],
            set_={
                "nodeid": declare.excluded.nodeid,
                "position": declare.excluded.position,
                **{
                    name: keep(name, declare)
                    for name in ("location", "uuid", "description", "file", "markers")
                },
            },
        )
        start = insert(t)
        self.start: Insert = start.on_conflict_do_update(
            index_elements=[t.c.job_id, t.c.key],
            set_={
                # A start never overrides a result that arrived before it.
                "status": case((t.c.status == "not_started", "running"), else_=t.c.status),
                **{name: keep(name, start) for name in ("start_time", "uuid", "worker")},
            },
        )
        stop = insert(t)
        self.stop = stop.on_conflict_do_update(
            index_elements=[t.c.job_id, t.c.key],
            set_={
                **{
                    name: getattr(stop.excluded, name)
                    for name in (
                        "status", "outcome", "msg", "when_", "stop_time",
                        "duration", "reruns", "rerun_msgs", "sections",
                    )
                },
                **{name: keep(name, stop) for name in ("uuid", "worker")},
            },
        )
        run = insert(r)
        self.run = run.on_conflict_do_update(
            index_elements=[r.c.job_id, r.c.run_id],
            set_={
                name: func.coalesce(getattr(run.excluded, name), r.c[name])
                for name in (
                    "start_time", "stop_time", "exitstatus", "interrupted",
                    "xdist", "workers", "collect_errors",
                )
            }
            | {
                "started": r.c.started | run.excluded.started,
                "stopped": r.c.stopped | run.excluded.stopped,
            },
        )
        st = schema.test_stats
        stats = insert(st)
        same = st.c.j1 == stats.excluded.j1  # the same job's result again: replace it
        shifted: dict[str, Any] = {"d1": stats.excluded.d1, "j1": stats.excluded.j1}
        for i in range(2, schema.STATS_SLOTS + 1):
            for col in ("d", "j"):
                shifted[f"{col}{i}"] = case(
                    (same, st.c[f"{col}{i}"]), else_=st.c[f"{col}{i - 1}"]
                )
        # The median of the new d1-d3, written as of the old row's columns.
        d1 = stats.excluded.d1
        d2 = case((same, st.c.d2), else_=st.c.d1)
        d3 = case((same, st.c.d3), else_=st.c.d2)
        median = case(
            (d2.is_(None), d1),
            (d3.is_(None), (d1 + d2) / 2),
            (((d1 <= d2) & (d2 <= d3)) | ((d3 <= d2) & (d2 <= d1)), d2),
            (((d2 <= d1) & (d1 <= d3)) | ((d3 <= d1) & (d1 <= d2)), d1),
            else_=d3,
        )
        self.stats = stats.on_conflict_do_update(
            index_elements=[st.c.key], set_=shifted | {"median": median}
        )
        self.fast_seen = DriverStatement(self.seen, dialect, SEEN_KEYS)
        self.fast_stats = DriverStatement(self.stats, dialect, STATS_KEYS)
        self.fast_start = DriverStatement(self.start, dialect, START_KEYS)
        self.fast_stop = DriverStatement(self.stop, dialect, STOP_KEYS)


def apply_events(
    conn: Connection,
    stmts: Statements,
    events: Sequence[Event],
    now: float,
    cache: JobCache,
    shared: bool = False,
) -> WriteResult:
    """Store ``events`` (already validated) and say what changed.

    ``cache`` is only read: the caller updates it with ``result.statuses``
    after the transaction commits. ``shared``: other receivers write to the same
    database (PostgreSQL). Then no job status is taken from the cache: a lock per job
    the events touch is taken first (:func:`_lock_jobs`), and every write of a job,
    whichever receiver takes it, runs after the ones before it have committed,
    reading what they wrote. Without it, two receivers each taking one shard's
    ``stopTestRun`` of a job read the other's run as still open, and the job stayed
    running forever.
    """
    result = WriteResult()
    if shared:
        touched = {e.meta.job_id for e in events}
        _lock_jobs(conn, touched)
        locked = _job_statuses(conn, touched)
        fresh = _drop_seen_returning(conn, stmts, events, now, result)
    else:
        fresh = _drop_seen(conn, stmts, events, now, result)
    if not fresh:
        return result
    job_ids = list(dict.fromkeys(e.meta.job_id for e in fresh))
    known = locked if shared else cache.statuses
    result.statuses = {j: known[j] for j in job_ids if j in known}
    unknown = [j for j in job_ids if j not in result.statuses]
    if unknown:
        # A heartbeat alone does not create a job: it may outlive a deleted one.
        creating = {e.meta.job_id for e in fresh if not isinstance(e, Heartbeat)}
        new = [job_id for job_id in unknown if job_id in creating]
        if new:
            conn.execute(
                stmts.ensure_job,
                [
                    {"job_id": job_id, "status": "running", "created": now,
                     "interrupted": False, "xdist": False, "workers": 0,
                     "last_heard": now, "rank": 0, "sort_time": now}
                    for job_id in sorted(new)  # one order: concurrent inserts never cycle
                ],
            )
        j = schema.jobs
        found = select(j.c.job_id, j.c.status).where(j.c.job_id.in_(unknown))
        result.statuses.update((job_id, status) for job_id, status in conn.execute(found))
        job_ids = [job_id for job_id in job_ids if job_id in result.statuses]
    _hear(conn, job_ids, now, cache)
    run_starts = [e for e in fresh if isinstance(e, RunStart)]
    starts = [e for e in fresh if isinstance(e, ItemStart)]
    stops = [e for e in fresh if isinstance(e, ItemStop)]
    run_stops = [e for e in fresh if isinstance(e, RunStop)]
    _apply_run_starts(conn, stmts, run_starts, result)
    if starts:
        stmts.fast_start.run(conn, [_start_row(e) for e in starts])
        result.changes.extend(("test_started", e.meta.job_id, e.key) for e in starts)
    if stops:
        stmts.fast_stop.run(conn, [_stop_row(e) for e in stops])
        _record_durations(conn, stmts, stops)
        result.changes.extend(("test_finished", e.meta.job_id, e.key) for e in stops)
    for stop in run_stops:
        conn.execute(stmts.run, [_merged_errors(conn, _run_stop_row(stop))])
    touched_runs = {e.meta.job_id for e in run_starts} | {e.meta.job_id for e in run_stops}
    _refresh_jobs(conn, job_ids, touched_runs, result)
    return result


def _seen_rows(events: Sequence[Event], now: float) -> dict[str, dict[str, Any]]:
    """The seen-table rows of a write's events, by id: one per distinct ``event_id``.

    A heartbeat is never resent (it is not spooled): its id is not kept.
    """
    rows: dict[str, dict[str, Any]] = {}
    for e in events:
        event_id = e.meta.event_id
        if event_id is not None and event_id not in rows and not isinstance(e, Heartbeat):
            rows[event_id] = {"event_id": event_id, "job_id": e.meta.job_id, "received": now}
    return rows


def _drop_seen(
    conn: Connection, stmts: Statements, events: Sequence[Event], now: float, result: WriteResult
) -> list[Event]:
    """The events whose ``event_id`` is new (or absent); the new ids are recorded.

    The ids are inserted first, ignoring conflicts: when every row went in (the
    common case) nothing was a duplicate and no lookup is needed. Otherwise the
    rows stamped with an earlier ``received`` than this write's ``now`` are the
    duplicates (``now`` is unique per write: see Store.write).
    """
    rows = _seen_rows(events, now)
    old: set[str] = set()
    if rows and stmts.fast_seen.run(conn, list(rows.values())) != len(rows):
        s = schema.seen
        by_job: dict[str, list[str]] = {}
        for seen_id, row in rows.items():
            by_job.setdefault(row["job_id"], []).append(seen_id)
        for job_id, ids in by_job.items():
            for chunk in _chunks(ids):
                old.update(
                    conn.scalars(
                        select(s.c.event_id).where(
                            s.c.job_id == job_id, s.c.event_id.in_(chunk), s.c.received != now
                        )
                    )
                )
    fresh: list[Event] = []
    for e in events:
        event_id = e.meta.event_id
        if isinstance(e, Heartbeat):
            fresh.append(e)
            continue
        if event_id is not None and (event_id in old or rows.pop(event_id, None) is None):
            result.duplicates += 1  # stored before, or earlier in this batch
            continue
        fresh.append(e)
    result.accepted = len(fresh)
    return fresh


def _lock_jobs(conn: Connection, job_ids: set[str]) -> None:
    """Hold a lock per job until the transaction ends (PostgreSQL advisory locks).

    Taken before anything is read or written, whether the job's row exists yet or
    not, in the order of their keys: every transaction takes its locks in the same
    order, so none waits in a cycle (a row lock, ``SELECT ... FOR UPDATE``, cannot
    lock a job another receiver is creating at that moment, and deadlocked). The
    rows a job's write touches (its runs, tests and event ids) are then written
    by one transaction at a time; the rows shared between jobs (``rt_test_stats``)
    are written in key order.
    """
    keys = sorted({_lock_key(job_id) for job_id in job_ids})
    conn.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(k, i) "
        "ORDER BY i",
        (keys,),
    )


def _lock_key(job_id: str) -> int:
    """A job's advisory lock: 64 bits of a digest (a collision only serializes two jobs)."""
    digest = hashlib.blake2b(b"pytest-rt:" + job_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _job_statuses(conn: Connection, job_ids: set[str]) -> dict[str, str]:
    """The stored status of the jobs that exist among ``job_ids``."""
    j = schema.jobs
    ordered = sorted(job_ids)
    found: dict[str, str] = {}
    for i in range(0, len(ordered), CHUNK):
        found.update(
            (job_id, status)
            for job_id, status in conn.execute(
                select(j.c.job_id, j.c.status).where(j.c.job_id.in_(ordered[i : i + CHUNK]))
            )
        )
    return found


def _drop_seen_returning(
    conn: Connection, stmts: Statements, events: Sequence[Event], now: float, result: WriteResult
) -> list[Event]:
    """:func:`_drop_seen` for a shared database: the insert names the ids it stored
    (``RETURNING``), so no ``received`` stamp has to be unique across receivers."""
    rows = _seen_rows(events, now)
    stored: set[str] = set()
    ordered = sorted(rows.values(), key=lambda row: (row["job_id"], row["event_id"]))
    for i in range(0, len(ordered), CHUNK):
        stored.update(
            conn.scalars(stmts.seen.values(ordered[i : i + CHUNK]).returning(
                schema.seen.c.event_id
            ))
        )
    fresh: list[Event] = []
    for e in events:
        event_id = e.meta.event_id
        if isinstance(e, Heartbeat) or event_id is None:
            fresh.append(e)
        elif event_id in stored:
            stored.discard(event_id)  # the first of the batch with this id
            fresh.append(e)
        else:
            result.duplicates += 1  # stored before, or earlier in this batch
    result.accepted = len(fresh)
    return fresh


def _apply_run_starts(
    conn: Connection, stmts: Statements, events: list[RunStart], result: WriteResult
) -> None:
    for e in events:
        conn.execute(
            update(schema.jobs)
            .where(schema.jobs.c.job_id == e.meta.job_id)
            .values(
                env=func.coalesce(e.env, schema.jobs.c.env),
                custom_id=func.coalesce(e.meta.custom_id, schema.jobs.c.custom_id),
                custom_data=func.coalesce(e.custom_data, schema.jobs.c.custom_data),
                **_identity(e),
            )
        )
        if e.shards is not None:
            # The largest count any shard declares: the job is finished once that many
            # runs have stopped.
            j = schema.jobs
            conn.execute(
                update(j)
                .where(j.c.job_id == e.meta.job_id,
                       or_(j.c.shards.is_(None), j.c.shards < e.shards))
                .values(shards=e.shards)
            )
        conn.execute(stmts.run, [_merged_errors(conn, _run_start_row(e))])
        if e.tests:
            conn.execute(stmts.declare, [
                {
                    "job_id": e.meta.job_id, "key": d.key, "nodeid": d.nodeid, "position": i,
                    "location": d.location, "uuid": d.uuid, "description": d.description,
                    "file": d.file, "markers": json.dumps(list(d.markers)),
                    "status": "not_started", "reruns": 0,
                }
                for i, d in enumerate(e.tests)
            ])
        result.changes.append(("job_started", e.meta.job_id, None))


def _merged_errors(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its collection errors added to those the run already reported."""
    if row["collect_errors"] is None:
        return row
    r = schema.runs
    known = conn.scalar(
        select(r.c.collect_errors).where(r.c.job_id == row["job_id"], r.c.run_id == row["run_id"])
    )
    merged = _json_list(known)
    merged.extend(e for e in _json_list(row["collect_errors"]) if e not in merged)
    return row | {"collect_errors": json.dumps(merged)}


def _json_list(text: str | None) -> list[Any]:
    """A stored JSON list; [] for what is not one (a row written by other means must not
    make the next POST of its job fail)."""
    try:
        value = json.loads(text) if text else []
    except (ValueError, RecursionError):
        return []
    return value if isinstance(value, list) else []


def _run_start_row(e: RunStart) -> dict[str, Any]:
    return {
        "job_id": e.meta.job_id, "run_id": e.meta.run_id, "started": True, "stopped": False,
        "start_time": e.start_time, "stop_time": None, "exitstatus": None,
        "interrupted": None, "xdist": e.xdist, "workers": e.workers,
        "collect_errors": e.collect_errors,
    }


def _run_stop_row(e: RunStop) -> dict[str, Any]:
    return {
        "job_id": e.meta.job_id, "run_id": e.meta.run_id, "started": False, "stopped": True,
        "start_time": None, "stop_time": e.stop_time, "exitstatus": e.exitstatus,
        "interrupted": e.interrupted, "xdist": None, "workers": None,
        "collect_errors": e.collect_errors,
    }


def _start_row(e: ItemStart) -> dict[str, Any]:
    return {
        "job_id": e.meta.job_id, "key": e.key, "nodeid": e.nodeid, "status": "running",
        "start_time": e.start_time, "uuid": e.uuid, "worker": e.worker, "reruns": 0,
        "position": schema.UNDECLARED,
    }


def _stop_row(e: ItemStop) -> dict[str, Any]:
    return {
        "job_id": e.meta.job_id, "key": e.key, "nodeid": e.nodeid, "status": e.status,
        "outcome": e.outcome, "msg": e.msg, "when_": e.when, "stop_time": e.stop_time,
        "duration": e.duration, "reruns": e.reruns, "rerun_msgs": e.rerun_msgs,
        "uuid": e.uuid, "worker": e.worker, "position": schema.UNDECLARED,
        "sections": e.sections,
    }


def _identity(e: RunStart) -> dict[str, Any]:
    """The job's project, checkout and CI build from a run's start; a shard that says
    less keeps what another said."""
    j = schema.jobs
    given = {"project": e.project, "rootdir": e.rootdir, "lineage": e.lineage}
    given.update((f"ci_{name}", value) for name, value in (e.ci or {}).items())
    return {name: func.coalesce(value, j.c[name]) for name, value in given.items()}


def _record_durations(conn: Connection, stmts: Statements, stops: list[ItemStop]) -> None:
    """Push each stopped test's duration into its key's newest durations."""
    rows = [
        {"key": e.key, "d1": e.duration, "j1": e.meta.job_id, "median": e.duration}
        for e in stops
        if e.duration is not None
    ]
    timed = [e for e in stops if e.duration is None and e.stop_time is not None]
    if timed:  # the seed's clients send no duration: stop - start, as the history does
        t = schema.tests
        for e in timed:
            start = conn.scalar(
                select(t.c.start_time).where(t.c.job_id == e.meta.job_id, t.c.key == e.key)
            )
            if start is not None and e.stop_time is not None:
                took = e.stop_time - start
                rows.append({"key": e.key, "d1": took, "j1": e.meta.job_id, "median": took})
    if rows:
        # In key order (stable: one key's durations keep theirs): receivers sharing the
        # database then lock these rows, common to every job, in one order.
        rows.sort(key=operator.itemgetter("key"))
        stmts.fast_stats.run(conn, rows)


def _hear(conn: Connection, job_ids: list[str], now: float, cache: JobCache) -> None:
    """Record that the receiver heard of these jobs (at most every HEARD_PRECISION s)."""
    stale = []
    for job_id in job_ids:
        written = cache.heard.get(job_id)
        if written is None or now - written[0] >= HEARD_PRECISION:
            stale.append(job_id)
            cache.heard[job_id] = (now, now)
        else:
            cache.heard[job_id] = (written[0], now)
    if stale:
        j = schema.jobs
        conn.execute(
            update(j)
            # Never back in time: another receiver may have written a later one.
            .where(j.c.job_id.in_(stale), or_(j.c.last_heard.is_(None), j.c.last_heard < now))
            .values(last_heard=now)
        )


def _refresh_jobs(
    conn: Connection, job_ids: list[str], touched_runs: set[str], result: WriteResult
) -> None:
    """Recompute the stored status of jobs whose runs changed or that had already ended."""
    j = schema.jobs
    for job_id in job_ids:
        before = result.statuses.get(job_id, "running")
        if (job_id not in touched_runs and before == "running") or before == "deleting":
            continue  # a job being deleted stays so: what arrives now goes with it
        values = _job_values(conn, job_id)
        reopened = before in FINISHED and values["status"] == "running"
        if reopened:
            # A run started after the job had finished (a late shard, without --rt-shards,
            # or beyond their number): it runs again, and says so.
            values["reopened"] = j.c.reopened + 1
        conn.execute(update(j).where(j.c.job_id == job_id).values(**values))
        result.statuses[job_id] = values["status"]
        if values["status"] != "running" and values["status"] != before:
            result.changes.append(("job_finished", job_id, None))
        elif values["status"] == "running" and (before == "abandoned" or reopened):
            # A late event revives it: the page reloads its tests (no longer aborted).
            result.changes.append(("job_started", job_id, None))


def _job_values(conn: Connection, job_id: str) -> dict[str, Any]:
    r, t, j = schema.runs, schema.tests, schema.jobs
    rows = conn.execute(select(r).where(r.c.job_id == job_id)).mappings().all()
    shards = conn.scalar(select(j.c.shards).where(j.c.job_id == job_id))
    stopped = sum(1 for row in rows if row["stopped"])
    # Every run heard of has stopped, and as many as the job's shards (when declared):
    # a shard that has not started yet keeps the job running.
    finished = bool(rows) and stopped == len(rows) and (shards is None or stopped >= shards)
    errors: list[Any] = []
    for row in rows:
        errors.extend(json.loads(row["collect_errors"] or "[]"))
    starts = [row["start_time"] for row in rows if row["start_time"] is not None]
    stops = [row["stop_time"] for row in rows if row["stop_time"] is not None]
    exits = [row["exitstatus"] for row in rows if row["exitstatus"] is not None]
    interrupted = any(row["interrupted"] for row in rows)
    status = "running"
    if finished:
        counts = conn.execute(
            select(t.c.status, t.c.outcome, func.count())
            .where(t.c.job_id == job_id)
            .group_by(t.c.status, t.c.outcome)
        )
        status = job_status(list(counts), bool(errors), exits, interrupted)
    return {
        "status": status,
        "rank": schema.rank(status),
        "start_time": min(starts) if starts else None,
        "stop_time": max(stops) if finished and stops else None,
        "exitstatus": max(exits, key=lambda code: (code not in (0, 5), code)) if exits else None,
        "interrupted": interrupted,
        "xdist": any(row["xdist"] for row in rows),
        "workers": sum(row["workers"] or 0 for row in rows),
        "collect_errors": json.dumps(errors) if errors else None,
        "sort_time": func.coalesce(min(starts) if starts else None, schema.jobs.c.created),
        "runs": len(rows),
        "runs_stopped": stopped,
    }


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
