"""The result of screening a release (or one of its files), ready to store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.findings import Finding, Severity

__all__ = ["ArtifactReport", "ReleaseReport"]


@dataclass(frozen=True)
class ArtifactReport:
    """One distribution file: its findings, its inventory entry and what scanning it cost."""

    filename: str
    findings: tuple[Finding, ...]
    inventory: dict[str, Any]
    context: tuple[dict[str, Any], ...] = ()
    scanned_bytes: int = 0
    files_scanned: int = 0
    files_reused: int = 0
    complete: bool = True


@dataclass(frozen=True)
class ReleaseReport:
    """All files of a release.

    ``inventory`` is the JSON value to store and pass as
    ``previous_inventory`` when the next release is screened;
    ``ruleset_version`` must be stored with the result (the re-audit
    re-scans when it changes).  ``context`` lists behaviours that were
    already present before: shown to a reviewer, not findings.
    """

    findings: tuple[Finding, ...]
    inventory: dict[str, Any]
    ruleset_version: str
    scanned_bytes: int
    seconds: float
    artifacts: tuple[ArtifactReport, ...] = field(default_factory=tuple)
    context: tuple[dict[str, Any], ...] = ()

    @property
    def complete(self) -> bool:
        return all(a.complete for a in self.artifacts)

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "inventory": self.inventory,
            "ruleset_version": self.ruleset_version,
            "scanned_bytes": self.scanned_bytes,
            "seconds": round(self.seconds, 4),
            "complete": self.complete,
            "context": list(self.context),
            "artifacts": [
                {
                    "filename": a.filename,
                    "scanned_bytes": a.scanned_bytes,
                    "files_scanned": a.files_scanned,
                    "files_reused": a.files_reused,
                    "complete": a.complete,
                }
                for a in self.artifacts
            ],
        }
