"""The `pytest-rt` command: `serve` (the receiver), `replay` (the spool), `watch` (a job)."""

from __future__ import annotations

import argparse
import sys

from pytest_rt import __version__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        # The server's own parser, behind the `server` extra, imported only now.
        from pytest_rt.server.cli import serve_main

        return serve_main(argv[1:])
    if argv[:1] == ["watch"]:
        # Its own parser too; rich (the `watch` extra) is imported only there.
        from pytest_rt.watch import watch_main

        return watch_main(argv[1:])
    from pytest_rt import replay

    parser = argparse.ArgumentParser(prog="pytest-rt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pytest-rt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the receiver and dashboard (pytest-rt serve -h)")
    commands.add_parser("watch", help="follow a job live in the terminal (pytest-rt watch -h)")
    replay_parser = commands.add_parser(
        "replay", help="send the events earlier runs could not deliver")
    replay.add_arguments(replay_parser)
    args = parser.parse_args(argv)
    if args.command == "replay":
        return replay.run(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
