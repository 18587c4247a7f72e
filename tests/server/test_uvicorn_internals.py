"""What the receiver takes from uvicorn, checked against h11 and httptools alike.

runner.py uses uvicorn's public API only (``Config``, ``Server.serve(sockets=...)``,
``started``, ``should_exit``). limits._Bounded cannot: uvicorn has no public head
timeout nor connection cap, so it subclasses uvicorn's HTTP protocol classes and reads
their attributes. These tests fail the day uvicorn changes what it relies on, for both
protocols (the receiver's other tests run only the one installed: httptools).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pytest_rt.server.limits import _Bounded, bounded_protocol
from pytest_rt.server.runner import bind_sockets

PROTOCOLS: list[Any] = [H11Protocol]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    PROTOCOLS.append(HttpToolsProtocol)
except ImportError:  # httptools is optional for uvicorn
    pass

HEAD_TIMEOUT = 0.5
GET = b"GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 at once, or after a second on /slow (longer than the head timeout)."""
    if scope["path"] == "/slow":
        await asyncio.sleep(2 * HEAD_TIMEOUT)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def uv_config(
    base: Any, max_connections: int = 100, head_timeout: float = HEAD_TIMEOUT
) -> uvicorn.Config:
    return uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                          http=bounded_protocol(head_timeout, max_connections, base))


@contextmanager
def serving(
    base: Any, max_connections: int = 100, head_timeout: float = HEAD_TIMEOUT
) -> Iterator[int]:
    """A uvicorn with ``base`` made bounded, on a free port; its port."""
    sockets = bind_sockets("127.0.0.1", 0)
    server = uvicorn.Server(uv_config(base, max_connections, head_timeout))
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(15)
        for sock in sockets:
            sock.close()
        assert not thread.is_alive()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def answer(sock: socket.socket) -> bytes:
    """One whole answer of ``app`` (its body is "ok")."""
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        assert chunk, f"closed after {got!r}"
        got += chunk
    return got


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


@pytest.mark.parametrize("base", PROTOCOLS, ids=lambda base: base.__name__)
def test_the_protocol_has_what_bounded_reads(base: Any) -> None:
    from uvicorn.server import ServerState

    config = uv_config(base)
    config.load()
    state = ServerState()
    loop = asyncio.new_event_loop()
    try:
        # As uvicorn's Server.startup makes each connection's protocol.
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=state, app_state={}, _loop=loop)
        assert isinstance(protocol, _Bounded) and isinstance(protocol, base)
        assert protocol.cycle is None  # no request yet
        assert protocol.connections is state.connections
        assert protocol.loop is loop
        assert hasattr(protocol, "transport")
        for method in ("connection_made", "data_received", "connection_lost"):
            assert callable(getattr(base, method))
    finally:
        loop.close()


@pytest.mark.parametrize("base", PROTOCOLS, ids=lambda base: base.__name__)
def test_a_half_sent_head_is_closed_after_the_head_timeout(base: Any) -> None:
    with serving(base) as port, connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127")
        assert closed_within(sock, 5)


@pytest.mark.parametrize("base", PROTOCOLS, ids=lambda base: base.__name__)
def test_a_request_slower_than_the_head_timeout_is_answered_and_the_next_too(
    base: Any,
) -> None:
    # The head deadline ends when uvicorn starts a new cycle for the request: if that
    # were not seen, the slow answer would be cut at the head timeout.
    with serving(base) as port, connect(port) as sock:
        sock.sendall(GET % b"slow")
        assert answer(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(GET % b"")  # kept alive: the next request's head is timed again
        assert answer(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("base", PROTOCOLS, ids=lambda base: base.__name__)
def test_past_the_cap_the_connection_that_waited_longest_is_closed(base: Any) -> None:
    # A head timeout longer than the test: only the cap can close a connection.
    with serving(base, max_connections=2, head_timeout=60) as port, ExitStack() as stack:
        oldest = stack.enter_context(connect(port))
        time.sleep(0.05)
        later = stack.enter_context(connect(port))
        later.sendall(b"GET / HTTP/1.1\r\n")  # half a head: waiting since now
        time.sleep(0.05)
        newest = stack.enter_context(connect(port))
        assert closed_within(oldest, 5)
        newest.sendall(GET % b"")
        assert answer(newest).startswith(b"HTTP/1.1 200")


def test_the_receiver_server_uses_only_public_parts_of_uvicorn_server() -> None:
    # runner.ReceiverServer overrides serve() and reads started and should_exit.
    assert "sockets" in inspect.signature(uvicorn.Server.serve).parameters
    server = uvicorn.Server(uvicorn.Config(app))
    assert server.started is False and server.should_exit is False


def test_port_0_on_localhost_is_one_port_for_every_address() -> None:
    sockets = bind_sockets("localhost", 0)
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
        assert {sock.getsockname()[0] for sock in sockets} <= {"127.0.0.1", "::1"}
    finally:
        for sock in sockets:
            sock.close()
