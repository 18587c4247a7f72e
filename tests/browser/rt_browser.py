"""What the browser tests share besides fixtures: Chromium's place and flags, a live
server's address, and a run streamed event by event.

A module of its own, not conftest.py: with tests/server in the same session,
``from conftest import ...`` may find tests/server's conftest instead.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx may be missing: the conftest then skips the tests, saying why
    import httpx

from pytest_rt.protocol import STATUS_OF

CHROMIUM = Path(os.environ.get("PYTEST_RT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveServer:
    url: str
    port: int
    client: httpx.Client


# The plugin's own mapping of pytest's outcomes to the seed's status words.
STATUS_OF_OUTCOME = STATUS_OF


@dataclass
class RunStream:
    """One pytest process streaming a job, event by event, like the plugin."""

    client: httpx.Client
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    custom_id: str | None = None
    clock: float = field(default_factory=time.time)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0
    total: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    collect_errors: list[dict[str, str]] = field(default_factory=list)
    held: list[dict[str, Any]] | None = None

    def post(self, kind: str, **fields: Any) -> None:
        self.seq += 1
        event = {
            "fw": "2",
            "type": kind,
            "job_id": self.job_id,
            "custom_id": self.custom_id,
            "event_id": uuid.uuid4().hex,
            "run_id": self.run_id,
            "seq": self.seq,
            **fields,
        }
        if self.held is not None:
            self.held.append(event)
            return
        response = self.client.post("/loader", json=event)
        assert response.is_success, (response.status_code, response.text)

    @contextmanager
    def in_one_batch(self) -> Iterator[None]:
        """Hold the events back and POST them as one JSON array (the plugin's batching)."""
        self.held = []
        try:
            yield
            response = self.client.post("/loader", json=self.held)
            assert response.is_success, (response.status_code, response.text)
        finally:
            self.held = None

    def start(
        self,
        nodeids: list[str],
        env: str | None = None,
        custom_data: dict[str, Any] | None = None,
        workers: int = 0,
        descriptions: dict[str, str] | None = None,
        collect_errors: list[dict[str, str]] | None = None,
        project: str | None = None,
        ci: dict[str, Any] | None = None,
    ) -> RunStream:
        self.total = len(nodeids)
        self.collect_errors = collect_errors or []
        descriptions = descriptions or {}
        tests: list[dict[str, Any]] = [
            {
                "location": nodeid.split("::", 1)[-1],
                "nodeid": nodeid,
                "uuid": uuid.uuid4().hex,
                "description": descriptions.get(nodeid),
                "file": nodeid.split("::", 1)[0],
                "markers": [],
            }
            for nodeid in nodeids
        ]
        self.post(
            "startTestRun",
            tests=tests,
            env=env,
            startTime=round(self.clock, 6),
            custom_data=custom_data,
            collect_errors=self.collect_errors,
            xdist=workers > 0,
            workers=workers,
            rootdir="shop",
            project=project,
            ci=ci,
            pytest_version="9.0",
            plugin_version="0.1.0",
        )
        return self

    def begin(self, nodeid: str, worker: str | None = None) -> None:
        self.post(
            "startTestItem", test=nodeid, startTime=f"{self.clock:.6f}", uuid="", worker=worker
        )

    def finish(
        self,
        nodeid: str,
        outcome: str = "passed",
        duration: float = 0.05,
        msg: str = "",
        worker: str | None = None,
        rerun_msgs: tuple[str, ...] = (),
        sections: list[dict[str, str]] | None = None,
    ) -> None:
        self.clock += duration
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.post(
            "stopTestItem",
            test=nodeid,
            status=STATUS_OF_OUTCOME[outcome],
            msg=msg,
            stopTime=f"{self.clock:.6f}",
            uuid="",
            outcome=outcome,
            when="call",
            duration=duration,
            worker=worker,
            reruns=len(rerun_msgs),
            rerun_msgs=list(rerun_msgs),
            sections=sections or [],
        )

    def run(
        self, nodeid: str, outcome: str = "passed", duration: float = 0.05, **kwargs: Any
    ) -> None:
        self.begin(nodeid, worker=kwargs.get("worker"))
        self.finish(nodeid, outcome, duration, **kwargs)

    def stop(self, exitstatus: int | None = None, interrupted: bool = False) -> None:
        failed = self.outcomes.get("failed", 0) + self.outcomes.get("error", 0)
        done = sum(self.outcomes.values())
        counts = {k: self.outcomes.get(k, 0) for k in STATUS_OF_OUTCOME}
        counts.update(interrupted=0, not_started=self.total - done)
        self.post(
            "stopTestRun",
            stopTime=f"{self.clock:.6f}",
            send_report="0",
            exitstatus=(1 if failed else 0) if exitstatus is None else exitstatus,
            interrupted=interrupted,
            counts=counts,
            total=self.total,
            duration=0.0,
            collect_errors=self.collect_errors,
        )


@contextmanager
def serve(db: Path, port: int = 0, **settings: Any) -> Iterator[LiveServer]:
    """Run the app as ``pytest-rt serve`` does, in a thread, on 127.0.0.1 and a free
    port (or ``port``: the port of a server stopped a moment ago, to restart it);
    ``settings``: more ServeConfig fields (e.g. stale_after)."""
    import httpx

    from pytest_rt.server.app import create_app
    from pytest_rt.server.config import ServeConfig
    from pytest_rt.server.runner import make_server

    config = ServeConfig(host="127.0.0.1", port=port, db_url=f"sqlite:///{db}", **settings)
    app = create_app(config)
    server = make_server(config, app, announce=None)
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            yield LiveServer(url, server.port, client)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.store.close()  # idempotent; closes it too when the start failed
        assert not thread.is_alive(), "the server did not stop"
