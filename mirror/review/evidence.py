"""The facts a reviewer needs at a glance, pulled out of stored findings.

Detectors keep their evidence as free-form JSON (each detector knows its
own facts best).  This module only picks out the few things the project
page shows first: which popular or internal project the name imitates and
how many downloads each side has, ownership changes, ages, vulnerabilities.
Everything else is still shown in full under each finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from mirror.clock import parse_utc
from mirror.review.namediff import Aligned, align
from mirror.review.schemas import FindingOut

_TARGET_WORDS = ("target", "popular", "imitated", "original")
_VULN_WORDS = ("vuln", "advisor", "audit", "cve", "osv")
_OWNER_WORDS = ("maintainer", "owner", "ownership")


@dataclass(frozen=True)
class Resemblance:
    """"This name looks like <target>": the transformation, in the finding's own words."""

    target: str
    transformation: str
    severity: str
    detector: str
    target_downloads: int | None
    own_downloads: int | None
    candidate: str = ""

    @property
    def aligned(self) -> Aligned:
        """The two names column by column, the differing characters marked."""
        return align(self.candidate, self.target)


def _downloads(evidence: Mapping[str, Any], *, of_target: bool) -> int | None:
    """A download count from evidence keys such as ``target_downloads`` or ``downloads.last_month``."""
    best: int | None = None
    for key, value in _flatten(evidence):
        lowered = key.lower()
        if "download" not in lowered:
            continue
        if any(word in lowered for word in _TARGET_WORDS) != of_target:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        # Prefer the widest window (a month over a day) when several are given.
        if best is None or value > best:
            best = int(value)
    return best


def _flatten(evidence: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in evidence.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def resemblances(findings: Iterable[FindingOut]) -> list[Resemblance]:
    """One line per imitated project, from open findings that name a target."""
    seen: set[str] = set()
    result = []
    for finding in findings:
        if finding.resolved_at is not None or not finding.target or finding.target in seen:
            continue
        seen.add(finding.target)
        result.append(
            Resemblance(
                target=finding.target,
                transformation=finding.title,
                severity=finding.severity,
                detector=finding.detector,
                target_downloads=_downloads(finding.evidence, of_target=True),
                own_downloads=_downloads(finding.evidence, of_target=False),
                candidate=finding.project,
            )
        )
    return result


def _about(finding: FindingOut, words: tuple[str, ...]) -> bool:
    return any(word in finding.detector.lower() for word in words)


def vulnerabilities(findings: Iterable[FindingOut]) -> list[FindingOut]:
    return [f for f in findings if _about(f, _VULN_WORDS)]


def ownership_findings(findings: Iterable[FindingOut]) -> list[FindingOut]:
    return [f for f in findings if _about(f, _OWNER_WORDS)]


def first_upload(snapshot: Mapping[str, Any] | None) -> datetime | None:
    return parse_utc((snapshot or {}).get("first_upload"))


def evidence_rows(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Evidence as (key, text) pairs for a definition list; nested values flattened."""
    rows = []
    for key, value in _flatten(evidence):
        if isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value[:50]) + (" …" if len(value) > 50 else "")
        elif isinstance(value, bool) or value is None:
            text = str(value).lower()
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        rows.append((key, text if len(text) <= 1000 else text[:1000] + "…"))
    return rows


_WHERE = {"start": "at the start of a word", "end": "at the end of a word", "inner": "inside a word"}
_KIND = {
    "popular": "a popular project",
    "ml": "a curated machine-learning project",
    "internal": "one of your internal projects",
    "alias": "a name people use for another project",
}


def explain(finding: FindingOut) -> list[str]:
    """The finding's evidence as sentences a reviewer reads, for the detectors whose facts are known.

    Unknown detectors (or keys) get no sentence here; the raw evidence is
    still shown beside it, so nothing recorded is ever hidden.
    """
    e = finding.evidence
    if finding.detector.startswith(("content.", "provenance.")):
        return _content_words(e)
    if finding.detector == "typosquat" and isinstance(e.get("target"), str):
        return _typosquat_words(e)
    if finding.detector == "downloads" and isinstance(e.get("last_month"), int):
        threshold = e.get("threshold")
        below = f", below the {threshold:,} a month an established project has" if isinstance(threshold, int) else ""
        return [f"{e['last_month']:,} downloads last month{below}."]
    if finding.detector == "confusion" and isinstance(e.get("internal"), str):
        upstream = "has a project under this name" if e.get("exists_upstream") else "has no project under this name"
        return [f"The name matches the internal name {e['internal']} ({e.get('match', 'match')}); the public index {upstream}."]
    if "age_hours" in e and isinstance(e.get("first_upload"), str):
        return [f"First uploaded {_iso_words(e['first_upload'])}, {_hours(e['age_hours'])} before it was screened."]
    if "cooldown_hours" in e and isinstance(e.get("uploaded_at"), str):
        return [
            f"Uploaded {_iso_words(e['uploaded_at'])}; held for the {_hours(e['cooldown_hours'])} cooldown"
            + (f", until {_iso_words(e['held_until'])}." if isinstance(e.get("held_until"), str) else ".")
        ]
    if isinstance(e.get("added"), list) or isinstance(e.get("removed"), list):
        parts = []
        if e.get("added"):
            parts.append("added: " + ", ".join(str(v) for v in e["added"][:20]))
        if e.get("removed"):
            parts.append("removed: " + ", ".join(str(v) for v in e["removed"][:20]))
        return ["Owners or e-mails " + "; ".join(parts) + "."] if parts else []
    return []


def _typosquat_words(e: Mapping[str, Any]) -> list[str]:
    target = e["target"]
    words = [f"The name looks like {target}: {e['transformation']}." if e.get("transformation") else
             f"The name looks like {target}."]
    edits, where = e.get("edits"), _WHERE.get(str(e.get("where")))
    if isinstance(edits, int):
        words.append(f"{edits} edit{'' if edits == 1 else 's'} apart" + (f", {where}." if where else "."))
    kind = _KIND.get(str(e.get("target_kind")))
    if kind:
        rank = e.get("target_rank")
        downloads = e.get("target_downloads")
        detail = []
        if isinstance(rank, int):
            detail.append(f"#{rank:,} by downloads")
        if isinstance(downloads, int):
            detail.append(f"{downloads:,} downloads a month")
        words.append(f"{target} is {kind}" + (f" ({', '.join(detail)})." if detail else "."))
    if isinstance(e.get("alias"), str):
        words.append(f"Matched through the alias {e['alias']}.")
    score = e.get("score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        words.append(f"Resemblance score {score:.2f} (higher means a closer look-alike).")
    return words


def _hours(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if value >= 48:
        return f"{value / 24:.0f} days"
    return f"{value:g} hours"


def _iso_words(value: str) -> str:
    parsed = parse_utc(value)
    return parsed.strftime("%Y-%m-%d %H:%M UTC") if parsed else value


def beyond_reason(titles: Iterable[str], reason: str) -> list[str]:
    """Finding titles the decision's reason does not already say (the queue shows each sentence once)."""
    return [t for t in titles if t and t not in reason]


def _content_words(e: Mapping[str, Any]) -> list[str]:
    """Where in the release, which rule, what the bytes say, and whether it is new."""
    words = []
    where = " in ".join(str(part) for part in (e.get("file"), e.get("artifact")) if part)
    if where:
        words.append(f"Found in {where}" + (f" by the rule {e['rule']}." if e.get("rule") else "."))
    if e.get("new_since"):
        words.append(f"New since {e['new_since']}, the last release the mirror approved.")
    elif "new_since" in e:
        words.append("A first release: judged on its own, by the high-confidence rules only.")
    if e.get("excerpt"):
        words.append(f"Excerpt: {e['excerpt']}")
    return words

