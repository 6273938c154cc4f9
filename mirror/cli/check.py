"""``indexguard check``: screen project names offline with the name-based detectors.

For a requirements review, a CI gate or an incident ("did anyone here
install one of these?"): no mirror, no database, no network - the bundled
popular corpus (or ``--popular-file``) and the internal names given with
``--internal``.  The verdict is the default policy's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from detectors import (
    DetectorConfig,
    Finding,
    InternalNames,
    PopularCorpus,
    ProjectFacts,
    load_corpus,
    run_name_detectors,
)
from detectors.names import InvalidName, canonical
from mirror.memory import limit_malloc_arenas
from mirror.screening.policy import PolicyConfig, decide

__all__ = ["add_parsers", "check_names", "main", "run"]

OUTPUT_BATCH = 1000  # lines written at once: one write per name cost more than the detectors on clean names
DESCRIPTION = (
    "Screen project names offline with the name-based detectors (typosquats, dependency confusion): "
    "no mirror, no database, no network. Prints a table, or one JSON object per line with --json."
)
EPILOG = "exit status: 0 every name allowed, 1 at least one would be quarantined or denied, 2 bad input"


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``check`` sub-command on an ``argparse`` sub-parsers object."""
    parser = subparsers.add_parser(
        "check",
        help="screen project names offline (typosquats, dependency confusion)",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="project names, or '-' to read them from stdin")
    parser.add_argument("--popular-file", metavar="CSV", help="a project,download_count CSV replacing the bundled list")
    parser.add_argument(
        "--internal", metavar="NAME", action="append", default=[], help="an internal project name (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per name and line")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where the built popular corpus is kept between runs (default: $XDG_CACHE_HOME/indexguard, "
        "else ~/.cache/indexguard)",
    )
    parser.add_argument("--no-cache", action="store_true", help="build the corpus in memory, read and write no cache")
    parser.set_defaults(handler=run)


def cache_directory(option: str | None, environ: Mapping[str, str]) -> Path:
    """``--cache-dir``, else the user's cache directory (XDG), where the built corpus is kept."""
    if option:
        return Path(option).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "indexguard"


def _names(arguments: Sequence[str], stdin: TextIO) -> Iterable[str]:
    for argument in arguments:
        if argument == "-":
            for line in stdin:
                name = (line.split("#", 1)[0] if "#" in line else line).strip()
                if name:
                    yield name
        else:
            yield argument


INVALID = "not a valid project name (PEP 508: letters, digits, '.', '_', '-')"


def check_names(
    names: Iterable[str],
    corpus: PopularCorpus,
    internal: InternalNames,
    *,
    now: datetime | None = None,
    config: DetectorConfig | None = None,
    policy: PolicyConfig | None = None,
) -> Iterable[dict[str, Any]]:
    """One result per name: ``{"name", "verdict", "findings"}``, or ``{"name", "error"}``."""
    for name, verdict, findings in _verdicts(names, corpus, internal, now, config, policy):
        yield _result(name, verdict, findings)


def _verdicts(
    names: Iterable[str],
    corpus: PopularCorpus,
    internal: InternalNames,
    now: datetime | None,
    config: DetectorConfig | None,
    policy: PolicyConfig | None,
) -> Iterator[tuple[str, str | None, list[Finding]]]:
    """``(canonical name, verdict, findings)`` per name, ``(name as given, None, [])`` for an invalid one.

    What ``check_names`` makes its results of; ``run`` writes most lines
    straight from it, without a result dictionary per name.
    """
    now = now or datetime.now(timezone.utc)
    config = config or DetectorConfig()
    policy = policy or PolicyConfig()
    listed = bool(policy.allow or policy.deny)
    for raw in names:
        try:
            name = canonical(raw)
        except InvalidName:
            yield raw, None, []
            continue
        findings = run_name_detectors(ProjectFacts(name=name, now=now, internal=internal, corpus=corpus), config)
        # No finding and no site list: nothing for the policy to weigh (the common case, kept cheap).
        yield name, decide(findings, policy, project=name).action if findings or listed else "allow", findings


def _result(name: str, verdict: str | None, findings: list[Finding]) -> dict[str, Any]:
    if verdict is None:
        return {"name": name, "error": INVALID}
    return {
        "name": name,
        "verdict": verdict,
        "findings": [
            {"detector": f.detector, "severity": str(f.severity), "target": f.target, "title": f.title}
            for f in findings
        ],
    }


def _table_line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['name']:<30} error    {result['error']}"
    findings = result["findings"]
    if not findings:
        return f"{result['name']:<30} {result['verdict']:<8} -"
    first = findings[0]
    line = f"{result['name']:<30} {result['verdict']:<8} {first['detector']}/{first['severity']}: {first['title']}"
    for more in findings[1:]:
        line += f"\n{'':<30} {'':<8} {more['detector']}/{more['severity']}: {more['title']}"
    return line


def run(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
        stderr: TextIO | None = None) -> int:
    """Handler for parsed arguments; returns the exit status.

    0: every name allowed; 1: at least one name would be quarantined or
    denied; 2: bad input (an invalid name or an unreadable --popular-file).
    """
    # Big blocks mapped on their own, as in the server: the corpus a first run builds is freed
    # table by table, and blocks glibc had kept in its heap stayed resident (a first run: about
    # 100 MiB at its peak without, 93-95 with).
    limit_malloc_arenas()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        if args.popular_file:
            corpus = PopularCorpus.from_csv(args.popular_file)  # an operator's list: built each run
        else:
            no_cache = getattr(args, "no_cache", False)
            corpus = load_corpus(cache_dir=None if no_cache else cache_directory(getattr(args, "cache_dir", None), os.environ))
    except (OSError, ValueError) as error:
        print(f"indexguard check: cannot load --popular-file {args.popular_file}: {error}", file=stderr)
        return 2
    try:
        internal = InternalNames.build(args.internal)
    except InvalidName as error:
        print(f"indexguard check: --internal: {error}", file=stderr)
        return 2
    status = 0
    lines: list[str] = [] if args.json else [f"{'NAME':<30} {'VERDICT':<8} FINDINGS"]
    for name, verdict, findings in _verdicts(_names(args.names, stdin), corpus, internal, None, None, None):
        if verdict is None:
            status = 2
            print(f"indexguard check: {name!r}: {INVALID}", file=stderr)
            if args.json:
                lines.append(json.dumps(_result(name, verdict, findings)))
            continue
        if verdict != "allow" and status == 0:
            status = 1
        if args.json and not findings:
            # Most names: the line json.dumps would write, without the encoder (a canonical name needs no escaping).
            lines.append(f'{{"name": "{name}", "verdict": "{verdict}", "findings": []}}')
        else:
            result = _result(name, verdict, findings)
            lines.append(json.dumps(result) if args.json else _table_line(result))
        if len(lines) >= OUTPUT_BATCH:
            _flush(lines, stdout)
    _flush(lines, stdout)
    return status


def _flush(lines: list[str], out: TextIO) -> None:
    if lines:
        out.write("\n".join(lines) + "\n")
        out.flush()
        lines.clear()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="indexguard check", description=DESCRIPTION, epilog=EPILOG)
    configure(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
