"""A raw-socket HTTP receiver that answers with whatever bytes a test scripts.

Used by the hostile-receiver tests (tests/test_http11_hostile.py and
tests/delivery/test_hostile_receivers.py). Requests are read with h11 on the
server side, so what the server *saw* is parsed by an independent HTTP/1.1
implementation; answers are sent as raw bytes, so a test can send anything: a
duplicate answer, a body longer than its Content-Length, an endless chunk...

What the server really accepted is decided by h11 too: a request counts as
accepted when the first answer in its scripted bytes is a complete, well-framed
2xx. Tests compare that with what the client acknowledged.

Everything listens on 127.0.0.1 on a free port; `stop()` closes every socket
and joins every thread (the suite runs with ResourceWarning as an error).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import h11

POLL = 0.05  # how often blocked server calls look at the stop flag
H11_LIMIT = 1 << 20  # h11's own head limit is 16 KiB; the client's is 64 KiB


@dataclass
class Request:
    """One request as h11 (server side) parsed it."""

    index: int  # 0-based, across all connections, in arrival order
    connection: int  # 0-based number of the TCP connection it came on
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names, repeated fields joined with ", "
    body: bytes

    def events(self) -> list[dict[str, Any]]:
        """The pytest-rt events in the body (one object, or an array of them)."""
        parsed = json.loads(self.body)
        return parsed if isinstance(parsed, list) else [parsed]


@dataclass
class Reply:
    """What the server does after reading one request.

    `data` goes out in one sendall, unless `split` gives byte offsets at which to
    pause `pause` seconds, or `drip` gives seconds between single bytes. `endless`
    is then sent over and over until the peer goes away or the server stops.
    `close` shuts the connection after sending; `silent` sends nothing and
    keeps the connection open.
    """

    data: bytes = b""
    split: tuple[int, ...] = ()
    pause: float = 0.0
    drip: float | None = None
    endless: bytes | None = None
    close: bool = False


Script = Callable[[Request], Reply | bytes]


def ok(status: int = 200, body: bytes = b"", *headers: str) -> bytes:
    """A well-framed answer with Content-Length."""
    reason = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
              404: "Not Found", 405: "Method Not Allowed", 407: "Proxy Authentication Required",
              503: "Service Unavailable"}.get(status, "Whatever")
    lines = [f"HTTP/1.1 {status} {reason}", *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def first_answer_is_2xx(data: bytes) -> bool:
    """True when `data` starts with a complete, well-framed 2xx answer (h11's view)."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=H11_LIMIT)
    conn.send(h11.Request(method="POST", target="/", headers=[("Host", "t"),
                                                              ("Content-Length", "0")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    status = 0
    try:
        for _ in range(10_000):
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return 200 <= status < 300
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                return False
    except h11.RemoteProtocolError:
        return False
    return False


class HostileServer:
    """Answers each request with the bytes `script(request)` returns; records everything."""

    def __init__(self, script: Script, *, backlog: int = 16) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.accepted: list[Request] = []  # answered with a well-framed 2xx first
        self.sent: dict[int, int] = {}  # bytes sent, per connection number
        self.connections = 0
        self.errors: list[str] = []  # requests h11 could not parse: a client bug
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.listener.settimeout(POLL)
        self.port: int = self.listener.getsockname()[1]
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/loader"

    def accepted_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for r in self.accepted if r.method == "POST" for e in r.events()]

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name="hostile-receiver")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                number = self.connections
                self.connections += 1
                self.sent[number] = 0
                self._socks.append(sock)
            sock.settimeout(POLL)
            self._spawn(self._serve, sock, number)

    def _serve(self, sock: socket.socket, number: int) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                request, buffer = self._read_request(sock, buffer, number)
                if request is None:
                    return
                reply = self.script(request)
                if isinstance(reply, bytes):
                    reply = Reply(reply)
                with self.lock:
                    self.requests.append(request)
                    if first_answer_is_2xx(reply.data):
                        self.accepted.append(request)
                if not self._send(sock, reply, number):
                    return

    def _read_request(self, sock: socket.socket, buffer: bytes,
                      number: int) -> tuple[Request | None, bytes]:
        # A fresh h11 connection per request: the answers go out raw, not through h11,
        # so its state machine can't move on to the next cycle by itself.
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=H11_LIMIT)
        if buffer:  # h11 takes b"" for the end of the connection
            conn.receive_data(buffer)
        head: h11.Request | None = None
        body = bytearray()
        while not self._stop.is_set():
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self.errors.append(str(exc))
                return None, b""
            if event is h11.NEED_DATA:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return None, b""
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or \
                    event is h11.PAUSED:
                if head is None:
                    return None, b""
                with self.lock:
                    index = len(self.requests)
                headers: dict[str, str] = {}
                for name, value in head.headers:
                    key = name.decode("latin-1")
                    text = value.decode("latin-1")
                    headers[key] = f"{headers[key]}, {text}" if key in headers else text
                request = Request(index, number, head.method.decode(), head.target.decode(),
                                  headers, bytes(body))
                return request, bytes(conn.trailing_data[0])
        return None, b""

    def _send(self, sock: socket.socket, reply: Reply, number: int) -> bool:
        """Send a reply; False when the connection is done with."""
        pieces: list[bytes] = []
        if reply.drip is not None:
            pieces = [reply.data[i:i + 1] for i in range(len(reply.data))]
        else:
            cuts = [0, *sorted(c for c in reply.split if 0 < c < len(reply.data)),
                    len(reply.data)]
            pieces = [reply.data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
        pause = reply.drip if reply.drip is not None else reply.pause
        for i, piece in enumerate(pieces):
            if i and pause and self._stop.wait(pause):
                return False
            if piece and not self._sendall(sock, piece, number):
                return False
        if reply.endless is not None:
            while not self._stop.is_set():
                if not self._sendall(sock, reply.endless, number):
                    return False
                if reply.drip is not None and self._stop.wait(reply.drip):
                    return False
            return False
        if reply.close:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
            # Read (and ignore) until the client closes: an RST now could drop the
            # answer from the client's receive buffer before it reads it.
            deadline = time.monotonic() + 5
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    if not sock.recv(65536):
                        break
                except TimeoutError:
                    continue
            return False
        return True

    def _sendall(self, sock: socket.socket, data: bytes, number: int) -> bool:
        """sendall that gives up when the server stops or the peer is gone."""
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = sock.send(view)
            except TimeoutError:
                continue
            except OSError:
                return False
            with self.lock:
                self.sent[number] += n
            view = view[n:]
        return not view

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        with self.lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        for sock in socks:
            sock.close()
        alive = [t for t in self._threads if t.is_alive()]
        assert not alive, "a hostile receiver thread did not stop"

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def hostile(script: Script, **kwargs: Any) -> Iterator[HostileServer]:
    server = HostileServer(script, **kwargs)
    try:
        yield server
    finally:
        server.stop()


class StalledListener:
    """A port where connect() itself stalls: the listen backlog is full and never drained.

    With listen(0) the kernel completes one handshake and queues it; the SYNs of
    later connects are dropped and retried, so connect() waits for its timeout.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port: int = self.listener.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        # The backlog may take one more on some kernels: fill until a connect stalls.
        self.extra: list[socket.socket] = []
        for _ in range(4):
            probe = socket.socket()
            probe.settimeout(0.2)
            try:
                probe.connect(("127.0.0.1", self.port))
            except TimeoutError:
                probe.close()
                break
            self.extra.append(probe)

    def close(self) -> None:
        for sock in [self.filler, *self.extra]:
            sock.close()
        self.listener.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
