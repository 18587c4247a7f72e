"""`pytest-rt replay`: send what earlier runs left in their spool, in order.

Each journal is replayed with the same Sender the plugin uses, from the first
event the receiver has not acknowledged. Receivers drop duplicates by
``event_id``, so replaying twice, or replaying a journal whose last
acknowledgements were not saved (``kill -9``), sends nothing twice that
counts. A journal still held by a running pytest is left alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_rt.sender import Sender
from pytest_rt.settings import DEFAULT_SPOOL, MAX_NUMBER, parse_headers, redact_url
from pytest_rt.spool import Journal, pending_journals
from pytest_rt.transport import HttpTarget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help=f"spool directories or files (default: ./{DEFAULT_SPOOL})")
    parser.add_argument("--url", help="send to this URL instead of the one each job was for")
    parser.add_argument("--token", help="bearer token (default: env PYTEST_RT_TOKEN)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="give up on a journal after this many seconds (default 60)")
    # The run's own connection settings are in each journal; these override them.
    parser.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="extra request header, repeatable (the run's header names are "
                             "recorded, their values are not)")
    parser.add_argument("--ca-bundle", help="CA bundle for HTTPS (default: the run's)")
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="don't verify HTTPS certificates (default: as the run did)")
    parser.add_argument("--request-timeout", type=float, metavar="SECONDS",
                        help="timeout of one request (default: the run's --rt-timeout)")


@dataclass(frozen=True)
class Overrides:
    """What the command line says about the connection; None: as the run did."""

    url: str | None = None
    token: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ca_bundle: str | None = None
    insecure: bool | None = None
    timeout: float | None = None


def run(args: argparse.Namespace) -> int:
    try:
        headers = parse_headers(args.header, "--header")
    except pytest.UsageError as exc:
        print(f"pytest-rt replay: {str(exc).removeprefix('pytest-rt: ')}", file=sys.stderr)
        return 2
    overrides = Overrides(url=args.url, token=args.token or os.environ.get("PYTEST_RT_TOKEN"),
                          headers=headers, ca_bundle=args.ca_bundle, insecure=args.insecure,
                          timeout=args.request_timeout)
    journals = [j for p in (args.paths or [Path(DEFAULT_SPOOL)]) for j in _existing(p)]
    left = 0
    for path in journals:
        left += replay_one(path, overrides, args.timeout)
    if not journals:
        print("pytest-rt replay: nothing to send")
    return 0 if left == 0 else 1


def _existing(path: Path) -> list[Path]:
    if not path.exists():
        return []
    return pending_journals(path)


def target_of(header: dict[str, Any], given: Overrides) -> HttpTarget:
    """Where and how to send a journal: as its run did, unless told otherwise.

    The run's TLS settings (CA bundle, --rt-insecure) go with its URL only: sent
    elsewhere with --url, a journal's `insecure` must not switch verification off.
    """
    url = given.url or str(header["url"])
    recorded: dict[str, Any] = header.get("connection") or {}
    if not isinstance(recorded, dict) or (given.url and given.url != header["url"]):
        recorded = {}
    timeout = given.timeout or recorded.get("timeout")
    if not isinstance(timeout, int | float) or not 0.05 <= timeout <= MAX_NUMBER:
        timeout = HttpTarget.timeout
    ca_bundle = given.ca_bundle or recorded.get("ca_bundle")
    insecure = given.insecure if given.insecure is not None else recorded.get("insecure")
    return HttpTarget(url=url, timeout=float(timeout), token=given.token or None,
                      headers=given.headers,
                      ca_bundle=ca_bundle if isinstance(ca_bundle, str) else None,
                      insecure=insecure is True)


def _missing_headers(header: dict[str, Any], given: Overrides) -> list[str]:
    recorded = (header.get("connection") or {}).get("header_names") or []
    have = {name.lower() for name, _ in given.headers}
    return [str(name) for name in recorded if str(name).lower() not in have]


def replay_one(path: Path, given: Overrides, timeout: float) -> int:
    """Replay one journal; return how many events are still pending (1 for a foreign file)."""
    try:
        journal = Journal.open_existing(path)
    except FileNotFoundError:
        return 0  # sent and removed meanwhile, by another replay
    if journal is None:
        print(f"pytest-rt replay: {path} is in use by a running pytest; skipped")
        return 0
    try:
        try:
            header = journal.header()
        except ValueError:  # not ours, or cut before its header was written
            print(f"pytest-rt replay: {path} is not a pytest-rt spool file; skipped")
            return 1
        target = target_of(header, given)
        target_url = target.url
        total = journal.count()
        journal.acked = min(journal.acked, total)  # a stale or foreign .acked file
        progress = _progress(total, journal.acked)
        sender = Sender.to(target, journal, batch=None, start=journal.acked, produced=total,
                           on_ack=progress)
        sender.drain(timeout)
        sender.transport.close()
        journal.save_acked()
        progress(sender.acked, final=True)
        left = total - sender.acked
        if left == 0:
            journal.finish(total)
            print(f"pytest-rt replay: {path.name}: {sender.stats.delivered} events sent "
                  f"to {redact_url(target_url)}")
        else:
            for problem in sender.stats.problems:
                print(f"pytest-rt replay: {problem}")
            if sender.wrong_url:
                print("pytest-rt replay: give the receiver's event URL with --url "
                      "(pytest-rt serve takes them at http://HOST:PORT/loader)")
            for name in _missing_headers(header, given):
                print(f"pytest-rt replay: the run sent a {name} header; if the receiver needs "
                      f"it, pass it again with --header '{name}: ...'")
            print(f"pytest-rt replay: {path.name}: {left} events still pending")
        return left
    finally:
        journal.close()


def _progress(total: int, done: int) -> Callable[..., None]:
    """A progress bar on a terminal for large spools; silent otherwise."""
    show = sys.stderr.isatty() and total - done > 1000

    def update(acked: int, final: bool = False) -> None:
        if not show:
            return
        width = 30
        filled = int(width * acked / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {acked}/{total}")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update
