"""The tables, and the engine that holds them (SQLite with WAL by default).

One row per job, per run (a pytest process, a shard of a job), per test of a
job, per event id seen (for idempotency), and per test key (its recent
durations, for ETAs). A job's ``status`` is stored so the jobs list can filter
and sort on it; the write path recomputes it, and keeps ``rank`` and
``sort_time`` in step so the front page is read off one index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)

ID = String(200)
metadata = MetaData()
JOB_IDENTITY = (
    "project", "rootdir", "ci_provider", "ci_repository", "ci_branch", "ci_commit",
    "ci_pull_request", "ci_build", "ci_build_url",
)

jobs = Table(
    "rt_jobs",
    metadata,
    Column("job_id", ID, primary_key=True),
    Column("status", String(16), nullable=False, default="running"),
    Column("env", Text),
    Column("custom_id", Text),
    Column("custom_data", Text),  # JSON object
    Column("created", Float, nullable=False),  # when the receiver first heard of it
    Column("start_time", Float),
    Column("stop_time", Float),
    Column("exitstatus", Integer),
    Column("interrupted", Boolean, nullable=False, default=False),
    Column("xdist", Boolean, nullable=False, default=False),
    Column("workers", Integer, nullable=False, default=0),
    Column("collect_errors", Text),  # JSON array
    # When the receiver last heard of the job (to the writer's HEARD_PRECISION):
    # a running job silent for --stale-after seconds is marked abandoned.
    Column("last_heard", Float),
    # The front page's order, kept by the writer: running, abandoned, the rest
    # (RANKS), newest first. Columns rather than expressions so one index serves it.
    Column("rank", Integer, nullable=False, default=2),
    Column("sort_time", Float),  # start_time, else created
    # Which project, checkout and CI build the job comes from (startTestRun's project
    # and ci; issue 9), to tell jobs apart. rootdir and lineage serve "what changed":
    # lineage is ingest.lineage(), a digest naming the job's line of runs.
    *(Column(name, Text) for name in JOB_IDENTITY),
    Column("lineage", String(32)),
    # Shards (issue 9): ``shards`` is the count startTestRun declared (--rt-shards), the
    # job finishes once that many runs have stopped; ``runs``/``runs_stopped`` count the
    # runs heard of; ``reopened``, how often a run started after the job had finished.
    Column("shards", Integer),
    Column("runs", Integer, nullable=False, default=0, server_default="0"),
    Column("runs_stopped", Integer, nullable=False, default=0, server_default="0"),
    Column("reopened", Integer, nullable=False, default=0, server_default="0"),
    # No index on env: PostgreSQL refuses index rows over ~2.7 kB, and env is free text.
    Index("rt_jobs_status", "status"),
)
Index("rt_jobs_order", jobs.c.rank, jobs.c.sort_time.desc(), jobs.c.job_id)
# The jobs list filtered by project (cut at 200 characters at ingest: indexable).
Index("rt_jobs_project", jobs.c.project, jobs.c.rank, jobs.c.sort_time.desc())
# A job's previous finished job of its line: one index range, read backwards.
Index("rt_jobs_lineage", jobs.c.lineage, jobs.c.sort_time)

runs = Table(
    "rt_runs",
    metadata,
    Column("job_id", ID, primary_key=True),
    Column("run_id", ID, primary_key=True),
    Column("started", Boolean, nullable=False, default=False),
    Column("stopped", Boolean, nullable=False, default=False),
    Column("start_time", Float),
    Column("stop_time", Float),
    Column("exitstatus", Integer),
    Column("interrupted", Boolean),
    Column("xdist", Boolean),
    Column("workers", Integer),
    Column("collect_errors", Text),
)

tests = Table(
    "rt_tests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", ID, nullable=False),
    Column("key", String(1000), nullable=False),  # the node id, or its digest when long
    Column("nodeid", Text, nullable=False),
    # Order in startTestRun's list; UNDECLARED for tests it did not list (yet),
    # so (position, id) pages through a job in run order off one index.
    Column("position", Integer),
    Column("location", Text),
    Column("uuid", Text),
    Column("description", Text),
    Column("file", Text),
    Column("markers", Text),  # JSON array
    Column("status", String(16), nullable=False),
    Column("outcome", Text),
    Column("msg", Text),
    Column("when_", Text),
    Column("start_time", Float),
    Column("stop_time", Float),
    Column("duration", Float),
    Column("worker", Text),
    Column("reruns", Integer, nullable=False, default=0),
    Column("rerun_msgs", Text),  # JSON array
    Column("sections", Text),  # JSON array of {"name", "text"}: what pytest captured
    UniqueConstraint("job_id", "key", name="rt_tests_job_key"),
    Index("rt_tests_history", "key", "stop_time"),
    # Covers the per-job counts that every live snapshot takes.
    Index("rt_tests_counts", "job_id", "status", "outcome"),
    Index("rt_tests_order", "job_id", "position", "id"),
)

seen = Table(
    "rt_seen",
    metadata,
    # Keyed by job first: a job's ids are one range, deleted with the job, and a
    # job's inserts land on the same few pages instead of random ones (event ids
    # are random). A resent event carries its job id, so dedupe is unchanged.
    Column("job_id", ID, primary_key=True),
    Column("event_id", ID, primary_key=True),
    Column("received", Float, nullable=False),
    # One B-tree instead of a rowid table plus an index.
    sqlite_with_rowid=False,
)

# A test's newest durations, newest first, with the job of each (d1/j1 newest),
# maintained as tests stop; ``median`` is the median of d1-d3. An ETA reads one
# row per pending test instead of scanning the test's whole history.
test_stats = Table(
    "rt_test_stats",
    metadata,
    Column("key", String(1000), primary_key=True),
    *(Column(f"d{i}", Float) for i in range(1, 5)),
    *(Column(f"j{i}", ID) for i in range(1, 5)),
    Column("median", Float),
)
STATS_SLOTS = 4  # one more than the median needs: a job's own result is left out

RANKS = {"running": 0, "abandoned": 1, "deleting": 3}  # anything else: 2
UNDECLARED = 2**31 - 1

SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the tables created; SQLite gets WAL and NORMAL sync."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name not in SUPPORTED_DIALECTS:
        engine.dispose()
        raise ValueError(
            f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL"
        )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    with engine.begin() as conn:
        migrate(conn)
    return engine


def rank(status: str) -> int:
    return RANKS.get(status, 2)


def migrate(conn: Connection) -> None:
    """Bring a database made by an earlier version up to this schema (idempotent).

    Adds the columns and indexes of issue 8, fills them from what is stored,
    and seeds ``rt_test_stats`` from the history. ``rt_seen`` keeps its old
    primary key (event id) there and gets an index on its job instead: rebuilding
    a table of one row per event ever received could take minutes at start.
    """
    have = {c["name"] for c in inspect(conn).get_columns("rt_jobs")}
    if "rank" not in have:
        for ddl in ("last_heard FLOAT", "rank INTEGER NOT NULL DEFAULT 2", "sort_time FLOAT"):
            conn.execute(text(f"ALTER TABLE rt_jobs ADD COLUMN {ddl}"))
        conn.execute(text(
            "UPDATE rt_jobs SET sort_time = COALESCE(start_time, created), "
            "last_heard = COALESCE(stop_time, start_time, created), "
            "rank = CASE WHEN status = 'running' THEN 0 ELSE 2 END"
        ))
        conn.execute(text(f"UPDATE rt_tests SET position = {UNDECLARED} WHERE position IS NULL"))
        _seed_stats(conn)
    _add_columns(conn)
    seen_key = inspect(conn).get_pk_constraint("rt_seen")["constrained_columns"]
    if seen_key == ["event_id"]:
        conn.execute(text("CREATE INDEX IF NOT EXISTS rt_seen_job ON rt_seen (job_id)"))
    for table in (jobs, tests):
        for index in table.indexes:
            index.create(conn, checkfirst=True)


# Columns added after issue 8, by table: added empty to an older database (its jobs
# have no identity, and no previous job to compare with).
ADDED_COLUMNS = {
    "rt_jobs": tuple(f"{name} TEXT" for name in JOB_IDENTITY) + ("lineage VARCHAR(32)",)
    + ("shards INTEGER",)
    + tuple(f"{name} INTEGER NOT NULL DEFAULT 0" for name in ("runs", "runs_stopped", "reopened")),
    "rt_tests": ("sections TEXT",),
}


def _add_columns(conn: Connection) -> None:
    for table, ddls in ADDED_COLUMNS.items():
        have = {c["name"] for c in inspect(conn).get_columns(table)}
        for ddl in ddls:
            if ddl.split()[0] not in have:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {ddl}"))


def _seed_stats(conn: Connection) -> None:
    """The three newest durations of every test key, from the tests stored."""
    conn.execute(text(
        """
        INSERT INTO rt_test_stats (key, d1, j1, d2, j2, d3, j3, median)
        SELECT key,
               MAX(CASE WHEN rn = 1 THEN d END), MAX(CASE WHEN rn = 1 THEN job_id END),
               MAX(CASE WHEN rn = 2 THEN d END), MAX(CASE WHEN rn = 2 THEN job_id END),
               MAX(CASE WHEN rn = 3 THEN d END), MAX(CASE WHEN rn = 3 THEN job_id END),
               NULL
        FROM (
            SELECT key, job_id, COALESCE(duration, stop_time - start_time) AS d,
                   ROW_NUMBER() OVER (PARTITION BY key ORDER BY stop_time DESC) AS rn
            FROM rt_tests
            WHERE status IN ('passed', 'failed', 'error', 'skipped')
              AND COALESCE(duration, stop_time - start_time) IS NOT NULL
        ) ranked
        WHERE rn <= 3
        GROUP BY key
        """
    ))
    conn.execute(text(f"UPDATE rt_test_stats SET median = {MEDIAN_SQL}"))


# The median of d1, d2, d3 where the newer ones may be the only ones known.
MEDIAN_SQL = (
    "CASE WHEN d2 IS NULL THEN d1 WHEN d3 IS NULL THEN (d1 + d2) / 2 "
    "WHEN (d1 <= d2 AND d2 <= d3) OR (d3 <= d2 AND d2 <= d1) THEN d2 "
    "WHEN (d2 <= d1 AND d1 <= d3) OR (d3 <= d1 AND d1 <= d2) THEN d1 ELSE d3 END"
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while a run writes; NORMAL sync is still
    # crash-safe in WAL mode (a power cut may lose the last commits, never
    # corrupt the file), and it is what makes one commit per POST cheap.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MB of page cache per connection (default 2 MB): the history index and
    # the event ids outgrow 2 MB after some 100,000 tests.
    cursor.execute("PRAGMA cache_size=-65536")
    # Checkpoint (copy the WAL into the file, with an fsync) every ~40 MB instead
    # of every 4 MB: a 500-event batch writes ~100 pages; 10-15% faster batches.
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()
