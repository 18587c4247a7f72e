"""The receiver's settings: one immutable object, resolved once from the CLI."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_DB = os.path.join(".pytest_rt", "receiver.sqlite3")
DEFAULT_MAX_BODY = 10 * 1024 * 1024
DEFAULT_STALE_AFTER = 600.0
TOKEN_ENV = "PYTEST_RT_TOKEN"


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``pytest-rt serve`` needs, with the defaults it documents."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db_url: str = "sqlite:///" + os.path.abspath(DEFAULT_DB)
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    stale_after: float = DEFAULT_STALE_AFTER  # seconds of silence before a job is abandoned
    retain_days: float | None = None  # delete jobs that ended longer ago; None: keep all

    def __repr__(self) -> str:
        # Never show the token, not even in a traceback or a debug print.
        token = "***" if self.token else None
        return (
            f"ServeConfig(host={self.host!r}, port={self.port!r}, db_url={self.db_url!r}, "
            f"token={token!r}, max_body={self.max_body!r})"
        )


def db_url_from_arg(value: str) -> str:
    """A ``--db`` value as a SQLAlchemy URL: a URL stays one, a path becomes SQLite.

    ``postgresql://`` and ``postgres://`` get the psycopg 3 driver, the one the
    ``postgres`` extra installs (SQLAlchemy would otherwise look for psycopg2).
    """
    if "://" not in value:
        path = Path(value).expanduser().resolve()
        return f"sqlite:///{path}"
    for prefix in ("postgresql://", "postgres://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
