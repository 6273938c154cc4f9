"""``indexguard why NAME[==VERSION]``: ask a running mirror why it refuses something.

No token is needed: the reason is the one the 403 already carries.  pip and
uv do not print it, so this (or ``curl MIRROR/why/NAME``) is how a user reads it.
"""

from __future__ import annotations

import argparse
import os
import sys

import requests
from packaging.requirements import InvalidRequirement, Requirement

from mirror.cli.common import mirror_base

URL_ENV = "INDEXGUARD_URL"
DEFAULT_URL = "http://127.0.0.1:8080/"
EXIT_INSTALLABLE, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "why",
        help="say why a project or release is refused or held",
        description="Ask a running mirror why NAME (or NAME==VERSION) is refused, quarantined or held. "
        "Exit status: 0 installable, 1 refused or held, 2 the mirror could not be asked.",
    )
    parser.add_argument("requirement", metavar="NAME[==VERSION]")
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"the mirror's base URL or its /simple/ URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        name, version = parse_requirement(args.requirement)
    except ValueError as exc:
        print(f"indexguard: {exc}", file=sys.stderr)
        return EXIT_ERROR
    url = mirror_base(args.url) + f"why/{name}"
    try:
        response = requests.get(url, params={"version": version} if version else None, timeout=30)
    except requests.RequestException as exc:
        print(f"indexguard: could not reach the mirror at {mirror_base(args.url)}: {type(exc).__name__}", file=sys.stderr)
        return EXIT_ERROR
    if response.status_code != 200:
        print(f"indexguard: {url} answered {response.status_code}: {response.text.strip()[:300]}", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(response.text)
    return EXIT_INSTALLABLE if response.headers.get("X-IndexGuard-Installable") == "yes" else EXIT_REFUSED


def parse_requirement(text: str) -> tuple[str, str | None]:
    """NAME or NAME==VERSION (the only specifier that names one release)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"not a project name or NAME==VERSION: {text!r} ({exc})") from None
    specs = list(requirement.specifier)
    if not specs:
        return requirement.name, None
    if len(specs) == 1 and specs[0].operator in ("==", "==="):
        return requirement.name, specs[0].version
    raise ValueError(f"give NAME or NAME==VERSION, not {text!r}")
