"""The outermost ASGI layer: refuse foreign Host headers, add the security headers.

A browser sends the ``Host`` it resolved the page's name for. A hostile page
whose name resolves to 127.0.0.1 (DNS rebinding) is same-origin with itself
and could read the API through the victim's browser; its requests carry its
own name, which is what is refused here (421). Every answer gets
``X-Content-Type-Options: nosniff`` (no JSON answer is ever run as a script or
shown as a page) and ``X-Frame-Options: DENY`` (no page is framed for
clickjacking; the pages' CSP also says ``frame-ancestors 'none'``).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServeConfig, normal_host

SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
_SECURITY_NAMES = {name for name, _ in SECURITY_HEADERS}


class Guard:
    def __init__(self, app: ASGIApp, config: ServeConfig) -> None:
        self.app = app
        self.hosts = config.host_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = _host_header(scope)
            if host is not None and normal_host(host) not in self.hosts:
                await _refuse_host(send, host)
                return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() not in _SECURITY_NAMES
                ]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_secured)


def _host_header(scope: Scope) -> str | None:
    """The request's Host, or None when it sent none (HTTP/1.0: no name to rebind)."""
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


async def _refuse_host(send: Send, host: str) -> None:
    shown = host if len(host) <= 200 else host[:200] + "..."
    body = json.dumps({
        "error": (
            f"Host {shown!r} is not one this receiver answers to: start it with "
            f"--allowed-host {normal_host(host) or 'NAME'!s} (repeatable; '*' for any)"
        )
    }).encode()
    await send({
        "type": "http.response.start",
        "status": 421,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *SECURITY_HEADERS,
        ],
    })
    await send({"type": "http.response.body", "body": body})
