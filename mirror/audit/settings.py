"""The ``[audit]`` table, checked at start like every other section.

A model like the core sections (``mirror.config.Section``): an unknown key
or a wrong value stops the server or a command with one line naming
``audit.KEY`` (exit 2), before a database or a directory exists
(``mirror.sections`` runs this parser at start).  It imports nothing of the
mirror but ``mirror.config``, so checking it never drags in the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, get_args

from pydantic import Field, field_validator

from mirror.config import Section, Settings, section_from_mapping

# What a vulnerable release gets, per advisory severity (see mirror.audit.vulns).
# Advisories' own words, not the detectors' Severity: OSV and the JSON API
# say "unknown" when a record states none, and never "info".
VulnAction = Literal["annotate", "hide", "block"]
VulnSeverity = Literal["critical", "high", "medium", "low", "unknown"]
VulnService = Literal["osv", "pypi", "none"]
VulnLevel = Literal[VulnSeverity, "*"]  # "*": every severity not named
VULN_ACTIONS: tuple[str, ...] = get_args(VulnAction)
VULN_SEVERITIES: tuple[str, ...] = get_args(VulnSeverity)
VULN_SERVICES: tuple[str, ...] = get_args(VulnService)


class AuditSettings(Section):
    """The ``[audit]`` table."""

    interval_hours: float = Field(24.0, ge=0)  # 0: never scheduled
    concurrency: int = Field(4, ge=1)
    rate_per_second: float = Field(20.0, ge=0)  # upstream requests per second, all threads together; 0 = unlimited
    advisory_dir: str = ""
    vulnerability_service: VulnService = "osv"
    # "hide" (every severity) or a table such as {critical = "block", "*" = "annotate"}.
    vulnerable_action: dict[VulnLevel, VulnAction] = {"*": "annotate"}
    poll_seconds: float = Field(60.0, ge=0.01)  # how often a replica tries the lease
    # Failed queries in a row after which a run stops asking the online
    # vulnerability service (each one may cost a full timeout); the releases
    # not asked keep their previous answer and the run counts as incomplete.
    vulnerability_max_failures: int = Field(3, ge=1)

    @field_validator("advisory_dir")
    @classmethod
    def _a_directory(cls, value: str) -> str:
        if value and not Path(value).is_dir():
            raise ValueError(f"{value!r} does not exist or is not a directory")
        return value

    @field_validator("vulnerable_action", mode="before")
    @classmethod
    def _one_action_for_all(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return value
        if isinstance(value, str) and value in VULN_ACTIONS:
            return {"*": value}
        raise ValueError(f"must be one of {', '.join(VULN_ACTIONS)}, or a table of severity = action, not {value!r}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AuditSettings:
        return section_from_mapping(cls, "audit", raw)

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditSettings:
        return cls.from_mapping(settings.extra.get("audit", {}))
