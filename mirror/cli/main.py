"""The ``indexguard`` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from mirror import __version__
from mirror.cli import admin, audit, check, serve, why
from mirror.cli.common import EXIT_USAGE
from mirror.config import SettingsError

# Each module registers its own sub-commands.
COMMANDS = (serve.add_parsers, check.add_parser, admin.add_parsers, audit.add_parsers, why.add_parser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or 0)
    except SettingsError as exc:
        print(f"indexguard: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="indexguard",
        description="A screening mirror of the Python package index.",
    )
    parser.add_argument("--version", action="version", version=f"indexguard {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser
