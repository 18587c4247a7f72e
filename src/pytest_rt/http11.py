"""A minimal, strict HTTP/1.1 client connection: POST bodies, read their answers.

Why not http.client: the sender shares the GIL with the tests, so every
microsecond of Python it runs per request is taken from the test thread, and
each request hands the GIL back and forth. http.client parses every response
header through the email package: 80 us of CPU per request on our 2-core
machine, against 7 us here. With one event per POST (a receiver that doesn't
batch) that is the difference between a visible and an invisible overhead.

The receiver is a peer we don't trust: an answer acknowledges events, so one
misread answer loses them. The rules, after h11's:

- An answer counts only when it is complete and well framed, and is the
  answer to exactly its request. A byte that arrives when no answer is owed
  (a duplicate answer, a body on a 204, more than Content-Length, anything
  waiting before a request is sent) breaks the connection, and the exchange
  it ends counts for nothing.
- What HTTP/1.1 forbids is refused: conflicting Content-Lengths, non-ASCII
  digits, a status outside 100-599, a Transfer-Encoding other than chunked.
- Everything read is bounded: the head, a chunk-size line, the trailers, the
  body (an answer to an event is small), and the time, per exchange, not per
  read. Connect and TLS handshake can be cut from another thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # ssl costs milliseconds to import: only https runs pay for it
    import ssl

MAX_HEAD = 64 * 1024  # status line and headers; also the trailers of a chunked body
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions
MAX_BODY = 1 << 20  # the whole body of one answer: beyond it the peer is not a receiver
MAX_BODY_KEPT = 800  # the start of an answer, for messages (200 characters of UTF-8)
QUICKACK = getattr(socket, "TCP_QUICKACK", None)
# Kernel timeouts take one GIL hand-off per call where Python's take two; the
# option's layout is a struct timeval on Linux (Windows wants a DWORD of ms).
KERNEL_TIMEOUTS = sys.platform.startswith("linux")
DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0) if KERNEL_TIMEOUTS else 0
SLICE = 0.05  # how often a connect or handshake looks whether it was cut
SLACK = 0.25  # how far one read may run past the exchange's deadline

_BLANK_LINE = re.compile(rb"\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: (?:[ \t]|[^\x00\s])*)?")
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# In a field value, besides the visible: SP and HTAB (not at either end, which is stripped).
# These, then, never: what bytes regexes call whitespace, less those two, and NUL.
_NOT_IN_VALUE = b"\x00\n\r\x0b\x0c"
_DIGITS = re.compile(rb"[0-9]{1,20}")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")


class ProtocolError(OSError):
    """The peer did not answer with valid HTTP/1.1, or said more than was asked."""


class CutError(ConnectionAbortedError):
    """The connection was cut from another thread (the end-of-run deadline)."""


class RefusedTunnel(ProtocolError):
    """The proxy answered CONNECT with something other than 2xx."""

    def __init__(self, status: int, authority: str) -> None:
        super().__init__(f"proxy refused CONNECT to {authority} ({status})")
        self.status = status


class Response(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-cased names; repeated fields joined with ", "
    body: bytes  # at most MAX_BODY_KEPT bytes
    will_close: bool


class _Head(NamedTuple):
    status: int
    headers: dict[str, str]
    closing: bool
    length: int | None  # None: chunked (when `chunked`) or up to the end of the connection
    chunked: bool


class Connection:
    """One TCP (or TLS) connection, reused for requests until either side closes it."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock: socket.socket | None = sock
        self._buffer = bytearray()
        self._timeout: float | None = None
        self._deadline = float("inf")
        self._eof = False
        self._cut = False
        self._tls = False  # an ssl.SSLSocket, which takes no kernel timeouts nor flags
        self.broken = False  # a pipelined exchange failed part-way: don't reuse
        # The last head read and what it parsed to: a receiver answers a run's many
        # requests with the same bytes (Date changes once a second), and parsing is
        # most of the sender's work per event when each event is its own request.
        self._last_head: tuple[bytes, _Head] | None = None

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, host: str, port: int, timeout: float, *,
             tls: ssl.SSLContext | None = None, tls_host: str | None = None,
             tunnel: tuple[str, int] | None = None,
             tunnel_headers: dict[str, str] | None = None) -> Connection:
        conn = cls()
        conn.connect(host, port, time.monotonic() + timeout, tls=tls, tls_host=tls_host,
                     tunnel=tunnel, tunnel_headers=tunnel_headers)
        return conn

    def connect(self, host: str, port: int, deadline: float, *,
                tls: ssl.SSLContext | None = None, tls_host: str | None = None,
                tunnel: tuple[str, int] | None = None,
                tunnel_headers: dict[str, str] | None = None) -> None:
        """Connect (through a CONNECT tunnel, then TLS, when asked) by `deadline`.

        Every wait is cut by `cut()` from another thread, and by the deadline.
        (A DNS lookup is the one wait nothing can cut: the resolver blocks.)
        """
        self._deadline = deadline
        sock = self._tcp_connect(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tunnel is not None:
            self._set_timeout(self._remaining())
            self._connect_tunnel(*tunnel, headers=tunnel_headers or {})
        if tls is not None:
            self._handshake(tls, tls_host or host)
        self._timeout = None  # the next exchange sets the socket's timeouts afresh

    def _tcp_connect(self, host: str, port: int) -> socket.socket:
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0,
                                                                  socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            self.sock = sock  # visible to cut() from here on
            try:
                sock.setblocking(False)
                code = sock.connect_ex(address)
                if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                    raise OSError(code, os.strerror(code))
                if code:
                    self._wait(sock, write=True)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        raise OSError(code, os.strerror(code))
                return sock
            except OSError as exc:  # try the next address (IPv6 first, then IPv4...)
                sock.close()
                if isinstance(exc, CutError):
                    raise
                error = exc
        raise error or OSError(f"no address for {host}")

    def _handshake(self, tls: ssl.SSLContext, server_hostname: str) -> None:
        import ssl

        assert self.sock is not None
        sock = tls.wrap_socket(self.sock, server_hostname=server_hostname,
                               do_handshake_on_connect=False)
        self.sock = sock
        self._tls = True
        sock.setblocking(False)
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                self._wait(sock, write=False)
            except ssl.SSLWantWriteError:
                self._wait(sock, write=True)

    def _wait(self, sock: socket.socket, *, write: bool) -> None:
        """Wait until sock is ready, in slices, so that cut() and the deadline are seen."""
        while True:
            if self._cut:
                raise CutError("delivery cut at the deadline")
            remaining = self._remaining()
            if _ready(sock, write=write, timeout=min(remaining, SLICE)):
                return

    def _remaining(self) -> float:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        return remaining

    def _connect_tunnel(self, host: str, port: int, headers: dict[str, str]) -> None:
        """HTTPS through a proxy: CONNECT, then TLS inside the tunnel."""
        assert self.sock is not None
        authority = f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        head = self._read_head()  # a 2xx to CONNECT has no body: the tunnel follows
        if not 200 <= head.status < 300:
            raise RefusedTunnel(head.status, authority)
        if self._buffer:
            raise ProtocolError("the proxy sent bytes before the tunnel was used")

    # -- exchanges --------------------------------------------------------------------

    def post(self, head: bytes, body: bytes, timeout: float) -> Response:
        """Send a prepared request head (without Content-Length) and body; read the answer."""
        return self.post_many(head, [body], timeout)[0]

    def post_many(self, head: bytes, bodies: list[bytes], timeout: float) -> list[Response]:
        """Pipeline: send every request at once, then read the answers in order.

        One send and a few reads for many requests: far fewer GIL hand-offs than a
        round trip each. Stops at an answer that closes the connection. An error
        after some answers returns those, with `broken` set; before any, it raises.
        Bytes beyond the answers owed void the whole exchange (ProtocolError): which
        of the answers was the extra one can't be known.
        """
        sock = self.sock
        if sock is None or self._cut:
            raise CutError("delivery cut at the deadline")
        self._deadline = time.monotonic() + timeout
        self._set_timeout(timeout)
        self._look()
        if self._buffer or self._eof:
            raise ProtocolError("the receiver sent bytes no request asked for")
        payload = b"".join(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
                           for body in bodies)
        self._send_all(payload)
        answers: list[Response] = []
        for _ in bodies:
            try:
                answers.append(self._read_response())
            except OSError:
                if not answers:
                    raise
                self.broken = True
                return answers
            if answers[-1].will_close:
                return answers
        self._look()
        if self._buffer:  # (the peer closing after its answers is no such thing)
            self.broken = True
            raise ProtocolError("the receiver sent more answers than requests")
        return answers

    def _send_all(self, payload: bytes) -> None:
        """sendall, within the deadline: a peer that reads slowly can't stretch it."""
        sock = self.sock
        assert sock is not None
        view = memoryview(payload)
        try:
            while view:
                view = view[sock.send(view):]
                if view:
                    self._remaining()
        except BlockingIOError:  # SO_SNDTIMEO ran out
            raise TimeoutError("timed out") from None

    def reusable(self) -> bool:
        """Whether a request may go out on this connection: open, and nothing waiting."""
        if self.sock is None or self.broken or self._cut:
            return False
        try:
            self._look()
        except OSError:
            return False
        return not self._buffer and not self._eof

    def _look(self) -> None:
        """Take what the peer has already sent, without waiting: one non-blocking read."""
        sock = self.sock
        assert sock is not None
        if self._buffer or self._eof:
            return
        if self._tls:  # TLS records may carry no data: ask ssl
            self._tls_look(sock)  # type: ignore[arg-type]
        elif DONTWAIT:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                self._take(sock.recv(65536, DONTWAIT))
        elif _ready(sock, write=False, timeout=0):
            self._take(sock.recv(65536))

    def _tls_look(self, sock: ssl.SSLSocket) -> None:
        import ssl

        if not sock.pending() and not _ready(sock, write=False, timeout=0):
            return
        previous, self._timeout = self._timeout, None
        sock.setblocking(False)
        try:
            self._take(sock.recv(65536))
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # a record with no data for us (a session ticket)
        finally:
            if previous is not None:
                self._set_timeout(previous)

    def _read_response(self) -> Response:
        while True:
            head = self._read_head()
            if head.status >= 200:
                break
            if head.status == 101:
                raise ProtocolError("the receiver switched protocols")
            # other 1xx: interim answers, no body; the final one follows
        kept, closed = self._read_body(head)
        return Response(head.status, head.headers, kept, head.closing or closed)

    def _set_timeout(self, timeout: float) -> None:
        """Time out blocking calls, at the least cost to the GIL.

        A Python-level socket timeout polls before every send and recv: two GIL
        hand-offs per call, and each one the test thread pays for. On plain TCP on
        Linux the kernel's SO_SNDTIMEO/SO_RCVTIMEO do the same with one.
        """
        if timeout == self._timeout:
            return
        self._timeout = timeout
        sock = self.sock
        assert sock is not None
        if self._tls or not KERNEL_TIMEOUTS:
            sock.settimeout(timeout)
            return
        sock.settimeout(None)
        timeout = max(timeout, 0.001)  # 0 would mean no timeout at all
        value = struct.pack("ll", int(timeout), int((timeout % 1) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)

    # -- the answer's head ------------------------------------------------------------

    def _read_head(self) -> _Head:
        start = 0
        while not (match := _BLANK_LINE.search(self._buffer, start)):
            if self._buffer[:1] == b"\n" or self._buffer[:2] == b"\r\n":
                raise ProtocolError("not an HTTP/1.x answer: an empty line")
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("response head too large")
            start = max(0, len(self._buffer) - 2)
            self._fill()
        end = match.end()
        if end > MAX_HEAD:
            raise ProtocolError("response head too large")
        raw = bytes(self._buffer[:end])
        del self._buffer[:end]
        last = self._last_head
        if last is not None and last[0] == raw:
            return last[1]  # the same bytes parse the same (headers are never changed)
        head = _parse_head(raw)
        self._last_head = (raw, head)
        return head

    # -- the answer's body ------------------------------------------------------------

    def _read_body(self, head: _Head) -> tuple[bytes, bool]:
        """Read the whole body (so the connection can be reused); keep its start."""
        if head.chunked:
            return self._read_chunked(), False
        if head.length is not None:
            return self._read_length(head.length, bytearray()), False
        kept = bytearray()
        total = 0
        while True:  # no framing: the body ends with the connection
            total += len(self._buffer)
            if total > MAX_BODY:
                raise ProtocolError("answer body too large")
            _keep(kept, self._buffer, len(self._buffer))
            self._buffer.clear()
            if not self._fill(eof_ok=True):
                return bytes(kept), True

    def _read_length(self, n: int, kept: bytearray) -> bytes:
        """Consume exactly n body bytes, keeping the start; never holds more than a read."""
        while n:
            if not self._buffer:
                self._fill()
            piece = min(n, len(self._buffer))
            _keep(kept, self._buffer, piece)
            del self._buffer[:piece]
            n -= piece
        return bytes(kept)

    def _read_chunked(self) -> bytes:
        kept = bytearray()
        total = 0
        while True:
            size = self._chunk_size()
            if size == 0:
                self._read_trailers()
                return bytes(kept)
            total += size
            if total > MAX_BODY:
                raise ProtocolError("answer body too large")
            self._read_length(size, kept)
            while len(self._buffer) < 2:
                self._fill()
            if self._buffer[:2] != b"\r\n":
                raise ProtocolError("bad chunk end")
            del self._buffer[:2]

    def _chunk_size(self) -> int:
        start = 0
        while (end := self._buffer.find(b"\r\n", start)) < 0:
            if len(self._buffer) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk size line too long")
            start = max(0, len(self._buffer) - 1)
            self._fill()
        if end > MAX_CHUNK_LINE:
            raise ProtocolError("chunk size line too long")
        line = _CHUNK_LINE.fullmatch(self._buffer, 0, end)
        if line is None:
            raise ProtocolError("bad chunk size")  # int() would take -1, 0x1a, 1_0
        size = int(line.group(1), 16)
        del self._buffer[:end + 2]
        return size

    def _read_trailers(self) -> None:
        while True:
            if self._buffer[:1] == b"\n":
                del self._buffer[:1]
                return
            if self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
                return
            match = _BLANK_LINE.search(self._buffer)
            if match is not None:
                if match.end() > MAX_HEAD:
                    raise ProtocolError("trailers too large")
                _fields(_lines(self._buffer[:match.end()]))  # validated, then dropped
                del self._buffer[:match.end()]
                return
            if len(self._buffer) > MAX_HEAD:
                raise ProtocolError("trailers too large")
            self._fill()

    # -- reading ----------------------------------------------------------------------

    def _fill(self, eof_ok: bool = False) -> bool:
        """One read into the buffer, within the exchange's deadline."""
        sock = self.sock
        assert sock is not None
        if self._eof:
            if eof_ok:
                return False
            raise ConnectionResetError("connection closed without an answer")
        remaining = self._remaining()
        if self._timeout is not None and remaining < self._timeout - SLACK:
            self._set_timeout(remaining)  # a slow peer: the deadline is near
        if QUICKACK is not None and not self._tls:
            sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        try:
            data = sock.recv(65536)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError("timed out") from None
        self._take(data)
        if self._eof:
            if eof_ok:
                return False
            raise ConnectionResetError("connection closed without an answer")
        return True

    def _take(self, data: bytes) -> None:
        if data:
            self._buffer += data
        else:
            self._eof = True

    def cut(self) -> None:
        """From another thread: end a connect, handshake or read in progress."""
        self._cut = True
        self.shutdown()

    def shutdown(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                # The TCP socket's own shutdown: SSLSocket.shutdown drops its TLS state,
                # and a handshake in progress in another thread would fail with an
                # AttributeError instead of an OSError.
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _ready(sock: socket.socket, *, write: bool, timeout: float) -> bool:
    """Whether sock is readable (or writable) within timeout seconds.

    poll where there is one: select() fails on descriptors above 1023, and a test
    process may well hold that many files. Windows reports a failed connect as an
    exception, not as writable: both end the wait.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLOUT if write else select.POLLIN)
        return bool(poller.poll(max(timeout, 0) * 1000))
    wanted = [sock]
    readable, writable, failed = select.select([] if write else wanted,
                                               wanted if write else [], wanted,
                                               max(timeout, 0))
    return bool(readable or writable or failed)


def _parse_head(raw: bytes) -> _Head:
    """A response head, up to and with its blank line (h11's rules, docs/protocol.md)."""
    lines = _lines(raw)
    status_line = _STATUS_LINE.fullmatch(lines[0])
    if status_line is None:
        shown = lines[0][:60].decode("latin-1")
        raise ProtocolError(f"not an HTTP/1.x answer: {shown!r}")
    status = int(status_line.group(2))
    if not 100 <= status <= 599:
        raise ProtocolError(f"status {status} out of range")
    fields = _fields(lines[1:])
    headers = _join(fields)
    closing = status_line.group(1) == b"0"
    if "connection" in headers:  # a token list: "close, x" closes too
        closing |= "close" in {t.strip().lower() for t in headers["connection"].split(",")}
    length, chunked = _framing(status, fields)
    return _Head(status, headers, closing, length, chunked)


def _lines(head: bytes | bytearray) -> list[bytes]:
    """The lines of a head that ends with a blank line, CRLF or bare LF."""
    lines = bytes(head).split(b"\n")[:-2]  # (bytes() of a bytes is that object)
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _fields(lines: list[bytes]) -> list[tuple[str, str]]:
    """(lower-cased name, value) of each header line; obsolete folding joined, as h11."""
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise ProtocolError("continuation line at start of headers")
            name, value = fields.pop()
            line = f"{name}: {value} ".encode("latin-1") + line.lstrip(b" \t")
        # name ":" OWS value OWS, as h11 reads it; without a backtracking regex, which
        # cost more than the rest of an answer with one event per POST.
        key, colon, raw = line.partition(b":")
        raw = raw.strip(b" \t")
        if (not colon or not _TOKEN.fullmatch(key)
                or len(raw.translate(None, _NOT_IN_VALUE)) != len(raw)):
            raise ProtocolError(f"bad header line {line[:40]!r}")
        fields.append((key.decode("ascii").lower(), raw.decode("latin-1")))
    return fields


def _join(fields: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in fields:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _framing(status: int, fields: list[tuple[str, str]]) -> tuple[int | None, bool]:
    """(Content-Length, chunked) of an answer, refusing what h11 refuses."""
    if status < 200 or status in (204, 304):
        return 0, False
    lengths: set[str] = set()
    encodings: list[str] = []
    for name, value in fields:
        if name == "content-length":
            lengths.update(part.strip() for part in value.split(","))
        elif name == "transfer-encoding":
            encodings.append(value)
    if len(lengths) > 1:
        raise ProtocolError("conflicting Content-Length headers")
    if len(encodings) > 1:
        raise ProtocolError("more than one Transfer-Encoding header")
    if encodings:
        if encodings[0].lower() != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {encodings[0][:40]!r}")
        return None, True  # chunked wins over a Content-Length
    if not lengths:
        return None, False
    length = lengths.pop()
    if not _DIGITS.fullmatch(length.encode("latin-1")):
        raise ProtocolError(f"bad Content-Length {length[:20]!r}")
    if int(length) > MAX_BODY:
        raise ProtocolError(f"answer body too large (Content-Length {length})")
    return int(length), False


def _keep(kept: bytearray, data: bytearray, count: int) -> None:
    """Keep the start of a body for messages: copy no more of data[:count] than fits."""
    room = MAX_BODY_KEPT - len(kept)
    if room > 0:
        kept += data[:min(count, room)]
