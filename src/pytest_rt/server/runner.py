"""uvicorn, set up for the receiver: quiet, announcing its URL, and quick to stop."""

from __future__ import annotations

import socket
import sys
from typing import TextIO

import uvicorn
from fastapi import FastAPI

from .config import ServeConfig, is_loopback
from .limits import bounded_protocol, connection_plan
from .sse import Hub

GRACEFUL_SECONDS = 5


class ReceiverServer(uvicorn.Server):
    """A uvicorn server that ends the live streams before it waits for connections.

    uvicorn's shutdown waits for every open response to finish, and an
    ``/api/events`` stream never finishes by itself: closing the hub first is
    what lets Ctrl-C (or ``should_exit``) stop a server a dashboard is watching.
    """

    def __init__(self, config: uvicorn.Config, hub: Hub, announce: TextIO | None) -> None:
        super().__init__(config)
        self.hub = hub
        self.announce = announce
        self.db_description = ""

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        sock: socket.socket = self.servers[0].sockets[0]
        return int(sock.getsockname()[1])

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.announce is not None:
            host = self.config.host
            shown = f"[{host}]" if ":" in host else host
            print(
                f"pytest-rt receiver: http://{shown}:{self.port}/ (db: {self.db_description})",
                file=self.announce,
                flush=True,
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.close()
        await super().shutdown(sockets)


def make_server(
    config: ServeConfig, app: FastAPI, announce: TextIO | None = sys.stdout
) -> ReceiverServer:
    """A server for ``app`` on ``config.host``/``config.port`` (0 picks a free port)."""
    max_connections, backlog = connection_plan(config.max_connections)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        http=bounded_protocol(config.head_timeout, max_connections),
        backlog=backlog,
        root_path=config.root_path,
    )
    server = ReceiverServer(uv_config, app.state.hub, announce)
    server.db_description = app.state.store.describe()
    return server


def public_without_token(config: ServeConfig) -> bool:
    return not is_loopback(config.host) and not config.token


def any_host_by_default(config: ServeConfig) -> bool:
    """Bound beyond loopback with no ``--allowed-host``: every Host name is answered."""
    return config.allowed_hosts is None and config.host_names() is None
