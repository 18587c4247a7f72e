"""Fixtures for the receiver: the app over httpx's ASGI transport, and real uvicorn servers.

``db_url`` runs a test on a SQLite file, and again on PostgreSQL (its own
schema, dropped afterwards) when ``PYTEST_RT_TEST_PG_URL`` is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

import httpx  # noqa: E402
from rt_api import asgi_client  # noqa: E402
from rt_receivers import pg_schema  # noqa: E402
from rt_server_live import LiveServer, start_server  # noqa: E402

from pytest_rt.server.app import create_app  # noqa: E402
from pytest_rt.server.config import ServeConfig  # noqa: E402
from pytest_rt.server.store import Store  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "rt.sqlite3")
        return
    with pg_schema() as url:
        yield url


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "rt.sqlite3")


@pytest.fixture
def config() -> ServeConfig:
    return ServeConfig(port=0)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    the_store = Store(db_url)
    yield the_store
    the_store.close()


@pytest.fixture
def app(config: ServeConfig, store: Store) -> Any:
    return create_app(config, store)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with asgi_client(transport) as the_client:  # checks every answer (rt_api)
        yield the_client


@pytest.fixture
def live_server(config: ServeConfig, sqlite_db: str) -> Iterator[LiveServer]:
    running = start_server(config, sqlite_db)
    yield running
    if running.thread.is_alive():
        running.stop()
