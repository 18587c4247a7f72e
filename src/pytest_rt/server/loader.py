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
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServeConfig
from .ingest import IngestError, parse_body
from .sse import Hub, encode_changes
from .store import Store
from .writer import WriteResult

BATCH_HEADER = (b"x-pytest-rt-batch", b"1")
# The plugin then sends a heartbeat after this many seconds without events (lifecycle.py).
HEARTBEAT_HEADER = (b"x-pytest-rt-heartbeat", b"30")
Answer = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]


class Loader:
    def __init__(self, config: ServeConfig, store: Store, hub: Hub) -> None:
        self.token = config.token.encode("utf-8") if config.token is not None else None
        self.max_body = config.max_body
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
        try:
            self._check_token(headers.get("authorization", ""))
            body = await self._read_body(receive, headers.get("content-length"))
            # Parsing runs on the writer thread too: the event loop only does HTTP.
            result = await loop.run_in_executor(self.store.writer, self._ingest, body, loop)
        except IngestError as exc:
            extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            return exc.status, {"error": exc.message}, extra
        answer = {"accepted": result.accepted, "duplicates": result.duplicates}
        return 200, answer, [BATCH_HEADER, HEARTBEAT_HEADER]

    def _check_token(self, header: str) -> None:
        if self.token is None:
            return
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("latin-1"), self.token
        ):
            raise IngestError(401, "missing or wrong token: send 'Authorization: Bearer <token>'")

    async def _read_body(self, receive: Receive, length: str | None) -> bytes:
        """The body, refused with 413 as soon as it grows past the limit."""
        limit = self.max_body
        too_big = IngestError(
            413, f"the body is larger than the limit of {limit} bytes (--max-body)"
        )
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_big
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
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _ingest(self, body: bytes, loop: asyncio.AbstractEventLoop) -> WriteResult:
        """Runs on the writer thread: parse, commit, then snapshot the changes for live viewers.

        Snapshots are taken and queued in commit order, so a dashboard never
        sees a test go back from finished to running.
        """
        events = parse_body(body)
        result = self.store.write(events)
        if result.changes and self.hub.wants(job_id for _, job_id, _ in result.changes):
            encoded = encode_changes(self.store.change_messages(result.changes))
            loop.call_soon_threadsafe(self.hub.publish, encoded)
        return result


class LoaderFastPath:
    """ASGI middleware: ``POST /loader`` goes straight to the :class:`Loader`."""

    def __init__(self, app: ASGIApp, loader: Loader) -> None:
        self.app = app
        self.loader = loader

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/loader" and scope["method"] == "POST":
            await self.loader(scope, receive, send)
        else:
            await self.app(scope, receive, send)
