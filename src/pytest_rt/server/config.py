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
# Bytes of request bodies held at once over all connections: six bodies of the
# largest size, or ~60 of the plugin's 1 MB batches.
DEFAULT_MAX_INFLIGHT = 64 * 1024 * 1024
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_MAX_TESTS_PER_RUN = 50_000  # the measurement is beside ingest.MAX_TESTS_PER_RUN
TOKEN_ENV = "PYTEST_RT_TOKEN"
ANY_HOST = "*"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


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
    # Host names (no port) a request's Host header may carry; None: the default for
    # ``host`` (see :meth:`host_names`); ``("*",)``: any.
    allowed_hosts: tuple[str, ...] | None = None
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_tests_per_run: int = DEFAULT_MAX_TESTS_PER_RUN
    # The path a reverse proxy serves the receiver under ("/rt"), without a trailing
    # slash; "" at the root. The proxy strips it; the dashboard's URLs are relative.
    root_path: str = ""

    def __repr__(self) -> str:
        # Never show the token, not even in a traceback or a debug print.
        token = "***" if self.token else None
        return (
            f"ServeConfig(host={self.host!r}, port={self.port!r}, db_url={self.db_url!r}, "
            f"token={token!r}, max_body={self.max_body!r}, "
            f"allowed_hosts={self.allowed_hosts!r}, max_inflight={self.max_inflight!r}, "
            f"head_timeout={self.head_timeout!r}, body_timeout={self.body_timeout!r}, "
            f"max_connections={self.max_connections!r}, "
            f"max_tests_per_run={self.max_tests_per_run!r}, root_path={self.root_path!r})"
        )

    def host_names(self) -> frozenset[str] | None:
        """The Host names accepted (lower case, IPv6 without brackets); None for any.

        Bound to loopback: the bound address and the loopback names, which is what a
        DNS-rebinding page cannot send. Bound elsewhere (0.0.0.0, a LAN address) the
        receiver is reached by names it cannot know, so any is accepted unless
        ``--allowed-host`` names them (the CLI warns).
        """
        given = self.allowed_hosts
        if given is not None and ANY_HOST in given:
            return None
        if given is None and not is_loopback(self.host):
            return None
        names = {normal_host(name) for name in given or ()}
        names.add(normal_host(self.host))
        if is_loopback(self.host):
            names.update(LOOPBACK_NAMES)
        return frozenset(names)


def normal_host(name: str) -> str:
    """A host name as compared: lower case, without a port, IPv6 without brackets."""
    name = name.strip().lower()
    if name.startswith("["):
        return name[1:].split("]", 1)[0]
    if name.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        return name.split(":", 1)[0]
    return name


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
