"""Run the detectors: facts in, findings out.

One entry point per use: the name-only detectors (what ``indexguard check``
can answer offline), all project detectors (first sight of a project, and
re-audits), and the per-release detectors (each new release on a refreshed
page).  Each returns findings most severe first.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from detectors import age, confusion, corpus_cache, downloads, impersonation, maintainers, typosquat
from detectors.corpus import PopularCorpus, load_ml_projects
from detectors.facts import Finding, ProjectFacts, ReleaseFacts
from detectors.names import InvalidName, canonical
from detectors.similarity import NameForms
from detectors.vocabulary import Vocabulary

__all__ = ["DetectorConfig", "load_corpus", "run_all", "run_name_detectors", "run_release_detectors"]


@dataclass(frozen=True)
class DetectorConfig:
    """Every detector's thresholds, each with defaults documented in its module."""

    typosquat: typosquat.TyposquatConfig = field(default_factory=typosquat.TyposquatConfig)
    confusion: confusion.ConfusionConfig = field(default_factory=confusion.ConfusionConfig)
    maintainers: maintainers.MaintainersConfig = field(default_factory=maintainers.MaintainersConfig)
    age: age.AgeConfig = field(default_factory=age.AgeConfig)
    downloads: downloads.DownloadsConfig = field(default_factory=downloads.DownloadsConfig)
    impersonation: impersonation.ImpersonationConfig = field(default_factory=impersonation.ImpersonationConfig)
    popular_file: Path | None = None
    protected: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> DetectorConfig:
        """Validate a TOML ``[detectors]`` table; ``ValueError`` names the bad key.

        Keys (all optional): ``popular_file`` (a ``project,download_count``
        CSV replacing the bundled list), ``protected`` (more names to protect,
        like the curated ML list), ``typosquat_threshold``,
        ``typosquat_high_threshold``, ``internal_threshold`` (scores in
        [0, 1]), ``allowlist`` (list of "candidate target" pairs),
        ``young_project_days``, ``release_cooldown_hours``, ``few_downloads``
        and ``spike_per_day``.
        """
        if not isinstance(table, Mapping):
            raise ValueError("detectors: must be a table")
        known = {
            "popular_file", "protected", "typosquat_threshold", "typosquat_high_threshold",
            "internal_threshold", "allowlist", "young_project_days", "release_cooldown_hours",
            "few_downloads", "spike_per_day",
        }
        for key in table:
            if key not in known:
                raise ValueError(f"detectors.{key}: unknown key (expected one of: {', '.join(sorted(known))})")

        def number(key: str, default: float, *, upper: float | None = None) -> float:
            value = table.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"detectors.{key}: must be a number >= 0, got {value!r}")
            if upper is not None and value > upper:
                raise ValueError(f"detectors.{key}: must be <= {upper}, got {value!r}")
            return value

        base = cls()
        squat = base.typosquat
        pairs = table.get("allowlist", [])
        if not isinstance(pairs, list) or not all(isinstance(p, str) for p in pairs):
            raise ValueError('detectors.allowlist: must be a list of "candidate target" strings')
        try:
            extra_pairs = typosquat.load_allowlist("\n".join(pairs))
        except ValueError as error:
            raise ValueError(f"detectors.allowlist: {error}") from None
        squat = replace(
            squat,
            threshold=number("typosquat_threshold", squat.threshold, upper=1),
            high_threshold=number("typosquat_high_threshold", squat.high_threshold, upper=1),
            internal_threshold=number("internal_threshold", squat.internal_threshold, upper=1),
            allowlist=squat.allowlist | extra_pairs,
        )
        ages = replace(
            base.age,
            young_project=timedelta(days=number("young_project_days", base.age.young_project.days)),
            cooldown=timedelta(hours=number("release_cooldown_hours", base.age.cooldown.total_seconds() / 3600)),
        )
        counts = replace(
            base.downloads,
            few_downloads=int(number("few_downloads", base.downloads.few_downloads)),
            spike_per_day=int(number("spike_per_day", base.downloads.spike_per_day)),
        )
        popular = table.get("popular_file")
        if popular is not None:
            if not isinstance(popular, str) or not popular:
                raise ValueError("detectors.popular_file: must be a path to a CSV file")
            if not Path(popular).is_file():
                raise ValueError(f"detectors.popular_file: {popular} is not a file")
        protected = table.get("protected", [])
        if not isinstance(protected, list) or not all(isinstance(p, str) for p in protected):
            raise ValueError("detectors.protected: must be a list of project names")
        try:
            protected_names = tuple(canonical(p) for p in protected)
        except InvalidName as error:
            raise ValueError(f"detectors.protected: {error}") from None
        return cls(
            typosquat=squat,
            age=ages,
            downloads=counts,
            popular_file=Path(popular) if popular else None,
            protected=protected_names,
        )


def load_corpus(config: DetectorConfig | None = None, *, cache_dir: Path | None = None) -> PopularCorpus:
    """The popular corpus ``config`` asks for: the bundled one or the operator's CSV.

    The curated ML list and ``config.protected`` are added in both cases.
    Building takes about a second; callers keep the result for the process.
    With ``cache_dir`` the built index is kept there in a file named by a
    hash of every input (``detectors.corpus_cache``) and memory-mapped, so
    a later process starts in milliseconds and processes share its pages;
    which directory is the caller's choice.
    """
    config = config or DetectorConfig()
    extra = list(load_ml_projects()) + list(config.protected)
    if cache_dir is None:
        if config.popular_file is None and not config.protected:
            return PopularCorpus.bundled()
        if config.popular_file is None:
            with _bundled_popular().open("r", encoding="utf-8", newline="") as handle:
                return PopularCorpus.from_csv(handle, extra=extra)
        return PopularCorpus.from_csv(config.popular_file, extra=extra)
    if config.popular_file is None:
        rows = _bundled_popular().read_bytes()
    else:
        rows = Path(config.popular_file).read_bytes()
    aliases = resources.files("detectors").joinpath("data/aliases.txt").read_bytes()
    stamp = corpus_cache.fingerprint(
        [rows, "\n".join(extra), aliases, Vocabulary.bundled().to_bytes(), repr(sorted(_INDEX_OPTIONS.items()))]
    )

    def build(stamp: str) -> PopularCorpus:
        text = io.StringIO(rows.decode("utf-8"), newline="")
        return PopularCorpus.from_csv(text, extra=extra, fingerprint=stamp, **_INDEX_OPTIONS)

    return corpus_cache.load_or_build(PopularCorpus, Path(cache_dir), stamp, build)


# The corpus's index options (its defaults): part of a cached corpus's fingerprint.
_INDEX_OPTIONS = {"two_edit_min_length": 5, "two_edit_min_downloads": 0}


def _bundled_popular() -> Any:
    return resources.files("detectors").joinpath("data/popular_packages.csv")


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity, f.detector, f.title))


def run_name_detectors(facts: ProjectFacts, config: DetectorConfig | None = None) -> list[Finding]:
    """Findings that depend on the name alone: dependency confusion and typosquats.

    Raises ``InvalidName`` when ``facts.name`` is not a valid project name.
    """
    config = config or DetectorConfig()
    forms = NameForms.of(facts.name)
    findings = confusion.detect(facts, config.confusion, forms)
    findings += typosquat.detect(facts, config.typosquat, forms)
    if len(findings) > 1:
        findings = _ordered(findings)
    return findings


def run_all(facts: ProjectFacts, config: DetectorConfig | None = None) -> list[Finding]:
    """Name detectors plus those that need upstream facts (owners, age, downloads, copied metadata)."""
    config = config or DetectorConfig()
    name_findings = run_name_detectors(facts, config)
    findings = list(name_findings)
    findings += maintainers.detect(facts, config.maintainers)
    findings += age.detect(facts, config.age)
    resemblances = [f for f in name_findings if f.detector == typosquat.DETECTOR]
    findings += downloads.detect(facts, config.downloads, resemblances)
    findings += impersonation.detect(facts, config.impersonation, resemblances)
    return _ordered(findings)


def run_release_detectors(release: ReleaseFacts, config: DetectorConfig | None = None) -> list[Finding]:
    """Findings for one release: the cooldown and uploads after an ownership change."""
    config = config or DetectorConfig()
    findings = age.detect_release(release, config.age)
    findings += maintainers.detect_release(release, config.maintainers)
    return _ordered(findings)
