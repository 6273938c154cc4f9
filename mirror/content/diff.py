"""Which behaviours of a release are news: the diff against the last approved release.

Absolute scores are useless on real packages (every popular project
downloads things and starts processes somewhere); what separates a trojan
from a clean upgrade is that the trojan *adds* high-risk behaviour.  So a
behaviour already present in the same file of the previous release is
context (kept in the evidence for the reviewer, not a finding); one that is
new in its file but existed elsewhere in the previous release (code moved)
counts one severity step lower; one that is new to the package is a finding
at its rule's severity.  Files are matched by normalised path and, for
renames, by content hash.  Without a previous release only high-confidence
rules give findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from detectors.findings import Finding, Severity

from mirror.content.evidence import finding
from mirror.content.inventory import SEVERITY_ORDER, risk_of

__all__ = ["PreviousFiles", "behaviour_findings"]

class PreviousFiles:
    """The previous artifact's files, indexed by path, by hash, and by behaviour."""

    def __init__(self, artifact: Mapping[str, Any] | None) -> None:
        files: Mapping[str, Mapping[str, Any]] = (artifact or {}).get("files", {})
        self.present = artifact is not None
        self.by_path = dict(files)
        self.by_hash: dict[str, str] = {}
        self.behaviours: set[str] = set()
        for path, record in files.items():
            self.by_hash.setdefault(str(record.get("sha256")), path)
            self.behaviours.update(str(b.get("behaviour")) for b in record.get("behaviours", []))

    def match(self, path: str, sha256: str) -> tuple[str | None, Mapping[str, Any] | None]:
        """(previous path, previous record) of a file: same path, else same content (a rename)."""
        if path in self.by_path:
            return path, self.by_path[path]
        renamed = self.by_hash.get(sha256)
        if renamed is not None:
            return renamed, self.by_path[renamed]
        return None, None


def behaviour_findings(
    file: str,
    behaviours: Sequence[Mapping[str, Any]],
    previous: PreviousFiles,
    previous_record: Mapping[str, Any] | None,
    previous_path: str | None,
    *,
    release: str | None,
    previous_version: str | None,
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """(findings, context) for one file's behaviours."""
    findings: list[Finding] = []
    context: list[dict[str, Any]] = []
    before = {str(b.get("behaviour")) for b in (previous_record or {}).get("behaviours", [])}
    old_risk = risk_of((previous_record or {}).get("behaviours", []))
    new_risk = risk_of(behaviours)
    for b in behaviours:
        name = str(b["behaviour"])
        level = SEVERITY_ORDER.get(str(b["severity"]), 0)
        if level == 0:
            continue
        if not previous.present:
            if b.get("confidence") != "high":
                context.append({"file": file, **b, "why": "low-confidence rule on a first release"})
                continue
            since = None
        elif name in before:
            context.append({"file": file, **b, "why": f"already present in {previous_path or file} in {previous_version}"})
            continue
        elif name in previous.behaviours:
            level -= 1
            if level <= 0:
                context.append({"file": file, **b, "why": f"present elsewhere in {previous_version}"})
                continue
            since = previous_version
        else:
            since = previous_version
        detector = "content." + name.split(":", 1)[0]
        extra: dict[str, Any] = {"behaviour": name, "description": b.get("description", "")}
        if previous.present:
            extra["risk"] = {"before": old_risk if previous_record is not None else "absent", "after": new_risk}
            if previous_path and previous_path != file:
                extra["renamed_from"] = previous_path
            if level < SEVERITY_ORDER.get(str(b["severity"]), 0):
                extra["note"] = f"behaviour existed in another file of {previous_version}"
        findings.append(
            finding(detector, Severity(level), f"{b.get('description') or name} in {file}", file=file,
                    rule=str(b.get("rule", name)), quote=str(b.get("excerpt", "")), release=release,
                    new_since=since, **extra)
        )
    if findings and context:
        # What the reviewer should also know about this file: behaviour that was already there.
        present = sorted({str(c["behaviour"]) for c in context})
        findings = [Finding(f.detector, f.severity, f.title, f.target, {**f.evidence, "already_present": present}, f.release)
                    for f in findings]
    return findings, context
