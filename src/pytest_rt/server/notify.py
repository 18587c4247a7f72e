"""Live changes across receivers on one PostgreSQL: NOTIFY at commit, LISTEN in each.

Any number of ``pytest-rt serve`` processes may share a PostgreSQL database, and a
dashboard connected to any of them must see every change, whichever took the POST.
So on PostgreSQL no receiver publishes its own writes to its dashboards: each write
sends ``pg_notify`` inside its transaction (delivered only if it commits, and to
every listener in commit order), and every receiver, the writer included, listens
on the database's channel and publishes what it hears.

A notification carries only ids, ``[[kind, job id, test key], ...]``: PostgreSQL
refuses payloads of 8,000 bytes or more, so a large write's changes are sent in
chunks, and each listener reads the snapshots it publishes from the database (one
Job object per job per batch of notifications: under load, notifications that
queue up while a batch is read are merged into the next one; tests only of the jobs
a dashboard follows), and its hub coalesces them per job (sse.py). If the listening
connection drops, notifications are lost: the dashboards are disconnected when it
is back, and their EventSource reconnects and reloads.

SQLite has one receiver process: changes go from the writer to its hub directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text

from .sse import Hub, encode_changes

if TYPE_CHECKING:
    from .store import Store

Change = tuple[str, str, str | None]
CHANNEL_PREFIX = "pytest_rt_"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses 8,000 or more
POLL_SECONDS = 0.25  # how often the listening thread looks whether it should stop
RECONNECT_SECONDS = 1.0
_STOP = object()
_RESYNC = object()  # the listening connection was lost: some notifications may be too
log = logging.getLogger("pytest_rt.server")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def channel_for(engine: Engine) -> str:
    """The channel of the database's schema: two schemas of one database (tests, two
    installations) are two sets of receivers, and must not hear each other."""
    with engine.connect() as conn:
        schema_name = str(conn.scalar(text("SELECT current_schema()")))
    name = CHANNEL_PREFIX + schema_name
    if len(name.encode("utf-8")) > 63:  # longer identifiers are cut by PostgreSQL
        name = CHANNEL_PREFIX + hashlib.sha256(schema_name.encode("utf-8")).hexdigest()[:32]
    return name


def payloads(changes: Sequence[Change]) -> list[str]:
    """``changes`` as JSON arrays of at most MAX_PAYLOAD bytes each, in order.

    One change is at most ~7,300 bytes (a job id of 200 characters, a test key of
    1,000 bytes; ingest.nodeid_key), even with every character escaped.
    """
    chunks: list[str] = []
    items: list[str] = []
    size = 2
    for change in changes:
        item = json.dumps(change, ensure_ascii=False, separators=(",", ":"))
        n = len(item.encode("utf-8")) + 1
        if items and size + n > MAX_PAYLOAD:
            chunks.append("[" + ",".join(items) + "]")
            items, size = [], 2
        items.append(item)
        size += n
    if items:
        chunks.append("[" + ",".join(items) + "]")
    return chunks


def send(conn: Connection, channel: str, changes: Sequence[Change]) -> None:
    """Queue ``changes`` for every listener; sent when ``conn``'s transaction commits."""
    for payload in payloads(changes):
        conn.execute(_NOTIFY, {"channel": channel, "payload": payload})


def messages_for(store: Store, changes: Sequence[Change]) -> list[dict[str, Any]]:
    """The ``/api/events`` messages for ``changes`` (deleted jobs carry no snapshot)."""
    others = [c for c in changes if c[0] != "job_deleted"]
    messages = store.change_messages(others) if others else []
    messages += [
        {"kind": kind, "job_id": job_id, "nodeid": None, "job": None, "test": None}
        for kind, job_id, _ in changes
        if kind == "job_deleted"
    ]
    return messages


class Listener:
    """Hears every receiver's changes on the store's database and publishes them to ``hub``.

    Two threads: one holds the LISTEN connection and queues payloads as they arrive;
    the other reads the snapshots (blocking database reads, off the event loop) and
    hands them to the hub on the loop, in the order the notifications came.
    """

    def __init__(self, store: Store, hub: Hub, channel: str) -> None:
        self.store = store
        self.hub = hub
        self.channel = channel
        self.listening = threading.Event()  # set once LISTEN is in force
        self._stopping = threading.Event()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._threads = [
            threading.Thread(target=self._listen, name="pytest-rt-listen", daemon=True),
            threading.Thread(target=self._process, name="pytest-rt-fanout", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads (at most ~POLL_SECONDS for the listening one)."""
        self._stopping.set()
        self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _listen(self) -> None:
        import psycopg
        from psycopg import sql

        # The engine's own connection arguments (host, database, options...).
        args, kwargs = self.store.engine.dialect.create_connect_args(self.store.engine.url)
        lost = False
        while not self._stopping.is_set():
            try:
                with psycopg.connect(*args, **kwargs, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    if lost:
                        self._queue.put(_RESYNC)
                    self.listening.set()
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=POLL_SECONDS):
                            self._queue.put(note.payload)
            except Exception:  # noqa: BLE001  (the database went away: listen again)
                if not self._stopping.is_set():
                    log.warning("pytest-rt: lost the LISTEN connection; reconnecting",
                                exc_info=True)
                lost = True
                self.listening.clear()
                self._stopping.wait(RECONNECT_SECONDS)

    def _process(self) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            batch = [self._queue.get()]
            while True:  # what queued up meanwhile goes out as one batch
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                return
            if _RESYNC in batch:
                loop.call_soon_threadsafe(self.hub.reset)
            changes: list[Change] = []
            for payload in batch:
                if isinstance(payload, str):
                    changes.extend(tuple(item) for item in json.loads(payload))
            changes = self.hub.relevant(changes)  # no test rows for the jobs list alone
            if not changes:
                continue
            try:
                encoded = encode_changes(messages_for(self.store, changes))
            except Exception:  # noqa: BLE001
                # Committed already; a row the encoder cannot take (stored before the
                # ingest limits) costs the dashboards this update, not the listener.
                log.exception("pytest-rt: live update skipped")
                continue
            try:
                loop.call_soon_threadsafe(self.hub.publish, encoded)
            except RuntimeError:  # the loop is closed: the server is gone
                return
