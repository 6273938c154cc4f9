"""The ``[audit]`` table: parsed and validated with no dependency on the rest of the mirror.

It imports nothing from ``mirror`` so that ``mirror.config`` can check the
table while it loads the settings, before a database or a storage directory
is created, and a mistake stops the start with one line naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# What a vulnerable release gets, per severity (see mirror.audit.vulns).
VULN_ACTIONS = ("annotate", "hide", "block")
VULN_SEVERITIES = ("critical", "high", "medium", "low", "unknown")
VULN_SERVICES = ("osv", "pypi", "none")


@dataclass(frozen=True)
class AuditSettings:
    """The ``[audit]`` table."""

    interval_hours: float = 24.0
    concurrency: int = 4
    rate_per_second: float = 20.0  # upstream requests per second, all threads together; 0 = unlimited
    advisory_dir: str = ""
    vulnerability_service: str = "osv"  # osv | pypi | none
    vulnerable_action: Mapping[str, str] = field(default_factory=lambda: {"*": "annotate"})
    poll_seconds: float = 60.0  # how often a replica tries the lease
    # Failed queries in a row after which a run stops asking the online
    # vulnerability service (each one may cost a full timeout); the releases
    # not asked keep their previous answer and the run counts as incomplete.
    vulnerability_max_failures: int = 3

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "AuditSettings":
        """Validate an ``[audit]`` table; ValueError("audit.key: why") names the bad key."""
        known = set(cls.__dataclass_fields__)
        for key in raw:
            if key not in known:
                raise ValueError(f"audit.{key}: unknown key")

        def number(key: str, default: float, *, minimum: float, integer: bool = False) -> Any:
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise ValueError(f"audit.{key}: must be a number >= {minimum:g}")
            if integer and int(value) != value:
                raise ValueError(f"audit.{key}: must be a whole number")
            return int(value) if integer else float(value)

        service = raw.get("vulnerability_service", "osv")
        if service not in VULN_SERVICES:
            raise ValueError('audit.vulnerability_service: must be "osv", "pypi" or "none"')
        advisory_dir = raw.get("advisory_dir", "")
        if not isinstance(advisory_dir, str):
            raise ValueError("audit.advisory_dir: must be a directory path")
        if advisory_dir and not Path(advisory_dir).is_dir():
            raise ValueError(f"audit.advisory_dir: {advisory_dir!r} does not exist or is not a directory")
        return cls(
            interval_hours=number("interval_hours", 24.0, minimum=0),
            concurrency=number("concurrency", 4, minimum=1, integer=True),
            rate_per_second=number("rate_per_second", 20.0, minimum=0),
            advisory_dir=advisory_dir,
            vulnerability_service=service,
            vulnerable_action=parse_vulnerable_action(raw.get("vulnerable_action", "annotate")),
            poll_seconds=number("poll_seconds", 60.0, minimum=0.01),
            vulnerability_max_failures=number("vulnerability_max_failures", 3, minimum=1, integer=True),
        )


def parse_vulnerable_action(raw: Any, key: str = "audit.vulnerable_action") -> dict[str, str]:
    """``"hide"`` (every severity) or a table such as ``{critical = "block", "*" = "annotate"}``."""
    if isinstance(raw, str):
        if raw not in VULN_ACTIONS:
            raise ValueError(f"{key}: must be one of {', '.join(VULN_ACTIONS)}, or a table of severity = action")
        return {"*": raw}
    if isinstance(raw, Mapping):
        table = {}
        for level, action in raw.items():
            if level != "*" and level not in VULN_SEVERITIES:
                raise ValueError(f"{key}.{level}: severity must be one of {', '.join(VULN_SEVERITIES)} or \"*\"")
            if action not in VULN_ACTIONS:
                raise ValueError(f"{key}.{level}: action must be one of {', '.join(VULN_ACTIONS)}")
            table[str(level)] = str(action)
        return table
    raise ValueError(f"{key}: must be one of {', '.join(VULN_ACTIONS)}, or a table of severity = action")
