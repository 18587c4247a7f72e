"""uvicorn, set up for the receiver: quiet, announcing its URL, and quick to stop.

Only uvicorn's public API: a ``Config``, and ``Server.serve(sockets=...)`` on sockets
bound here (so the port is known, and a busy one is reported, before uvicorn runs);
``started`` and ``should_exit`` are read by a task beside it. uvicorn waits for every
open response before its lifespan shutdown, and an ``/api/events`` stream never
ends by itself: that task ends the streams (``hub.close()``) as soon as
``should_exit`` is set (Ctrl-C, SIGTERM, or a caller), so the wait is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
from typing import TextIO

import uvicorn
from fastapi import FastAPI

from .config import ServeConfig, is_loopback
from .limits import bounded_protocol, connection_plan
from .sse import Hub

GRACEFUL_SECONDS = 5
TICK = 0.05  # how often the watch beside uvicorn looks at `started` and `should_exit`
# As asyncio's create_server binds: on Windows SO_REUSEADDR would let another process
# take the port.
REUSE_ADDRESS = os.name == "posix" and sys.platform != "cygwin"


class ReceiverServer(uvicorn.Server):
    """uvicorn on sockets bound beforehand, announcing its URL once it serves and ending
    the live streams as soon as it is asked to stop."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        hub: Hub,
        announce: TextIO | None,
        shown_host: str,
        db_description: str,
    ) -> None:
        super().__init__(config)
        self.sockets = sockets
        self.port: int = sockets[0].getsockname()[1]  # the bound port (useful with port 0)
        self.hub = hub
        self.announce = announce
        self.url = f"http://{shown_host}:{self.port}/"
        self.db_description = db_description

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        watch = asyncio.get_running_loop().create_task(self._watch(), name="rt-serve-watch")
        try:
            await super().serve(sockets if sockets is not None else self.sockets)
        finally:
            watch.cancel()
            for sock in self.sockets:  # uvicorn closes them, unless its startup failed
                sock.close()

    async def _watch(self) -> None:
        announced = False
        try:
            while not self.should_exit:
                if self.started and not announced:
                    announced = True
                    self._announce()
                await asyncio.sleep(TICK)
        finally:  # also when cancelled: no stream may outlive the server
            self.hub.close()

    def _announce(self) -> None:
        if self.announce is None:
            return
        # `pytest-rt serve | head -1`: the reader may be gone; the server goes on.
        with contextlib.suppress(OSError, ValueError):
            print(f"pytest-rt receiver: {self.url} (db: {self.db_description})",
                  file=self.announce, flush=True)


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``host``:``port``, one for each address ``host`` names (as asyncio
    would: ``localhost`` is ``::1`` and ``127.0.0.1``); port 0 picks one free port for all.
    Raises OSError (``EADDRINUSE``: the port is taken)."""
    for attempt in range(5):
        try:
            return _bind_all(host, port)
        except OSError as exc:
            # Port 0: the port picked for the first address may be taken on another one's
            # family; another pick is not "the port is in use".
            if port != 0 or exc.errno != errno.EADDRINUSE or attempt == 4:
                raise
    raise AssertionError("unreachable")


def _bind_all(host: str, port: int) -> list[socket.socket]:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if REUSE_ADDRESS:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def make_server(
    config: ServeConfig, app: FastAPI, announce: TextIO | None = sys.stdout
) -> ReceiverServer:
    """A server for ``app``, bound to ``config.host``/``config.port`` (0 picks a free port).

    Raises OSError when the address cannot be bound.
    """
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
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    return ReceiverServer(uv_config, bind_sockets(config.host, config.port), app.state.hub,
                          announce, shown_host, app.state.store.describe())


def public_without_token(config: ServeConfig) -> bool:
    return not is_loopback(config.host) and not config.token


def any_host_by_default(config: ServeConfig) -> bool:
    """Bound beyond loopback with no ``--allowed-host``: every Host name is answered."""
    return config.allowed_hosts is None and config.host_names() is None
