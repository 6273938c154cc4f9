"""The ``indexguard`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from mirror import __version__
from mirror.cli.common import EXIT_USAGE
from mirror.config import SettingsError

# Each sub-command and the module that registers it.  Only the module of the
# command being run is imported: ``indexguard check`` in a CI gate pays for
# the detectors alone, not for the server's imports (the database layer,
# the web framework: 0.4 s and 40 MiB).
COMMANDS = {
    "serve": "mirror.cli.serve",
    "db": "mirror.cli.serve",
    "prepare": "mirror.cli.serve",
    "check": "mirror.cli.check",
    "admin": "mirror.cli.admin",
    "review": "mirror.cli.admin",
    "audit": "mirror.cli.audit",
    "sbom": "mirror.cli.audit",
    "why": "mirror.cli.why",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
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


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every sub-command, or only of ``command``'s module when that is a known one."""
    parser = argparse.ArgumentParser(
        prog="indexguard",
        description="A screening mirror of the Python package index.",
    )
    parser.add_argument("--version", action="version", version=f"indexguard {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(module).add_parsers(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
