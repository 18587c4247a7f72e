"""The tables, and the engine that holds them (SQLite with WAL by default).

One row per job, per run (a pytest process, a shard of a job), per test of a
job, and per event id seen (for idempotency). A job's ``status`` is stored so
the jobs list can filter and sort on it; the write path recomputes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
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
)

ID = String(200)
metadata = MetaData()

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
    # No index on env: PostgreSQL refuses index rows over ~2.7 kB, and env is free text.
    Index("rt_jobs_status", "status"),
)

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
    Column("position", Integer),  # order in startTestRun's list
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
    UniqueConstraint("job_id", "key", name="rt_tests_job_key"),
    Index("rt_tests_history", "key", "stop_time"),
    # Covers the per-job counts that every live snapshot takes.
    Index("rt_tests_counts", "job_id", "status", "outcome"),
)

seen = Table(
    "rt_seen",
    metadata,
    Column("event_id", ID, primary_key=True),
    Column("job_id", ID, nullable=False),
    Column("received", Float, nullable=False),
    # One B-tree keyed by the id instead of a rowid table plus an index: event ids
    # are random, so each insert lands on a random page of a growing tree.
    sqlite_with_rowid=False,
)

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
    return engine


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
