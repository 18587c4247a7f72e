"""Every JSON answer of the receiver checked against its model in ``api_schema``.

The read API's shapes are defined once, as pydantic models (they are also
/openapi.json's). Each httpx client the tests read the API with carries
:data:`HOOKS` (or :data:`ASYNC_HOOKS`), so every answer a test gets is
validated: strictly (no coercion), and read back to exactly the same JSON, so
a field that ``reads.py`` adds, drops or renames without the model fails
whatever test reads it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel

from pytest_rt.server import api_schema as shapes

# (method, path pattern at the end of the URL's path, status) -> the answer's model.
# Paths are matched at the end: a receiver behind --root-path answers under a prefix.
ANSWERS: list[tuple[str, re.Pattern[str], type[BaseModel]]] = [
    ("POST", re.compile(r"/loader$"), shapes.IngestAnswer),
    ("GET", re.compile(r"/api/jobs$"), shapes.JobList),
    ("GET", re.compile(r"/api/jobs/.+/junit\.xml$"), BaseModel),  # XML: not JSON
    ("GET", re.compile(r"/api/jobs/.+$"), shapes.JobDetail),
    ("DELETE", re.compile(r"/api/jobs/.+$"), shapes.Deleted),
    ("GET", re.compile(r"/api/tests/history$"), shapes.History),
    ("GET", re.compile(r"/healthz$"), shapes.Health),
]


def model_of(method: str, path: str, status: int) -> type[BaseModel] | None:
    """The model of an answer, or None when it is not one of the API's JSON answers."""
    for verb, pattern, model in ANSWERS:
        if verb == method and pattern.search(path):
            if status >= 400:
                return shapes.ErrorAnswer
            return model if status == 200 and model is not BaseModel else None
    return None


def check_shape(model: type[BaseModel], data: Any) -> None:
    """``data`` is exactly a ``model``: every field there, none more, none coerced."""
    parsed = model.model_validate(data, strict=True)
    assert parsed.model_dump() == data, f"{model.__name__} differs from the answer"


def check_live(message: dict[str, Any]) -> None:
    """One message of /api/events: a stream of every job sends no ``tests``."""
    check_shape(shapes.LiveMessage, {"tests": None, **message})


def check(response: httpx.Response) -> None:
    """Validate one answer (httpx response hook of a sync client)."""
    model = model_of(response.request.method, response.request.url.path,
                     response.status_code)
    if model is None or not response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        return
    response.read()
    check_shape(model, response.json())


async def acheck(response: httpx.Response) -> None:
    """:func:`check` for an async client."""
    if model_of(response.request.method, response.request.url.path, response.status_code):
        await response.aread()
    check(response)


HOOKS: dict[str, list[Any]] = {"response": [check]}
ASYNC_HOOKS: dict[str, list[Any]] = {"response": [acheck]}


def asgi_client(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    """A client of an app over httpx's ASGI transport, checking every answer."""
    return httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", event_hooks=ASYNC_HOOKS
    )
