"""``pytest-rt serve``: parse the options, build the app, run uvicorn."""

from __future__ import annotations

import argparse
import os
import sys

from .config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_DB,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_TESTS_PER_RUN,
    DEFAULT_PORT,
    DEFAULT_STALE_AFTER,
    TOKEN_ENV,
    ServeConfig,
    db_url_from_arg,
)

MISSING_EXTRA = 'pytest-rt serve needs the server extra: pip install "pytest-rt[server]"'
DESCRIPTION = "Receive pytest-rt events and serve the live dashboard."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``pytest-rt serve``'s options, on its subparser of the ``pytest-rt`` command."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        help="SQLite file path or SQLAlchemy URL (default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"require 'Authorization: Bearer TOKEN' on POST /loader (or env {TOKEN_ENV})",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help="largest POST body accepted, else 413 (default %(default)s)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a name the receiver is reached by (the Host header), repeatable; '*' for any. "
        "Default: the bound address, plus localhost, 127.0.0.1 and ::1 on loopback; "
        "any name when bound to another address",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=DEFAULT_MAX_INFLIGHT,
        metavar="BYTES",
        help="bytes of request bodies held at once over all connections, else 503 "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--head-timeout",
        type=float,
        default=DEFAULT_HEAD_TIMEOUT,
        metavar="SECONDS",
        help="a request head must arrive within this, else the connection is closed "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        metavar="SECONDS",
        help="a request body must arrive within this, else 408 (default %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections at most (also kept below the open-file limit); past it the "
        "one idle longest is closed (default %(default)s)",
    )
    parser.add_argument(
        "--max-tests-per-run",
        type=int,
        default=DEFAULT_MAX_TESTS_PER_RUN,
        metavar="N",
        help="most tests one startTestRun may list, else 413: writing it holds every other "
        "client's POST (~1 s per 45,000 on SQLite) (default %(default)s)",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        metavar="SECONDS",
        help="mark a running job abandoned after this long without an event (default %(default)s)",
    )
    parser.add_argument(
        "--retain-days",
        type=float,
        default=None,
        metavar="N",
        help="delete jobs that ended more than N days ago (default: keep everything)",
    )
    parser.add_argument(
        "--root-path",
        default="",
        metavar="PATH",
        help="the path a reverse proxy serves the receiver under, e.g. /rt (the proxy strips "
        "it before passing requests on); default: the root",
    )


def parse_config(argv: list[str]) -> ServeConfig:
    """The settings of ``pytest-rt serve ARGV`` and the environment (``--token`` wins
    over the env); argparse's SystemExit on a bad option."""
    from pytest_rt.cli import build_parser

    args = build_parser().parse_args(["serve", *argv])
    return config_from_args(args, args.command_parser)


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ServeConfig:
    """The settings from parsed options; a bad value ends in ``parser.error``."""
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.max_body < 1:
        parser.error("--max-body must be a positive number of bytes")
    days = args.retain_days
    if not 0 < args.stale_after < 1e9 or (days is not None and not 0 < days < 1e6):
        parser.error("--stale-after and --retain-days must be positive numbers")
    if args.max_inflight < 1:
        parser.error("--max-inflight must be a positive number of bytes")
    if args.max_connections < 1 or args.max_tests_per_run < 1:
        parser.error("--max-connections and --max-tests-per-run must be at least 1")
    for name in ("head_timeout", "body_timeout"):
        if not 0 < getattr(args, name) < 1e6:
            parser.error(f"--{name.replace('_', '-')} must be a positive number")
    hosts = args.allowed_host
    if hosts is not None and not all(name.strip() for name in hosts):
        parser.error("--allowed-host needs a name (or '*' for any)")
    root_path = args.root_path.strip().rstrip("/")
    if root_path and (not root_path.startswith("/") or "//" in root_path):
        parser.error("--root-path must be a path like /rt")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    return ServeConfig(
        host=args.host,
        port=args.port,
        db_url=db_url_from_arg(args.db),
        token=token,
        max_body=args.max_body,
        stale_after=args.stale_after,
        retain_days=args.retain_days,
        allowed_hosts=tuple(hosts) if hosts is not None else None,
        max_inflight=args.max_inflight,
        head_timeout=args.head_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
        max_tests_per_run=args.max_tests_per_run,
        root_path=root_path,
    )


def serve_main(argv: list[str]) -> int:
    """``pytest-rt serve ARGV``'s exit code (argparse's too: 0 for --help, 2 for a bad option)."""
    from pytest_rt.cli import main

    try:
        return main(["serve", *argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the receiver until Ctrl-C; the exit code of ``pytest-rt serve``."""
    config = config_from_args(args, parser)
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print(MISSING_EXTRA, file=sys.stderr)
        return 2
    return _run(config)


def _run(config: ServeConfig) -> int:
    from .app import create_app
    from .limits import raise_nofile_limit
    from .runner import any_host_by_default, make_server, public_without_token

    # Each connection is a file descriptor: many clients (or slow ones) must not
    # exhaust a default soft limit of 1,024 while the hard limit allows more.
    raise_nofile_limit()
    if config.db_url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(config.db_url[len("sqlite:///") :]) or ".", exist_ok=True)
    try:
        app = create_app(config)
    except Exception as exc:  # the database is unreachable or the URL is wrong
        print(f"pytest-rt serve: cannot open the database: {exc}", file=sys.stderr)
        return 1
    if public_without_token(config):
        print(
            f"pytest-rt serve: warning: listening on {config.host} without a token: anyone "
            f"who can reach this address can post results (use --token or {TOKEN_ENV})",
            file=sys.stderr,
        )
    if any_host_by_default(config):
        print(
            f"pytest-rt serve: note: bound to {config.host}, so any Host name is answered; "
            "name the ones you use with --allowed-host to refuse DNS rebinding",
            file=sys.stderr,
        )
    try:
        server = make_server(config, app)
    except OSError as exc:
        app.state.store.close()
        print(_cannot_bind(config, exc), file=sys.stderr)
        return 1
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
        pass
    except SystemExit:  # uvicorn could not start (the app's startup failed: it said why)
        return 1
    finally:
        app.state.store.close()  # idempotent: the app's shutdown closed it already
    return 0


def _cannot_bind(config: ServeConfig, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return (
            f"pytest-rt serve: port {config.port} on {config.host} is already in use "
            "(another pytest-rt serve?): choose another with --port, e.g. "
            f"--port {config.port + 1}, or --port 0 for any free port"
        )
    return f"pytest-rt serve: cannot listen on {config.host} port {config.port}: {exc}"


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
