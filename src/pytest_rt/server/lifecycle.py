"""A job's life after its events: abandoned when silent, deleted when old or asked.

A background task of the app sweeps every few seconds:

- running jobs not heard of for ``--stale-after`` seconds become ``abandoned``
  (a runner killed by CI, a laptop closed, a ``stopTestRun`` lost); any late
  event of theirs makes them ``running`` again (the writer recomputes them);
- with ``--retain-days``, finished and abandoned jobs that ended longer ago
  are deleted, once an hour;
- deletions begun and not finished (a restart in the middle) are finished.

``DELETE /api/jobs/{id}`` deletes one job. Every write runs on the store's
writer thread in short transactions (at most ``SWEEP_JOBS`` jobs or
``PURGE_ROWS`` rows each), so ingest never waits long behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .config import ServeConfig
from .ingest import IngestError, clean_text
from .sse import Hub, encode_changes
from .store import SWEEP_JOBS, Store

RETENTION_EVERY = 3600.0  # seconds between two retention passes
log = logging.getLogger("pytest_rt.server")
R = TypeVar("R")


def sweep_interval(stale_after: float) -> float:
    """How often to look for silent jobs: a tenth of the wait, between 50 ms and 30 s."""
    return min(30.0, max(0.05, stale_after / 10))


class Lifecycle:
    def __init__(self, store: Store, hub: Hub, config: ServeConfig) -> None:
        self.store = store
        self.hub = hub
        self.stale_after = config.stale_after
        self.retain_days = config.retain_days
        self.interval = sweep_interval(self.stale_after)
        self.token_set = config.token is not None
        self._task: asyncio.Task[None] | None = None
        self._next_retention = 0.0

    # -- the background task ------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rt-lifecycle")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: try again at the next sweep
                log.exception("pytest-rt serve: the lifecycle sweep failed")
            await asyncio.sleep(self.interval)

    async def sweep(self, now: float | None = None) -> None:
        """One pass: abandon silent jobs, finish deletions, apply retention when due."""
        now = time.time() if now is None else now
        while True:
            silent = await self._write(self.store.abandon_stale, now, self.stale_after)
            await self._publish([("job_finished", job_id, None) for job_id in silent])
            if len(silent) < SWEEP_JOBS:
                break
        doomed = await self._write(self.store.deleting_jobs)
        if self.retain_days is not None and now >= self._next_retention:
            self._next_retention = now + RETENTION_EVERY
            while True:
                old = await self._write(self.store.expired_jobs, now - self.retain_days * 86400)
                fresh = [job_id for job_id in old if job_id not in doomed]
                if not fresh:
                    break
                await self._delete(fresh)
        for job_id in doomed:
            await self._purge(job_id)

    # -- deleting -------------------------------------------------------------------

    async def delete(self, job_id: str) -> bool:
        """Delete one job, its tests and its event ids; False when there is no such job."""
        return bool(await self._delete([job_id]))

    async def _delete(self, job_ids: list[str]) -> list[str]:
        found = await self._write(self.store.mark_deleting, job_ids)
        # Gone from every read from here on; the dashboards drop it now.
        await self._publish([("job_deleted", job_id, None) for job_id in found])
        for job_id in found:
            await self._purge(job_id)
        return found

    async def _purge(self, job_id: str) -> None:
        while not await self._write(self.store.purge_step, job_id):
            pass

    # -- helpers ----------------------------------------------------------------------

    async def _write(self, fn: Callable[..., R], *args: Any) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.store.writer, fn, *args)

    async def _publish(self, changes: list[tuple[str, str, str | None]]) -> None:
        if self.store.shared:
            return  # the store notified every receiver (notify.py)
        if not changes or not self.hub.wants(job_id for _, job_id, _ in changes):
            return
        deleted = [c for c in changes if c[0] == "job_deleted"]
        messages = [
            {"kind": kind, "job_id": job_id, "nodeid": None, "job": None, "test": None}
            for kind, job_id, _ in deleted
        ]
        others = [c for c in changes if c[0] != "job_deleted"]
        if others:
            messages += await run_in_threadpool(self.store.change_messages, others)
        self.hub.publish(encode_changes(messages))

    # -- routes -----------------------------------------------------------------------

    def add_routes(self, app: FastAPI) -> None:
        @app.delete(
            "/api/jobs/{job_id:path}",
            summary="Delete a job with its tests and event ids (token required when set)",
            responses={401: {"description": "Missing or wrong token (when the server has one)"},
                       404: {"description": "No such job"}},
        )
        async def delete_job(job_id: str, request: Request) -> Response:
            # The token of POST /loader, checked the same way: deleting is writing.
            check: Callable[[str], None] | None = getattr(request.app.state, "check_token", None)
            try:
                if check is not None:
                    check(request.headers.get("authorization", ""))
                elif self.token_set:  # never open because the check went missing
                    raise IngestError(401, "missing or wrong token")
            except IngestError as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status,
                                    headers={"WWW-Authenticate": "Bearer"})
            job_id = clean_text(job_id)
            if not await self.delete(job_id):
                return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
            return JSONResponse({"deleted": job_id})
