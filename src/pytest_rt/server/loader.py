"""``POST /loader`` as a plain ASGI app: the hot path skips routing and dependency injection.

One event per POST is the seed's way and still the plugin's first request, so
each microsecond here counts: FastAPI's routing, request object and response
classes cost more than the rest of the HTTP handling. The FastAPI route of
the same path (for /openapi.json) answers through the same :meth:`Loader.answer`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import protocol
from .config import ServeConfig
from .ingest import IngestError, parse_body
from .limits import BodyBudget
from .sse import Hub, encode_changes
from .store import Store
from .writer import WriteResult


def _header_name(name: str) -> bytes:
    """A protocol header's name as ASGI carries it: lowercased bytes."""
    return name.lower().encode("ascii")


BATCH_HEADER = (_header_name(protocol.BATCH_HEADER), b"1")
# The plugin then sends a heartbeat after this many seconds without events (lifecycle.py).
HEARTBEAT_HEADER = (_header_name(protocol.HEARTBEAT_HEADER), b"30")
DASHBOARD_HEADER = _header_name(protocol.DASHBOARD_HEADER)
CLOSE_HEADER = (b"connection", b"close")
Answer = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]
logger = logging.getLogger("pytest_rt.server")


def json_content_type(value: str | None) -> bool:
    """True for ``application/json``, with no parameter but a UTF-8 charset.

    A page on another origin can send only text/plain, form or multipart bodies
    without a CORS preflight (which this receiver never answers): requiring
    JSON is what keeps a browser from writing here.
    """
    if value == "application/json":  # what the plugin sends: no parsing on the hot path
        return True
    if value is None:
        return False
    media, _, params = value.partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, arg = param.partition("=")
        if not name.strip():
            continue
        if name.strip().lower() != "charset" or arg.strip().strip('"').lower() not in (
            "utf-8", "utf8"
        ):
            return False
    return True


def _dashboard_header(scope: Scope, headers: Headers) -> tuple[bytes, bytes]:
    """Where this receiver's dashboard is, as the client reached it: the plugin prints
    `live at <this>jobs/<job id>` (the Host was checked against the allowed names)."""
    host = headers.get("host") or "{}:{}".format(*(scope.get("server") or ("127.0.0.1", 80)))
    root = scope.get("root_path", "").rstrip("/")
    url = f"{scope.get('scheme', 'http')}://{host}{root}/"
    return DASHBOARD_HEADER, url.encode("latin-1", "replace")


class Loader:
    def __init__(self, config: ServeConfig, store: Store, hub: Hub) -> None:
        self.token = config.token.encode("utf-8") if config.token is not None else None
        self.max_body = config.max_body
        self.max_tests = config.max_tests_per_run
        self.body_timeout = config.body_timeout
        self.budget = BodyBudget(max(config.max_inflight, config.max_body))
        self.store = store
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, payload, headers = await self.answer(scope, receive)
        except ClientDisconnect:
            return  # nobody to answer
        body = json.dumps(payload, separators=(",", ":")).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        })
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        """Status, JSON body and extra headers for one POST."""
        headers = Headers(scope=scope)
        loop = asyncio.get_running_loop()
        held = [0]  # bytes of the budget this request holds
        try:
            self._check_token(headers.get("authorization", ""))
            if not json_content_type(headers.get("content-type")):
                raise IngestError(
                    415, "send the events as 'Content-Type: application/json'"
                )
            body = await self._read_body(receive, headers.get("content-length"), held)
            # Parsing runs on the writer thread too: the event loop only does HTTP.
            result = await loop.run_in_executor(self.store.writer, self._ingest, body, loop)
        except IngestError as exc:
            extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            if exc.status in (408, 413, 503):
                # The body may be unread: this connection cannot carry another request.
                extra.append(CLOSE_HEADER)
            if exc.status == 503:
                extra.append((b"retry-after", b"1"))
            return exc.status, {"error": exc.message}, extra
        finally:
            self.budget.give(held[0])
        answer = {"accepted": result.accepted, "duplicates": result.duplicates}
        return 200, answer, [BATCH_HEADER, HEARTBEAT_HEADER, _dashboard_header(scope, headers)]

    def _check_token(self, header: str) -> None:
        if self.token is None:
            return
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("latin-1"), self.token
        ):
            raise IngestError(401, "missing or wrong token: send 'Authorization: Bearer <token>'")

    async def _read_body(self, receive: Receive, length: str | None, held: list[int]) -> bytes:
        """The body, refused with 413 as soon as it grows past the limit, 408 when it is
        not complete within the body timeout, 503 when the bodies in flight would take
        more memory than the budget. ``held[0]`` counts the budget taken."""
        limit = self.max_body
        too_big = IngestError(
            413, f"the body is larger than the limit of {limit} bytes (--max-body)"
        )
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_big
        # One timer for the whole body (asyncio.timeout is 3.11+, wait_for costs a task
        # per chunk): when it fires it cancels this task, which ends the wait below.
        task = asyncio.current_task()
        assert task is not None
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.body_timeout, expire)
        try:
            return await self._read_chunks(receive, too_big, held)
        except asyncio.CancelledError:
            if not expired:
                raise
            if hasattr(task, "uncancel"):  # 3.11+: this cancel is handled here
                task.uncancel()
            raise IngestError(
                408, f"the body did not arrive within {self.body_timeout:g} s"
            ) from None
        finally:
            timer.cancel()

    async def _read_chunks(
        self, receive: Receive, too_big: IngestError, held: list[int]
    ) -> bytes:
        limit = self.max_body
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_big
            if not self.budget.take(len(chunk)):
                raise IngestError(
                    503, "the receiver holds as many request bodies as it may: retry shortly"
                )
            held[0] += len(chunk)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _ingest(self, body: bytes, loop: asyncio.AbstractEventLoop) -> WriteResult:
        """Runs on the writer thread: parse, commit, then snapshot the changes for live viewers.

        Snapshots are taken and queued in commit order, so a dashboard never
        sees a test go back from finished to running.
        """
        events = parse_body(body, self.max_tests)
        result = self.store.write(events)
        if self.store.shared:
            return result  # every receiver's dashboards hear it through NOTIFY (notify.py)
        # Only what a subscriber gets is read: no test rows for the jobs list alone.
        changes = self.hub.relevant(result.changes) if result.changes else []
        if changes:
            try:
                encoded = encode_changes(self.store.change_messages(changes))
            except Exception:  # noqa: BLE001
                # Committed already: a row stored before the ingest limits (a value too
                # deep to encode) may cost the dashboards one update, never the POST.
                logger.exception("pytest-rt: live update skipped")
            else:
                loop.call_soon_threadsafe(self.hub.publish, encoded)
        return result


class LoaderFastPath:
    """ASGI middleware: ``POST /loader`` goes straight to the :class:`Loader`."""

    def __init__(self, app: ASGIApp, loader: Loader) -> None:
        self.app = app
        self.loader = loader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # uvicorn's --root-path is part of the path (ASGI): "/rt/loader" behind a proxy.
        if (
            scope["type"] == "http"
            and scope["path"].endswith("/loader")
            and scope["path"] == scope.get("root_path", "") + "/loader"
            and scope["method"] == "POST"
        ):
            await self.loader(scope, receive, send)
        else:
            await self.app(scope, receive, send)
