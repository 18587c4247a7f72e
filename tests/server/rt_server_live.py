"""A real uvicorn serving the receiver, started on a thread for a test."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

from pytest_rt.server.app import create_app
from pytest_rt.server.config import ServeConfig
from pytest_rt.server.runner import ReceiverServer, make_server


@dataclass
class LiveServer:
    """A real uvicorn serving the receiver on 127.0.0.1 and a free port."""

    server: ReceiverServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def stop(self, timeout: float = 15.0) -> float:
        """Stop it; the seconds that took."""
        begin = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the server did not stop"
        return time.monotonic() - begin


def start_server(config: ServeConfig, db_url: str) -> LiveServer:
    """Start a server that owns its store (as ``pytest-rt serve`` does)."""
    app = create_app(replace(config, db_url=db_url, port=0))
    server = make_server(replace(config, port=0), app, announce=None)
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            app.state.store.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    return LiveServer(server, thread)
