"""What a detector says: findings and their severities.

Apart from the facts (``detectors.facts``) so that code that only reports
findings, such as the content scanner in its worker process, does not load
the name index and its native libraries.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "Severity"]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that policies can say "at least high"."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """'high' -> Severity.HIGH; raises ValueError naming the allowed words."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            allowed = ", ".join(str(s) for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {allowed})") from None


@dataclass(frozen=True)
class Finding:
    """One thing a detector noticed, with the evidence a reviewer needs.

    ``target`` names the project being imitated or the internal name being
    claimed; ``release`` is set when the finding concerns one release only (a
    hold), so that a policy blocks that release rather than the project.
    ``evidence`` must stay JSON-serialisable: it is stored next to the decision.
    """

    detector: str
    severity: Severity
    title: str
    target: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    release: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (severity as its lower-case word)."""
        return {
            "detector": self.detector,
            "severity": str(self.severity),
            "title": self.title,
            "target": self.target,
            "release": self.release,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """The finding ``to_dict`` gave (read back from a store or another process)."""
        return cls(
            detector=str(data["detector"]), severity=Severity.parse(str(data["severity"])), title=str(data["title"]),
            target=data.get("target"), evidence=dict(data.get("evidence") or {}), release=data.get("release"),
        )
