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
from pathlib import Path

from pytest_rt.sender import Sender
from pytest_rt.settings import DEFAULT_SPOOL, redact_url
from pytest_rt.spool import Journal, pending_journals
from pytest_rt.transport import HttpTarget, Transport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help=f"spool directories or files (default: ./{DEFAULT_SPOOL})")
    parser.add_argument("--url", help="send to this URL instead of the one each job was for")
    parser.add_argument("--token", help="bearer token (default: env PYTEST_RT_TOKEN)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="give up on a journal after this many seconds (default 60)")


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("PYTEST_RT_TOKEN") or None
    journals = [j for p in (args.paths or [Path(DEFAULT_SPOOL)]) for j in _existing(p)]
    left = 0
    for path in journals:
        left += replay_one(path, args.url, token, args.timeout)
    if not journals:
        print("pytest-rt replay: nothing to send")
    return 0 if left == 0 else 1


def _existing(path: Path) -> list[Path]:
    if not path.exists():
        return []
    return pending_journals(path)


def replay_one(path: Path, url: str | None, token: str | None, timeout: float) -> int:
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
        target_url = url or str(header["url"])
        total = journal.count()
        journal.acked = min(journal.acked, total)  # a stale or foreign .acked file
        transport = Transport(HttpTarget(url=target_url, token=token))
        sender = Sender(journal, transport, batch=None, display_url=redact_url(target_url),
                        start=journal.acked)
        sender.produced = total
        progress = _progress(total, journal.acked)
        sender.on_ack = progress
        sender.close(timeout)
        sender.run()
        transport.close()
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
