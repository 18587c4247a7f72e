"""The `pytest-rt` command: `serve` (the receiver), `replay` (the spool), `watch` (a job)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pytest_rt import __version__, replay, watch
from pytest_rt.server import cli as serve  # its options only: the server is imported to run

Run = Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def _replay(args: argparse.Namespace, _parser: argparse.ArgumentParser) -> int:
    return replay.run(args)


# name: (the line in `pytest-rt -h`, the description of `pytest-rt NAME -h`, its options,
# what runs it)
COMMANDS: dict[str, tuple[str, str | None, Callable[[argparse.ArgumentParser], None], Run]] = {
    "serve": ("run the receiver and dashboard (pytest-rt serve -h)", serve.DESCRIPTION,
              serve.add_arguments, serve.run),
    "watch": ("follow a job live in the terminal (pytest-rt watch -h)", watch.DESCRIPTION,
              watch.add_arguments, watch.run),
    "replay": ("send the events earlier runs could not deliver", None,
               replay.add_arguments, _replay),
}


def build_parser() -> argparse.ArgumentParser:
    """The `pytest-rt` parser, a subparser for each command; each command's parser is
    in its namespace as ``command_parser`` (for its own usage errors)."""
    parser = argparse.ArgumentParser(prog="pytest-rt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pytest-rt {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_line, description, add_arguments, run) in COMMANDS.items():
        command = commands.add_parser(name, help=help_line, description=description)
        add_arguments(command)
        command.set_defaults(run=run, command_parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    code: int = args.run(args, args.command_parser)
    return code


if __name__ == "__main__":
    sys.exit(main())
