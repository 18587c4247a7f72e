"""Read queries: the JSON objects of the read API and of the live events.

A Job and a Test are plain dicts whose keys are the API contract
(docs/server.md). History medians feed the ETA the way Testgr computes it: the
median of a test's last three durations in earlier jobs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, bindparam, case, func, select

from . import schema
from .jsonsafe import loads_stored as stored
from .jsonsafe import unreadable_errors, unreadable_list, unreadable_object
from .status import FINAL, count_tests, is_flaky, shown_status
from .writer import CHUNK

J, T = schema.jobs, schema.tests
DURATION = func.coalesce(T.c.duration, T.c.stop_time - T.c.start_time)


def list_jobs(
    conn: Connection, status: str | None, env: str | None, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """Job rows, running ones first, then newest first, and the total that match."""
    where = []
    if status:
        where.append(J.c.status == status)
    if env is not None:
        where.append(J.c.env == env)
    cond = and_(True, *where)
    total = conn.scalar(select(func.count()).select_from(J).where(cond)) or 0
    rows = conn.execute(
        select(J)
        .where(cond)
        .order_by(
            case((J.c.status == "running", 0), else_=1),
            func.coalesce(J.c.start_time, J.c.created).desc(),
            J.c.job_id,
        )
        .limit(limit)
        .offset(offset)
    ).mappings().all()
    return list(rows), total


# Built once: with a dashboard open these run on every POST, and building a
# statement costs SQLAlchemy more than running it.
JOB_ROW = select(J).where(J.c.job_id == bindparam("job_id"))
TESTS_OF_JOB = (
    select(T)
    .where(T.c.job_id == bindparam("job_id"))
    .order_by(T.c.position.is_(None), T.c.position, T.c.id)
)
SOME_TESTS = select(T).where(
    T.c.job_id == bindparam("job_id"), T.c.key.in_(bindparam("keys", expanding=True))
)
COUNTS = (
    select(T.c.job_id, T.c.status, T.c.outcome, func.count())
    .where(T.c.job_id.in_(bindparam("job_ids", expanding=True)))
    .group_by(T.c.job_id, T.c.status, T.c.outcome)
)


def job_row(conn: Connection, job_id: str) -> RowMapping | None:
    return conn.execute(JOB_ROW, {"job_id": job_id}).mappings().first()


def test_rows(
    conn: Connection, job_id: str, keys: Sequence[str] | None = None
) -> list[RowMapping]:
    """A job's tests in run order (those it never declared last), or only ``keys``."""
    if keys is None:
        return list(conn.execute(TESTS_OF_JOB, {"job_id": job_id}).mappings())
    rows: list[RowMapping] = []
    for chunk in _chunks(list(keys)):
        rows.extend(conn.execute(SOME_TESTS, {"job_id": job_id, "keys": chunk}).mappings())
    return rows


def job_keys(conn: Connection, job_id: str) -> list[str]:
    return list(conn.scalars(select(T.c.key).where(T.c.job_id == job_id)))


def _last_three() -> Any:
    ranked = (
        select(
            T.c.key,
            DURATION.label("d"),
            func.row_number()
            .over(partition_by=T.c.key, order_by=T.c.stop_time.desc())
            .label("rn"),
        )
        .where(
            T.c.key.in_(bindparam("keys", expanding=True)),
            T.c.job_id != bindparam("exclude_job"),
            T.c.status.in_(FINAL),
            T.c.stop_time < bindparam("before"),
            DURATION.is_not(None),
        )
        .subquery()
    )
    return select(ranked.c.key, ranked.c.d).where(ranked.c.rn <= 3)


LAST_THREE = _last_three()


def history_medians(
    conn: Connection, keys: Sequence[str], exclude_job: str, before: float | None
) -> dict[str, float | None]:
    """Median of each test's last three durations in other (earlier) jobs."""
    found: dict[str, list[float]] = {}
    params: dict[str, Any] = {
        "exclude_job": exclude_job,
        "before": before if before is not None else float(2**62),
    }
    for chunk in _chunks(list(keys)):
        for key, duration in conn.execute(LAST_THREE, params | {"keys": chunk}):
            found.setdefault(key, []).append(float(duration))
    return {key: (statistics.median(found[key]) if key in found else None) for key in keys}


def status_counts(
    conn: Connection, job_ids: Sequence[str]
) -> dict[str, list[tuple[str, str | None, int]]]:
    rows: dict[str, list[tuple[str, str | None, int]]] = {job_id: [] for job_id in job_ids}
    for chunk in _chunks(list(job_ids)):
        for job_id, status, outcome, n in conn.execute(COUNTS, {"job_ids": chunk}):
            rows[job_id].append((status, outcome, n))
    return rows


def pending_tests(conn: Connection, job_id: str) -> tuple[list[tuple[str, str, Any]], float | None]:
    """A running job's unfinished tests (key, status, start) and its finished tests' mean."""
    pending = conn.execute(
        select(T.c.key, T.c.status, T.c.start_time).where(
            T.c.job_id == job_id, T.c.status.in_(("not_started", "running"))
        )
    )
    mean = conn.scalar(
        select(func.avg(DURATION)).where(T.c.job_id == job_id, T.c.status.in_(FINAL))
    )
    return list(pending), (float(mean) if mean is not None else None)


def eta_seconds(
    pending: Iterable[tuple[str, str, Any]],
    medians: Mapping[str, float | None],
    mean: float | None,
    workers: int,
    now: float,
) -> float | None:
    """Seconds left: each unfinished test's history median (else this job's mean),
    less what a running test already spent, shared among the xdist workers."""
    total = 0.0
    for key, status, start in pending:
        expected = medians.get(key)
        if expected is None:
            expected = mean
        if expected is None:
            return None
        if status == "running" and start is not None:
            expected = max(0.0, expected - (now - start))
        total += expected
    return total / max(1, workers)


def job_object(
    row: Mapping[Any, Any],
    counts_rows: list[tuple[str, str | None, int]],
    eta: float | None,
    now: float,
) -> dict[str, Any]:
    finished = row["status"] != "running"
    counts, outcomes = count_tests(counts_rows, finished)
    start, stop = row["start_time"], row["stop_time"]
    if start is None:
        duration = None
    elif finished:
        duration = (stop - start) if stop is not None else None
    else:
        duration = max(0.0, now - start)
    return {
        "job_id": row["job_id"],
        "status": row["status"],
        "env": row["env"],
        "custom_id": row["custom_id"],
        "custom_data": stored(row["custom_data"], unreadable_object),
        "start_time": start,
        "stop_time": stop if finished else None,
        "duration": duration,
        "total": sum(n for _, _, n in counts_rows),
        "counts": counts,
        "outcome_counts": outcomes,
        "exitstatus": row["exitstatus"],
        "xdist": bool(row["xdist"]),
        "workers": row["workers"] or 0,
        "collect_errors": stored(row["collect_errors"], unreadable_errors) or [],
        "eta_seconds": None if finished else eta,
    }


def test_object(
    row: Mapping[Any, Any], job_finished: bool, median: float | None
) -> dict[str, Any]:
    start, stop, duration = row["start_time"], row["stop_time"], row["duration"]
    if duration is None and start is not None and stop is not None:
        duration = stop - start
    return {
        "nodeid": row["nodeid"],
        "location": row["location"],
        "uuid": row["uuid"],
        "description": row["description"],
        "file": row["file"],
        "markers": stored(row["markers"], unreadable_list) or [],
        "status": shown_status(row["status"], job_finished),
        "outcome": row["outcome"],
        "msg": row["msg"],
        "when": row["when_"],
        "start_time": start,
        "stop_time": stop,
        "duration": duration,
        "worker": row["worker"],
        "reruns": row["reruns"] or 0,
        "rerun_msgs": stored(row["rerun_msgs"], unreadable_list) or [],
        "history_median": median,
    }


def test_history(conn: Connection, key: str, nodeid: str, limit: int) -> dict[str, Any]:
    when = func.coalesce(T.c.stop_time, T.c.start_time, J.c.created)
    rows = conn.execute(
        select(T, J.c.env, J.c.status.label("job_status"))
        .join(J, J.c.job_id == T.c.job_id)
        .where(T.c.key == key)
        .order_by(when.desc(), T.c.id.desc())
        .limit(limit)
    ).mappings()
    results = []
    for row in rows:
        obj = test_object(row, row["job_status"] != "running", None)
        results.append(
            {
                "job_id": row["job_id"],
                "env": row["env"],
                **{k: obj[k] for k in ("status", "outcome", "msg")},
                **{k: obj[k] for k in ("start_time", "stop_time", "duration")},
            }
        )
    return {
        "nodeid": nodeid,
        "results": results,
        "flaky": is_flaky([r["status"] for r in results]),
    }


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
