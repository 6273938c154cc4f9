"""What an audit run produces: one result per project, and the run's summary.

Shared by the runner, the vulnerability checks, the dependency-confusion
sweep and the command line, so none of them imports another for its types.
A failure is recorded by *kind* ("vulnerability service unreachable (osv)")
with one example message, so a run where the same thing failed 523 times
reports one line, not 523 tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

SAMPLE = 50  # error messages and critical titles kept per run

# Failure kinds: the first words of a line the operator reads.
UPSTREAM_UNREACHABLE = "upstream unreachable"
UPSTREAM_ERROR = "upstream error"
SERVICE_UNREACHABLE = "vulnerability service unreachable"
SERVICE_ERROR = "vulnerability service error"
SERVICE_GIVEN_UP = "vulnerabilities not checked (service given up for this run)"
INTERNAL_ERROR = "internal error"
OTHER_ERROR = "error"


@dataclass
class ProjectResult:
    """What auditing one project changed, and the first thing that failed, if anything did.

    ``error`` is the message; ``error_kind`` groups it (see the kinds above).
    A result whose ``error`` was set without a kind counts as OTHER_ERROR.
    """

    project: str
    added: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    critical: list[str] = field(default_factory=list)
    new_vulnerabilities: int = 0
    actions: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    unchecked_releases: int = 0  # releases whose vulnerabilities could not be checked

    def fail(self, kind: str, message: str) -> None:
        """Record a failure; the first one stays (it usually explains the rest)."""
        if self.error is None:
            self.error = message
            self.error_kind = kind


@dataclass
class FailureCount:
    """How many projects failed one way, with the first message as the example."""

    kind: str
    count: int
    example: str

    def line(self) -> str:
        return f"{self.count} project(s): {self.kind} (first: {self.example})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "example": self.example}


@dataclass
class AuditSummary:
    """A finished run, as the CLI prints it and the API returns it."""

    run_id: int
    started_at: datetime
    finished_at: datetime
    projects: int = 0
    new_findings: int = 0
    resolved_findings: int = 0
    new_critical: int = 0
    new_vulnerabilities: int = 0
    errors: int = 0
    unchecked_releases: int = 0
    critical: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    error_messages: list[str] = field(default_factory=list)
    failures: dict[str, FailureCount] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether the run did its whole job: every project and every release checked."""
        return self.errors == 0 and self.unchecked_releases == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "complete": self.complete,
            "projects": self.projects,
            "new_findings": self.new_findings,
            "resolved_findings": self.resolved_findings,
            "new_critical": self.new_critical,
            "new_vulnerabilities": self.new_vulnerabilities,
            "errors": self.errors,
            "unchecked_releases": self.unchecked_releases,
            "critical": self.critical,
            "actions": self.actions,
            "failures": [f.to_dict() for f in self.failures.values()],
            "error_messages": self.error_messages,
        }

    def add(self, result: ProjectResult) -> None:
        self.projects += 1
        self.new_findings += len(result.added)
        self.resolved_findings += len(result.resolved)
        self.new_critical += len(result.critical)
        self.new_vulnerabilities += result.new_vulnerabilities
        self.unchecked_releases += result.unchecked_releases
        self.critical.extend(result.critical[: max(0, SAMPLE - len(self.critical))])
        self.actions.extend(result.actions[: max(0, SAMPLE - len(self.actions))])
        if result.error is not None:
            self.errors += 1
            message = f"{result.project}: {result.error}"
            if len(self.error_messages) < SAMPLE:
                self.error_messages.append(message)
            kind = result.error_kind or OTHER_ERROR
            seen = self.failures.get(kind)
            if seen is None:
                self.failures[kind] = FailureCount(kind, 1, message)
            else:
                seen.count += 1


# (projects done, projects in total or None, the project just done, projects failed so far)
Progress = Callable[[int, "int | None", str, int], None]


class AdvisoryError(ValueError):
    """An advisory directory that cannot be used at all (missing, not a directory)."""


class ServiceFailure(Exception):
    """A vulnerability service gave no usable answer; ``kind`` groups it for the run's summary.

    ``unreachable`` says whether it never answered (connection refused, DNS,
    timeout): the failures a run stops retrying after a few in a row.
    """

    def __init__(self, source: str, message: str, *, unreachable: bool) -> None:
        super().__init__(message)
        self.source = source
        self.unreachable = unreachable
        self.kind = f"{SERVICE_UNREACHABLE if unreachable else SERVICE_ERROR} ({source})"
