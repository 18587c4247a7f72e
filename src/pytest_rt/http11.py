"""A minimal HTTP/1.1 client connection: POST a body, read one response.

Why not http.client: the sender shares the GIL with the tests, so every
microsecond of Python it runs per request is taken from the test thread, and
each request hands the GIL back and forth. http.client parses every response
header through the email package: 80 us of CPU per request on our 2-core
machine, against 7 us here. With one event per POST (a receiver that doesn't
batch) that is the difference between a visible and an invisible overhead.

It speaks only what a receiver answers: a status line, headers, and a body
framed by Content-Length, chunked encoding, or the end of the connection.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
QUICKACK = getattr(socket, "TCP_QUICKACK", None)
MAX_BODY_KEPT = 800  # the start of an answer, for messages (200 characters of UTF-8)


class ProtocolError(OSError):
    """The peer did not answer with valid HTTP/1.1."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes  # at most MAX_BODY_KEPT bytes
    will_close: bool


class Connection:
    """One TCP (or TLS) connection, reused for requests until either side closes it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._timeout: float | None = None
        self.broken = False  # a pipelined exchange failed part-way: don't reuse

    @classmethod
    def open(cls, host: str, port: int, timeout: float, *,
             tls: ssl.SSLContext | None = None, tls_host: str | None = None,
             tunnel: tuple[str, int] | None = None,
             tunnel_headers: dict[str, str] | None = None) -> Connection:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = cls(sock)
            if tunnel is not None:
                conn._connect_tunnel(*tunnel, headers=tunnel_headers or {})
            if tls is not None:
                conn.sock = tls.wrap_socket(sock, server_hostname=tls_host or host)
            return conn
        except BaseException:
            sock.close()
            raise

    def _connect_tunnel(self, host: str, port: int, headers: dict[str, str]) -> None:
        """HTTPS through a proxy: CONNECT, then TLS inside the tunnel."""
        authority = f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        status, _, _ = self._read_head()  # a 2xx to CONNECT has no body: the tunnel follows
        if status != 200:
            raise ProtocolError(f"proxy refused CONNECT to {authority} ({status})")

    def post(self, head: bytes, body: bytes, timeout: float) -> Response:
        """Send a prepared request head (without Content-Length) and body; read the answer."""
        return self.post_many(head, [body], timeout)[0]

    def post_many(self, head: bytes, bodies: list[bytes], timeout: float) -> list[Response]:
        """Pipeline: send every request at once, then read the answers in order.

        One send and a few reads for many requests: far fewer GIL hand-offs than a
        round trip each. Stops at an answer that closes the connection. An error
        after some answers returns those, with `broken` set; before any, it raises.
        """
        self._set_timeout(timeout)
        payload = b"".join(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
                           for body in bodies)
        try:
            self.sock.sendall(payload)
        except BlockingIOError:  # SO_SNDTIMEO ran out
            raise TimeoutError("timed out") from None
        answers: list[Response] = []
        for _ in bodies:
            try:
                answers.append(self._read_response())
            except (OSError, ValueError):
                if not answers:
                    raise
                self.broken = True
                break
            if answers[-1].will_close:
                break
        return answers

    def _read_response(self) -> Response:
        while True:
            status, headers, closing = self._read_head()
            if status >= 200:
                break  # skip 1xx interim answers
        kept, closed = self._read_body(status, headers)
        return Response(status, headers, kept, closing or closed)

    def _set_timeout(self, timeout: float) -> None:
        """Time out blocking calls, at the least cost to the GIL.

        A Python-level socket timeout polls before every send and recv: two GIL
        hand-offs per call, and each one the test thread pays for. On plain TCP the
        kernel's SO_SNDTIMEO/SO_RCVTIMEO do the same with one (TLS keeps Python's).
        """
        if timeout == self._timeout:
            return
        self._timeout = timeout
        if isinstance(self.sock, ssl.SSLSocket):
            self.sock.settimeout(timeout)
            return
        self.sock.settimeout(None)
        value = struct.pack("ll", int(timeout), int((timeout % 1) * 1_000_000))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)

    def _read_head(self) -> tuple[int, dict[str, str], bool]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("response head too large")
            self._fill()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4:]
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        closing = parts[0] == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
        return int(parts[1]), headers, closing

    def _read_body(self, status: int, headers: dict[str, str]) -> tuple[bytes, bool]:
        """Read the whole body (so the connection can be reused); keep its start."""
        if status in (204, 304):
            return b"", False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(), False
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length[:20]!r}")
            return self._read_exactly(int(length))[:MAX_BODY_KEPT], False
        kept = b""
        while True:  # no framing: the body ends with the connection
            kept = (kept + self._buffer)[:MAX_BODY_KEPT]
            self._buffer = b""
            if not self._fill(eof_ok=True):
                return kept, True

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_chunked(self) -> bytes:
        kept = b""
        while True:
            while (end := self._buffer.find(b"\r\n")) < 0:
                self._fill()
            size_text = self._buffer[:end].split(b";", 1)[0].strip()
            self._buffer = self._buffer[end + 2:]
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise ProtocolError("bad chunk size")  # int() would take -1, 0x1a, 1_0
            size = int(size_text, 16)
            if size == 0:
                while (end := self._buffer.find(b"\r\n")) != 0:  # trailers, then blank line
                    if end > 0:
                        self._buffer = self._buffer[end + 2:]
                    else:
                        self._fill()
                self._buffer = self._buffer[2:]
                return kept
            kept = (kept + self._read_exactly(size))[:MAX_BODY_KEPT]
            self._read_exactly(2)

    def _fill(self, eof_ok: bool = False) -> bool:
        if QUICKACK is not None and not isinstance(self.sock, ssl.SSLSocket):
            self.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError("timed out") from None
        if not data:
            if eof_ok:
                return False
            raise ConnectionResetError("connection closed without an answer")
        self._buffer += data
        return True

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()
