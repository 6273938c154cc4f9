"""``indexguard audit`` and ``indexguard sbom``: the re-audit and the SBOM on demand.

``audit`` is meant for cron and CI as much as for a person: a progress bar
only when stderr is a terminal, a summary table (or ``--json``) on stdout,
and exit code 3 when the run found new critical findings, so a pipeline
can stop on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from packaging.utils import InvalidName, canonicalize_name

from mirror.audit.runner import EXIT_NEW_CRITICAL, AuditSummary

EXIT_USAGE = 2


def add_parsers(commands: Any) -> None:
    from mirror.cli.main import _config_option

    audit = commands.add_parser(
        "audit",
        help="re-audit every cached project now",
        description="Re-audit every cached project (or one): refresh upstream facts, re-run the detectors, "
        "check known vulnerabilities, apply the policy. Exit code 3 when new critical findings appear.",
    )
    _config_option(audit)
    audit.add_argument("--project", metavar="NAME", help="audit this project only")
    audit.add_argument("--json", action="store_true", help="print the summary as JSON")
    audit.set_defaults(handler=cmd_audit)

    sbom = commands.add_parser(
        "sbom",
        help="export a CycloneDX SBOM of everything cached",
        description="Export every cached project, release and file with its pinned sha256, source, decision, "
        "findings and known vulnerabilities, as CycloneDX JSON.",
    )
    _config_option(sbom)
    sbom.add_argument("--output", "-o", metavar="FILE", help="write to FILE (default: stdout)")
    sbom.set_defaults(handler=cmd_sbom)


def cmd_audit(args: argparse.Namespace) -> int:
    from mirror.audit.runner import Auditor
    from mirror.cli.main import settings_from_args
    from mirror.container import Services

    project = None
    if args.project:
        try:
            project = canonicalize_name(args.project, validate=True)
        except InvalidName:
            print(f"indexguard: {args.project!r} is not a valid project name", file=sys.stderr)
            return EXIT_USAGE
    settings = settings_from_args(args)
    services = Services(settings)
    try:
        auditor = Auditor(services)
        count = auditor._count(project)
        if project is not None and not count:
            print(f"indexguard: '{project}' is not a cached public project", file=sys.stderr)
            return EXIT_USAGE
        print(f"audit: {count} cached public project(s) to check", file=sys.stderr)
        progress = ProgressReporter(sys.stderr)
        summary = auditor.run(project=project, trigger="command", progress=progress)
        progress.finish()
    finally:
        if services.notifier is not None:
            services.notifier.close()
        services.close()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary_table(summary))
    return EXIT_NEW_CRITICAL if summary.new_critical else 0


def cmd_sbom(args: argparse.Namespace) -> int:
    from mirror.cli.main import settings_from_args
    from mirror.audit.sbom import export_json
    from mirror.container import Services

    services = Services(settings_from_args(args))
    try:
        document = export_json(services)
    finally:
        services.close()
    if args.output:
        from pathlib import Path

        target = Path(args.output)
        temp = target.with_name(target.name + ".tmp")
        temp.write_text(document, encoding="utf-8")
        temp.replace(target)  # a reader never sees half an SBOM
        print(f"SBOM written to {target}", file=sys.stderr)
    else:
        sys.stdout.write(document + "\n")
    return 0


class ProgressReporter:
    """A one-line bar on a terminal; a plain line every tenth of the way otherwise (logs stay short)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last_step = -1

    def __call__(self, done: int, total: int | None, project: str) -> None:
        total = max(total or done, done)
        if self.tty:
            width = 30
            filled = width * done // total if total else width
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {project[:40]:<40}")
            self.stream.flush()
            return
        step = 10 * done // total if total else 10
        if step != self._last_step or done == total:
            self._last_step = step
            print(f"audit: {done}/{total} projects ({project})", file=self.stream)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def summary_table(summary: AuditSummary) -> str:
    """The run's counts as an aligned two-column table, then what needs attention."""
    seconds = (summary.finished_at - summary.started_at).total_seconds()
    rows = [
        ("audit run", str(summary.run_id)),
        ("projects", str(summary.projects)),
        ("new findings", str(summary.new_findings)),
        ("resolved findings", str(summary.resolved_findings)),
        ("new critical", str(summary.new_critical)),
        ("new vulnerabilities", str(summary.new_vulnerabilities)),
        ("errors", str(summary.errors)),
        ("seconds", f"{seconds:.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    for title, items in (("critical", summary.critical), ("actions", summary.actions),
                         ("errors", summary.error_messages)):
        if items:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(f"  {item}" for item in items)
    return "\n".join(lines)
