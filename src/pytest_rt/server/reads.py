"""Read queries: the JSON objects of the read API and of the live events.

A Job and a Test are plain dicts whose keys are the API contract
(docs/server.md). History medians feed the ETA the way Testgr computes it: the
median of a test's last three durations in other jobs, which the writer keeps
per test key in ``rt_test_stats`` as tests stop. So a read costs a lookup per
test it shows, never a scan of a test's history: with thousands of running
jobs sharing node ids, that scan was most of a second per job.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    and_,
    bindparam,
    func,
    or_,
    select,
    true,
)

from ..protocol import CI_FIELDS
from . import schema
from .jsonsafe import loads_stored as stored
from .jsonsafe import unreadable_errors, unreadable_list, unreadable_object
from .status import FINAL, FINISHED, count_tests, is_flaky, shown_status
from .writer import CHUNK

J, T, S = schema.jobs, schema.tests, schema.test_stats
DURATION = func.coalesce(T.c.duration, T.c.stop_time - T.c.start_time)
DELETING = schema.RANKS["deleting"]


def list_jobs(
    conn: Connection, status: str | None, env: str | None, limit: int, offset: int,
    project: str | None = None, branch: str | None = None,
) -> tuple[list[RowMapping], int]:
    """Job rows: running ones first, then abandoned ones, then the rest; newest first.

    The order is the index rt_jobs_order (rank, sort_time DESC, job_id): the
    first page reads 50 index entries whatever the number of jobs. Filtered by
    project, it is rt_jobs_project.
    """
    where = [J.c.rank < DELETING]
    if status:
        where += [J.c.status == status, J.c.rank == schema.rank(status)]
    if env is not None:
        where.append(J.c.env == env)
    if project is not None:
        where.append(J.c.project == project)
    if branch is not None:
        where.append(J.c.ci_branch == branch)
    cond = and_(*where)
    total = conn.scalar(select(func.count()).select_from(J).where(cond)) or 0
    rows = conn.execute(
        select(J)
        .where(cond)
        .order_by(J.c.rank, J.c.sort_time.desc(), J.c.job_id)
        .limit(limit)
        .offset(offset)
    ).mappings().all()
    return list(rows), total


# Built once: with a dashboard open these run on every POST, and building a
# statement costs SQLAlchemy more than running it.
JOB_ROW = select(J).where(J.c.job_id == bindparam("job_id"), J.c.rank < DELETING)
# Run order, off the index rt_tests_order: tests never declared have position
# UNDECLARED, so they come last, in arrival order.
TESTS_OF_JOB = (
    select(T)
    .where(T.c.job_id == bindparam("job_id"))
    .order_by(T.c.position, T.c.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
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
    conn: Connection, job_id: str, keys: Sequence[str] | None = None,
    offset: int = 0, limit: int = -1, status: str | None = None,
) -> list[RowMapping]:
    """A page of a job's tests in run order (those it never declared last), or only ``keys``.

    ``status`` filters on the stored status (``aborted`` is a shown status: the
    caller asks for ``running`` in a job that no longer runs).
    """
    if keys is None:
        query = TESTS_OF_JOB
        if status is not None:
            query = query.where(T.c.status == status)
        params = {"job_id": job_id, "offset": offset, "limit": limit}
        return list(conn.execute(query, params).mappings())
    rows: list[RowMapping] = []
    for chunk in _chunks(list(keys)):
        rows.extend(conn.execute(SOME_TESTS, {"job_id": job_id, "keys": chunk}).mappings())
    return rows


def count_tests_with(conn: Connection, job_id: str, status: str) -> int:
    query = select(func.count()).where(T.c.job_id == job_id, T.c.status == status)
    return conn.scalar(query) or 0


STATS_OF = select(S).where(S.c.key.in_(bindparam("keys", expanding=True)))


def history_medians(
    conn: Connection, keys: Sequence[str], exclude_job: str
) -> dict[str, float | None]:
    """Median of each test's last three durations in other jobs (the newest kept)."""
    found: dict[str, float | None] = {}
    slots = range(1, schema.STATS_SLOTS + 1)
    for chunk in _chunks(list(dict.fromkeys(keys))):
        for row in conn.execute(STATS_OF, {"keys": chunk}).mappings():
            durations = [
                row[f"d{i}"] for i in slots
                if row[f"d{i}"] is not None and row[f"j{i}"] != exclude_job
            ][:3]
            found[row["key"]] = statistics.median(durations) if durations else None
    return {key: found.get(key) for key in keys}


def status_counts(
    conn: Connection, job_ids: Sequence[str]
) -> dict[str, list[tuple[str, str | None, int]]]:
    rows: dict[str, list[tuple[str, str | None, int]]] = {job_id: [] for job_id in job_ids}
    for chunk in _chunks(list(job_ids)):
        for job_id, status, outcome, n in conn.execute(COUNTS, {"job_ids": chunk}):
            rows[job_id].append((status, outcome, n))
    return rows


# Per running job: its tests not started yet, how many of them have a median,
# and the sum of those medians (one aggregate, however many tests wait).
WAITING = (
    select(T.c.job_id, func.count(), func.count(S.c.median), func.sum(S.c.median))
    .select_from(T.outerjoin(S, S.c.key == T.c.key))
    .where(T.c.job_id.in_(bindparam("job_ids", expanding=True)), T.c.status == "not_started")
    .group_by(T.c.job_id)
)
# Its running tests, one by one: what each has left depends on when it began.
RUNNING = (
    select(T.c.job_id, T.c.start_time, S.c.median)
    .select_from(T.outerjoin(S, S.c.key == T.c.key))
    .where(T.c.job_id.in_(bindparam("job_ids", expanding=True)), T.c.status == "running")
)
MEANS = (
    select(T.c.job_id, func.avg(DURATION))
    .where(T.c.job_id.in_(bindparam("job_ids", expanding=True)), T.c.status.in_(FINAL))
    .group_by(T.c.job_id)
)


def etas(
    conn: Connection, rows: Sequence[Mapping[Any, Any]], now: float
) -> dict[str, float | None]:
    """Seconds left of each running job in ``rows``: each unfinished test's median
    (else this job's mean), less what a running test already spent, shared among the
    xdist workers. ``None`` when some test has nothing to estimate from."""
    job_ids = [row["job_id"] for row in rows]
    waiting: dict[str, tuple[int, int, float]] = {}
    running: dict[str, list[tuple[Any, float | None]]] = {j: [] for j in job_ids}
    for chunk in _chunks(job_ids):
        for job_id, n, known, total in conn.execute(WAITING, {"job_ids": chunk}):
            waiting[job_id] = (n, known, float(total or 0.0))
        for job_id, start, median in conn.execute(RUNNING, {"job_ids": chunk}):
            running[job_id].append((start, median))
    guessing = [
        j for j in job_ids
        if waiting.get(j, (0, 0, 0.0))[0] > waiting.get(j, (0, 0, 0.0))[1]
        or any(median is None for _, median in running[j])
    ]
    means: dict[str, float] = {}
    for chunk in _chunks(guessing):
        for job_id, mean in conn.execute(MEANS, {"job_ids": chunk}):
            if mean is not None:
                means[job_id] = float(mean)
    result: dict[str, float | None] = {}
    for row in rows:
        job_id = row["job_id"]
        n, known, total = waiting.get(job_id, (0, 0, 0.0))
        mean = means.get(job_id)
        eta: float | None = total
        if n > known:
            eta = None if mean is None else total + (n - known) * mean
        for start, median in running[job_id]:
            expected = median if median is not None else mean
            if eta is None or expected is None:
                eta = None
                break
            if start is not None:
                expected = max(0.0, expected - (now - start))
            eta += expected
        result[job_id] = None if eta is None else eta / max(1, row["workers"] or 0)
    return result


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
    elif row["status"] == "abandoned":  # it ran until it went silent
        heard = row["last_heard"]
        duration = max(0.0, heard - start) if heard is not None else None
    elif finished:
        duration = (stop - start) if stop is not None else None
    else:
        duration = max(0.0, now - start)
    return {
        "job_id": row["job_id"],
        "status": row["status"],
        "env": row["env"],
        "custom_id": row["custom_id"],
        "custom_data": _object(row["custom_data"]),
        "start_time": start,
        "stop_time": stop if finished else None,
        "duration": duration,
        "total": sum(n for _, _, n in counts_rows),
        "counts": counts,
        "outcome_counts": outcomes,
        "exitstatus": row["exitstatus"],
        "xdist": bool(row["xdist"]),
        "workers": row["workers"] or 0,
        "collect_errors": _collect_errors(row["collect_errors"]),
        "eta_seconds": None if finished else eta,
        # Shards: declared count (null: unknown), runs heard of and stopped, and how
        # often a run started after the job had finished (it showed finished, then not).
        "shards": row["shards"],
        "runs": row["runs"] or 0,
        "runs_stopped": row["runs_stopped"] or 0,
        "reopened": row["reopened"] or 0,
        "last_heard": row["last_heard"],
        "project": row["project"],
        "rootdir": row["rootdir"],
        "ci": {name: row[f"ci_{name}"] for name in CI_FIELDS},
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
        "markers": _strings(row["markers"]),
        "status": shown_status(row["status"], job_finished),
        "outcome": row["outcome"],
        "msg": row["msg"],
        "when": row["when_"],
        "start_time": start,
        "stop_time": stop,
        "duration": duration,
        "worker": row["worker"],
        "reruns": row["reruns"] or 0,
        "rerun_msgs": _strings(row["rerun_msgs"]),
        "history_median": median,
        "sections": _sections(row["sections"]),
        # Set by mark_changes for a job page; live events leave it null.
        "change": None,
    }


# A stored JSON column read back in the shape the API documents (api_schema), whatever
# was stored: ingest writes that shape, but rows written before its limits or by other
# means may hold any JSON.
NOT_THE_SHAPE = "not the documented shape"


def _object(text: str | None) -> dict[str, Any] | None:
    value = stored(text, unreadable_object)
    return value if value is None or isinstance(value, dict) else unreadable_object(
        NOT_THE_SHAPE
    )


def _strings(text: str | None) -> list[str]:
    value = stored(text, unreadable_list) or []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return unreadable_list(NOT_THE_SHAPE)


def _collect_errors(text: str | None) -> list[dict[str, str]]:
    value = stored(text, unreadable_errors) or []
    if not isinstance(value, list):
        return unreadable_errors(NOT_THE_SHAPE)
    return [
        {"nodeid": str(item.get("nodeid") or ""), "msg": str(item.get("msg") or "")}
        for item in value
        if isinstance(item, dict)
    ]


def _sections(text: str | None) -> list[dict[str, str]]:
    """The stored sections, each with a string name and text whatever was stored."""
    value = stored(text, unreadable_list) or []
    if not isinstance(value, list):
        return []
    return [
        {"name": str(item.get("name") or ""), "text": str(item.get("text") or "")}
        for item in value
        if isinstance(item, dict)
    ]


# ---- what changed since the previous job of the same line ------------------------------

CHANGES = ("new", "still_failing", "fixed")


def _failing(t: Any) -> ColumnElement[bool]:
    # As status.is_failure: a test that Ctrl-C interrupted is not a failure.
    return and_(
        t.c.status.in_(("failed", "error")),
        or_(t.c.outcome.is_(None), t.c.outcome != "interrupted"),
    )


def previous_job(conn: Connection, row: Mapping[Any, Any]) -> str | None:
    """The job before ``row`` in its line (same project and branch, else env and rootdir:
    ingest.lineage) that had finished: the newest by start time, off rt_jobs_lineage."""
    lineage, when = row["lineage"], row["sort_time"]
    if lineage is None or when is None:
        return None
    earlier = or_(J.c.sort_time < when, and_(J.c.sort_time == when, J.c.job_id < row["job_id"]))
    query = (
        select(J.c.job_id)
        .where(J.c.lineage == lineage, earlier, J.c.status.in_(FINISHED), J.c.rank < DELETING)
        .order_by(J.c.sort_time.desc(), J.c.job_id.desc())
        .limit(1)
    )
    return conn.scalar(query)


def change_of(
    status: str, outcome: str | None, before: tuple[str, str | None] | None
) -> str | None:
    """A test's change against its result in the previous job (``before``, None if absent)."""
    failing = status in ("failed", "error") and outcome != "interrupted"
    failed_before = (
        before is not None and before[0] in ("failed", "error") and before[1] != "interrupted"
    )
    if failing:
        return "still_failing" if failed_before else "new"
    if status == "passed" and failed_before:
        return "fixed"
    return None


def mark_changes(
    conn: Connection, job_id: str, previous: str | None,
    rows: Sequence[Mapping[Any, Any]], tests: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Set each test's ``change`` (rows and tests side by side) and count the job's changes.

    Reads the previous job's results of the shown tests only (its unique index), and
    two counts over the failing tests of both jobs: never a scan of the history.
    """
    counts: dict[str, Any] = {"previous_job_id": previous, **dict.fromkeys(CHANGES, 0)}
    if previous is None:
        return counts
    keys = [r["key"] for r in rows if r["status"] in ("failed", "error", "passed")]
    before: dict[str, tuple[str, str | None]] = {}
    for chunk in _chunks(keys):
        query = select(T.c.key, T.c.status, T.c.outcome).where(
            T.c.job_id == previous, T.c.key.in_(chunk)
        )
        before.update((key, (status, outcome)) for key, status, outcome in conn.execute(query))
    for r, test in zip(rows, tests, strict=True):
        test["change"] = change_of(r["status"], r["outcome"], before.get(r["key"]))
    cur, prev = T.alias("cur"), T.alias("prev")
    joined = and_(prev.c.job_id == previous, prev.c.key == cur.c.key, _failing(prev))
    failing_now = conn.execute(
        select(func.count(), func.count(prev.c.id))
        .select_from(cur.outerjoin(prev, joined))
        .where(cur.c.job_id == job_id, _failing(cur))
    ).one()
    counts["still_failing"] = failing_now[1]
    counts["new"] = failing_now[0] - failing_now[1]
    counts["fixed"] = conn.scalar(
        select(func.count())
        .select_from(prev.join(cur, and_(cur.c.job_id == job_id, cur.c.key == prev.c.key)))
        .where(prev.c.job_id == previous, _failing(prev), cur.c.status == "passed")
    ) or 0
    return counts


def changed_tests(
    conn: Connection, job_id: str, previous: str | None, change: str,
    offset: int, limit: int, status: str | None = None,
) -> tuple[list[RowMapping], int]:
    """A page (run order) of the job's tests marked ``change``, and how many there are."""
    if previous is None or change not in CHANGES:
        return [], 0
    cur, prev = T.alias("cur"), T.alias("prev")
    on = and_(prev.c.job_id == previous, prev.c.key == cur.c.key, _failing(prev))
    if change == "fixed":
        source, cond = cur.join(prev, on), cur.c.status == "passed"
    elif change == "still_failing":
        source, cond = cur.join(prev, on), _failing(cur)
    else:
        source, cond = cur.outerjoin(prev, on), and_(_failing(cur), prev.c.id.is_(None))
    where = and_(cur.c.job_id == job_id, cond, cur.c.status == status if status else true())
    total = conn.scalar(select(func.count()).select_from(source).where(where)) or 0
    rows = conn.execute(
        select(*cur.c).select_from(source).where(where)
        .order_by(cur.c.position, cur.c.id).limit(limit).offset(offset)
    ).mappings().all()
    return list(rows), total


def test_history(
    conn: Connection, key: str, nodeid: str, limit: int,
    project: str | None = None, branch: str | None = None,
) -> dict[str, Any]:
    """A test's results, newest first: of one project (and branch) when given, so that
    two projects' tests of the same node id are two histories, and so is their flakiness."""
    when = func.coalesce(T.c.stop_time, T.c.start_time, J.c.created)
    where = [T.c.key == key, J.c.rank < DELETING]
    if project is not None:
        where.append(J.c.project == project)
    if branch is not None:
        where.append(J.c.ci_branch == branch)
    rows = conn.execute(
        select(
            T, J.c.env, J.c.status.label("job_status"), J.c.project, J.c.ci_branch,
            J.c.ci_commit, J.c.ci_build, J.c.custom_id,
        )
        .join(J, J.c.job_id == T.c.job_id)
        .where(*where)
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
                "project": row["project"],
                "branch": row["ci_branch"],
                "commit": row["ci_commit"],
                "build": row["ci_build"],
                "custom_id": row["custom_id"],
                **{k: obj[k] for k in ("status", "outcome", "msg")},
                **{k: obj[k] for k in ("start_time", "stop_time", "duration")},
            }
        )
    return {
        "nodeid": nodeid,
        "project": project,
        "branch": branch,
        "results": results,
        "flaky": is_flaky([r["status"] for r in results]),
    }


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]
