"""One kept-alive HTTP connection to the receiver: headers, auth, proxy, TLS, errors.

Why not requests or urllib3, nor even http.client: this code runs inside the
user's test process, so its CPU is the tests' CPU. Measured per request on
loopback with keep-alive: requests 1.1-1.5 ms, urllib3 0.45-0.58 ms,
http.client 0.23-0.34 ms on a dev machine; on our 2-core CI machine
http.client takes 80 us of CPU and the minimal client in http11.py 16 us. It
also keeps the plugin's dependencies at pytest alone.
"""

from __future__ import annotations

import base64
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from pytest_rt import __version__
from pytest_rt.http11 import Connection, RefusedTunnel, Response
from pytest_rt.protocol import BATCH_HEADER, DASHBOARD_HEADER, HEARTBEAT_HEADER

if TYPE_CHECKING:  # imported when needed: ssl for https, urllib.request for proxies
    import ssl

_STALE = ("connection closed without an answer", "connection reset", "BrokenPipeError")
USER_AGENT = f"pytest-rt/{__version__}"


class Answer(NamedTuple):
    """What the sender needs of one answer (a NamedTuple: built once per event when
    the receiver takes one event per POST, and a frozen dataclass costs a setattr
    per field)."""

    status: int
    batch_ok: bool
    retry_after: float | None
    text: str  # the first 200 characters of the body, for messages
    location: str | None = None  # where a redirect points
    will_close: bool = False  # the server closes the connection after this answer
    heartbeat: float | None = None  # X-Pytest-RT-Heartbeat: seconds, the receiver takes them
    dashboard: str | None = None  # X-Pytest-RT-Dashboard: where its dashboard is, ending in /


class TransportError(Exception):
    """The request got no HTTP answer: refused, reset, timed out, bad TLS..."""

    def __init__(self, message: str, *, persistent: bool = False,
                 refused: int | None = None) -> None:
        super().__init__(message)
        # Refused, no such host, untrusted certificate: not worth waiting out at the end.
        self.persistent = persistent
        # A proxy's 4xx to CONNECT (407: its credentials): no point trying again.
        self.refused = refused


@dataclass(repr=False, eq=False)  # fewer generated methods to exec at import
class HttpTarget:
    url: str
    timeout: float = 5.0
    token: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ca_bundle: str | None = None
    insecure: bool = False

    def recorded(self) -> dict[str, Any]:
        """What a journal keeps of this target, so replay reaches what the run reached.

        Never a secret: no token, and of the extra headers only their names.
        """
        return {"timeout": self.timeout, "ca_bundle": self.ca_bundle,
                "insecure": self.insecure, "header_names": [name for name, _ in self.headers]}


class Transport:
    """POSTs bodies to one URL over one connection, reconnecting when needed."""

    def __init__(self, target: HttpTarget) -> None:
        self.target = target
        parts = urlsplit(target.url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = parts.netloc.rpartition("@")[2]
        # What a plain-HTTP proxy is asked for: the absolute URL, without credentials.
        self.absolute = urlunsplit((parts.scheme, netloc, self.path, "", ""))
        self.proxy_error: str | None = None
        try:
            self.proxy, proxy_auth = _proxy_for(target.url, parts.scheme)
        except ValueError:  # e.g. HTTP_PROXY=http://proxy:abc; the run must go on
            self.proxy, proxy_auth = None, None
            self.proxy_error = f"the {parts.scheme.upper()}_PROXY setting is not a valid URL"
        self._aborted = False
        self.headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        for name, value in target.headers:
            self.headers[name] = value
        if target.token:
            # A token read from a file or a secret often ends in a newline.
            self.headers["Authorization"] = f"Bearer {target.token.strip()}"
        elif parts.username is not None:  # http://user:password@host/, as requests does
            self.headers["Authorization"] = _basic(parts.username, parts.password)
        self.tunnel_headers: dict[str, str] = {}
        if proxy_auth:
            if self.https:
                self.tunnel_headers["Proxy-Authorization"] = proxy_auth
            else:
                self.headers["Proxy-Authorization"] = proxy_auth
        # http.client quotes a bad header value in its error: never let one be printed.
        secrets = {v for k, v in {**self.headers, **self.tunnel_headers}.items()
                   if k not in ("Content-Type", "User-Agent")}
        secrets |= {parts.password or "", target.token or "", (target.token or "").strip()}
        self._secrets = sorted(secrets - {""}, key=len, reverse=True)
        self._head = self._request_head(netloc)
        self._conn: Connection | None = None

    def _request_head(self, netloc: str) -> bytes | None:
        """The request line and headers, built once; None if a value would break them."""
        lines = [f"POST {self._request_path()} HTTP/1.1", f"Host: {netloc}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if any(c in line for line in lines for c in "\r\n\0"):
            return None
        return ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace")

    def post(self, body: bytes, timeout: float | None = None) -> Answer:
        """POST body; raise TransportError when no HTTP answer came back."""
        return self.post_many([body], timeout)[0]

    def post_many(self, bodies: list[bytes], timeout: float | None = None) -> list[Answer]:
        """POST each body, pipelined on one connection; the answers that came back, in order.

        Raises TransportError when not even the first answer came back.
        """
        timeout = self.target.timeout if timeout is None else max(timeout, 0.05)
        if self._aborted or self.proxy_error:
            raise TransportError(self.proxy_error or "delivery cut at the deadline",
                                 persistent=True)
        if self._conn is not None:
            # A kept-alive connection the server has since closed fails at once:
            # try again on a fresh one (events are idempotent by event_id).
            try:
                return self._post(bodies, timeout)
            except TransportError as exc:
                if exc.args[0] not in _STALE or self._aborted:
                    raise
        return self._post(bodies, timeout)

    def _post(self, bodies: list[bytes], timeout: float) -> list[Answer]:
        if self._head is None:
            raise TransportError("a header value contains a line break", persistent=True)
        # One deadline for the whole request: connect, TLS, tunnel, send and answers.
        deadline = time.monotonic() + timeout
        try:
            conn = self._connection(deadline)
            responses = conn.post_many(self._head, bodies, max(deadline - time.monotonic(), 0.001))
        except (OSError, ValueError) as exc:
            self.close()
            refused = exc.status if isinstance(exc, RefusedTunnel) and exc.status < 500 else None
            persistent = refused is not None or _untrusted(exc) or isinstance(
                exc, ConnectionRefusedError | socket.gaierror | ValueError)
            raise TransportError(self._scrub(_describe(exc)), persistent=persistent,
                                 refused=refused) from None
        if conn.broken or responses[-1].will_close:
            self.close()
        return [_answer(response) for response in responses]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***").replace(repr(secret.encode())[2:-1], "***")
        return text

    def _request_path(self) -> str:
        if self.proxy and not self.https:
            return self.absolute
        return self.path

    def _connection(self, deadline: float) -> Connection:
        if self._conn is not None and not self._conn.reusable():
            # The server closed it, or sent what no request asked for: a new one.
            self.close()
        if self._conn is None:
            host, port = (self.proxy if self.proxy else (self.host, self.port))
            tunnel = (self.host, self.port) if self.https and self.proxy else None
            # Held before connecting, so that abort() can cut the connect itself.
            conn = self._conn = Connection()
            if self._aborted:  # abort() came between the check and here
                conn.cut()
            conn.connect(host, port, deadline, tls=self._tls_context() if self.https else None,
                         tls_host=self.host, tunnel=tunnel, tunnel_headers=self.tunnel_headers)
        return self._conn

    def _tls_context(self) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context(cafile=self.target.ca_bundle)
        if self.target.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def abort(self) -> None:
        """Unblock a request in progress from another thread (end-of-run deadline).

        No request starts after this, not even the retry of a connection it reset.
        """
        self._aborted = True
        conn = self._conn
        if conn is not None:
            conn.cut()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _answer(response: Response) -> Answer:
    headers = response.headers
    return Answer(
        status=response.status,
        batch_ok=headers.get(BATCH_HEADER.lower(), "").strip() == "1",
        retry_after=_retry_after(headers.get("retry-after")),
        # 200 characters, not bytes: up to 4 bytes each, and never half of one.
        text=response.body.decode("utf-8", "replace")[:200],
        location=headers.get("location"),
        will_close=response.will_close,
        heartbeat=_retry_after(headers.get(HEARTBEAT_HEADER.lower())),
        dashboard=_dashboard(headers.get(DASHBOARD_HEADER.lower())),
    )


def _proxy_for(url: str, scheme: str) -> tuple[tuple[str, int] | None, str | None]:
    """Honour HTTP(S)_PROXY and NO_PROXY, as urllib does: (host, port), Proxy-Authorization."""
    if sys.platform not in ("darwin", "win32") and not any(
            name.lower().endswith("_proxy") for name in os.environ):
        return None, None  # what getproxies() would find, without importing urllib.request
    import urllib.request

    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme)
    host = urlsplit(url).hostname or ""
    if not proxy or urllib.request.proxy_bypass(host):
        return None, None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    auth = _basic(parts.username, parts.password) if parts.username is not None else None
    return (parts.hostname or "", parts.port or 8080), auth


def _basic(user: str, password: str | None) -> str:
    credentials = f"{unquote(user)}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(credentials).decode()


def _dashboard(value: str | None) -> str | None:
    """A dashboard URL the user may be shown: http(s), printable, of sane length."""
    if not value or len(value) > 500 or not value.startswith(("http://", "https://")):
        return None
    if not value.isprintable() or " " in value:
        return None
    return value if value.endswith("/") else value + "/"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    except ValueError:
        return None  # an HTTP date: rare from a receiver; fall back to our own backoff


def _untrusted(exc: BaseException) -> bool:
    """An untrusted certificate (only an https run has imported ssl)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLCertVerificationError)


def _describe(exc: BaseException) -> str:
    if _untrusted(exc):
        return f"TLS certificate not trusted ({getattr(exc, 'verify_message', '')})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, BrokenPipeError):
        return "BrokenPipeError"
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
