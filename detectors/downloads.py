"""Download anomalies: counts that do not fit the story a name tells.

Two attacks show up in download statistics:

* *A look-alike nobody uses.*  A name that resembles a popular project but
  has almost no downloads of its own is what a typosquat looks like before
  it catches anyone; an honest project that happens to be close to a popular
  name has its own users.  Below ``few_downloads`` a month (default 1,000:
  the floor of organic use by CI systems and mirrors for a real project) the
  resemblance is reported again, now with the lack of users as evidence.
* *Rapid adoption.*  A project a few days old with thousands of downloads a
  day is either a genuine hit or a campaign: bots inflating counts to look
  trustworthy, or an install command spreading through fake tutorials and
  AI-suggested snippets.  Either way a human should look before it spreads
  further.

Statistics come from a ``DownloadStatsProvider``; a count the provider does
not know is ``None`` and every rule here skips it - unknown is never zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from detectors.corpus import PopularCorpus
from detectors.facts import DownloadStats, Finding, ProjectFacts, Severity

__all__ = [
    "DownloadStats",
    "DownloadStatsProvider",
    "DownloadsConfig",
    "SnapshotStatsProvider",
    "detect",
]

DETECTOR = "downloads"


@runtime_checkable
class DownloadStatsProvider(Protocol):
    """Where download statistics come from (a bundled snapshot, an HTTP service ...).

    ``stats`` returns ``None`` when the provider knows nothing about the
    project; implementations must not turn "not found" into zeros.
    """

    def stats(self, name: str) -> DownloadStats | None: ...


class SnapshotStatsProvider:
    """Monthly counts from the bundled popularity snapshot; unknown for everything else.

    Only projects in the snapshot have a count: a name missing from the top
    list is merely less popular than its last entry, not unused.
    """

    def __init__(self, corpus: PopularCorpus) -> None:
        self._corpus = corpus

    def stats(self, name: str) -> DownloadStats | None:
        project = self._corpus.get(name)
        if project is None or project.downloads is None:
            return None
        return DownloadStats(last_month=project.downloads)


@dataclass(frozen=True)
class DownloadsConfig:
    """Thresholds of the download rules (see the module docstring for the reasoning)."""

    few_downloads: int = 1_000
    young_project: timedelta = timedelta(days=30)
    spike_per_day: int = 5_000
    few_severity: Severity = Severity.MEDIUM
    spike_severity: Severity = Severity.MEDIUM


def detect(facts: ProjectFacts, config: DownloadsConfig, resemblances: Iterable[Finding] = ()) -> list[Finding]:
    """Download findings; ``resemblances`` are the typosquat findings for the same name."""
    stats = facts.downloads
    if stats is None or not stats.known:
        return []
    findings: list[Finding] = []
    monthly = stats.last_month
    for finding in resemblances:
        if finding.target is None or monthly is None or monthly >= config.few_downloads:
            continue
        evidence = {"last_month": monthly, "target": finding.target, "threshold": config.few_downloads}
        findings.append(
            Finding(
                DETECTOR,
                config.few_severity,
                f"only {monthly} downloads last month while resembling '{finding.target}'",
                finding.target,
                evidence,
            )
        )
        break
    if facts.first_upload is not None and facts.now - facts.first_upload < config.young_project:
        daily = stats.last_day
        weekly = stats.last_week
        spiking = (daily is not None and daily >= config.spike_per_day) or (
            weekly is not None and weekly >= 7 * config.spike_per_day
        )
        if spiking:
            age_days = (facts.now - facts.first_upload).total_seconds() / 86400
            evidence = {"last_day": daily, "last_week": stats.last_week, "age_days": round(age_days, 1)}
            findings.append(
                Finding(
                    DETECTOR,
                    config.spike_severity,
                    f"rapid adoption: {daily if daily is not None else weekly} downloads in a "
                    f"{'day' if daily is not None else 'week'} for a project {age_days:.0f} days old",
                    None,
                    evidence,
                )
            )
    return findings
