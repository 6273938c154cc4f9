"""``indexguard audit`` and ``indexguard sbom``: the re-audit and the SBOM on demand.

Both are meant for cron and CI as much as for a person: progress on stderr
(a bar on a terminal, a plain line every tenth of the way or every
PROGRESS_SECONDS otherwise), the result on stdout, and exit codes a
pipeline can act on.  A failure that repeats (the vulnerability service is
down, upstream is unreachable) is reported once per kind with a count, never
as one traceback per project.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from packaging.utils import InvalidName, canonicalize_name

from mirror.audit.results import AuditSummary
from mirror.audit.runner import Auditor, audit_settings
from mirror.audit.sbom import sbom_chunks
from mirror.cli.common import EXIT_OK, EXIT_USAGE, config_option, settings_from_args
from mirror.container import Services

EXIT_NEW_CRITICAL = 3
EXIT_INCOMPLETE = 4
PROGRESS_SECONDS = 30.0  # a plain progress line at least this often when stderr is not a terminal

AUDIT_EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    the audit checked everything and found no new critical findings
  {EXIT_USAGE}    bad usage or configuration (one line names the key)
  {EXIT_NEW_CRITICAL}    new critical findings (wins over {EXIT_INCOMPLETE}: act on them first)
  {EXIT_INCOMPLETE}    the audit could not do its whole job: some projects or releases were not
       checked (upstream or the vulnerability service unreachable, ...); stderr
       has one line per kind of failure, with a count and the first message
  130  interrupted
"""


def add_parsers(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="re-audit every cached project now",
        description="Re-audit every cached project (or one): refresh upstream facts, re-run the\n"
        "detectors, check known vulnerabilities, apply the policy. The summary goes to\n"
        "stdout; progress and one line per kind of failure go to stderr.",
        epilog=AUDIT_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_option(audit)
    audit.add_argument("--project", metavar="NAME", help="audit this project only")
    audit.add_argument("--json", action="store_true", help="print the summary as JSON")
    audit.add_argument("--verbose", "-v", action="store_true",
                       help="log every failure with its traceback (stderr)")
    audit.set_defaults(handler=cmd_audit)

    sbom = commands.add_parser(
        "sbom",
        help="export a CycloneDX SBOM of everything cached",
        description="Export every cached release and file with its pinned sha256, source, decision,\n"
        "findings and known vulnerabilities, as CycloneDX 1.5 JSON, written as it is read\n"
        "(memory stays flat however large the mirror). Progress goes to stderr.",
        epilog="exit codes: 0 written, 2 bad usage or configuration, 1 the file could not be written",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config_option(sbom)
    sbom.add_argument("--output", "-o", metavar="FILE",
                      help="write to FILE (default: stdout); FILE appears only once complete")
    sbom.add_argument("--include-pinned", action="store_true",
                      help="also list files the mirror pinned from upstream listings but never downloaded")
    sbom.set_defaults(handler=cmd_sbom)


def cmd_audit(args: argparse.Namespace) -> int:
    project = None
    if args.project:
        try:
            project = canonicalize_name(args.project, validate=True)
        except InvalidName:
            print(f"indexguard: {args.project!r} is not a valid project name", file=sys.stderr)
            return EXIT_USAGE
    _configure_logging(args.verbose)
    settings = settings_from_args(args)
    audit_settings(settings)  # a bad [audit] table stops here, before a database is created
    services = Services(settings)
    try:
        auditor = Auditor(services)
        count = auditor.count(project)
        if project is not None and not count:
            print(f"indexguard: '{project}' is not a cached public project", file=sys.stderr)
            return EXIT_USAGE
        print(f"audit: {count} cached public project(s) to check", file=sys.stderr)
        progress = ProgressReporter(sys.stderr, "audit")
        summary = auditor.run(project=project, trigger="command", progress=progress)
        progress.finish()
    finally:
        services.close()
    for line in failure_lines(summary):
        print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary_table(summary))
    return exit_code(summary)


def exit_code(summary: AuditSummary) -> int:
    """New critical findings first (they need action), then an incomplete run, else 0."""
    if summary.new_critical:
        return EXIT_NEW_CRITICAL
    if not summary.complete:
        return EXIT_INCOMPLETE
    return EXIT_OK


def failure_lines(summary: AuditSummary) -> list[str]:
    """One line per kind of failure, then one saying the run was incomplete (nothing when it was complete)."""
    lines = [f"audit: {failure.line()}" for failure in summary.failures.values()]
    if not summary.complete:
        lines.append(f"audit: incomplete: {summary.errors} of {summary.projects} project(s) not fully checked, "
                     f"{summary.unchecked_releases} release(s) without a vulnerability check")
    return lines


def cmd_sbom(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    audit_settings(settings)  # every section is checked before anything is created
    services = Services(settings)
    progress = ProgressReporter(sys.stderr, "sbom")
    try:
        chunks = sbom_chunks(services, include_pinned=args.include_pinned, progress=progress)
        if args.output:
            target = Path(args.output)
            try:
                write_atomically(target, chunks)
            except OSError as exc:
                progress.finish()
                print(f"indexguard: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
                return 1
            progress.finish()
            print(f"sbom: {progress.done} project(s) written to {target}", file=sys.stderr)
        else:
            try:
                for chunk in chunks:
                    sys.stdout.write(chunk)
                sys.stdout.flush()
            except BrokenPipeError:
                # The reader stopped early (`| head`): nothing more to say, and no
                # traceback when Python flushes stdout at exit.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            progress.finish()
    finally:
        services.close()
    return EXIT_OK


def write_atomically(target: Path, chunks: Any) -> None:
    """Write ``chunks`` to ``target`` through a temporary file: a reader never sees half an SBOM."""
    temp = target.with_name(target.name + ".tmp")
    try:
        with open(temp, "w", encoding="utf-8") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)


def _configure_logging(verbose: bool) -> None:
    """Failures are summarised by kind on stderr; log records (tracebacks) only with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.ERROR,
                        format="indexguard: %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


class ProgressReporter:
    """A one-line bar on a terminal; otherwise a plain line every tenth of the way or every PROGRESS_SECONDS.

    Long runs (thousands of projects against a slow upstream) then still say
    they are alive in a log, and short ones print at most about ten lines.
    """

    def __init__(self, stream: TextIO, label: str, *, every: float = PROGRESS_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.every = every
        self.monotonic = monotonic
        self.done = 0
        self._last_step = -1
        self._last_at = monotonic()

    def __call__(self, done: int, total: int | None, project: str, failed: int = 0) -> None:
        self.done = done
        total = max(total or done, done)
        note = f", {failed} failed" if failed else ""
        if self.tty:
            width = 30
            filled = width * done // total if total else width
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}{note} {project[:40]:<40}")
            self.stream.flush()
            return
        step = 10 * done // total if total else 10
        now = self.monotonic()
        if step != self._last_step or done == total or now - self._last_at >= self.every:
            self._last_step = step
            self._last_at = now
            print(f"{self.label}: {done}/{total} projects{note} ({project})", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def summary_table(summary: AuditSummary) -> str:
    """The run's counts as an aligned two-column table, then what needs attention."""
    seconds = (summary.finished_at - summary.started_at).total_seconds()
    rows = [
        ("audit run", str(summary.run_id)),
        ("complete", "yes" if summary.complete else "no"),
        ("projects", str(summary.projects)),
        ("new findings", str(summary.new_findings)),
        ("resolved findings", str(summary.resolved_findings)),
        ("new critical", str(summary.new_critical)),
        ("new vulnerabilities", str(summary.new_vulnerabilities)),
        ("errors", str(summary.errors)),
        ("unchecked releases", str(summary.unchecked_releases)),
        ("seconds", f"{seconds:.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    failures = [failure.line() for failure in summary.failures.values()]
    for title, items in (("critical", summary.critical), ("actions", summary.actions), ("failures", failures)):
        if items:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  {item}" for item in items)
    return "\n".join(lines)
