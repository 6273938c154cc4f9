"""Typosquats: names made to be mistaken for a popular, curated or internal project.

The attack: publish ``reqeusts`` or ``python-requests`` and wait for a typing
slip, a wrong line in a requirements file, or an assistant that misremembers
a name.  The detector finds the protected names within reach of the
requested one (``detectors.corpus``), explains each relation
(``detectors.similarity``) and scores it.

Why the score looks the way it does
-----------------------------------
The score is a logistic model over a few features that generalise beyond any
one name, with weights set from a labelled sample of real malicious names and
of honest popular names (the evaluation in ``benchmarks/detectors_eval.py``):

* *What kind of edit*: swapped, doubled or dropped letters inside a word are
  slips of the hand and almost never how honest projects are named, while a
  version digit, a plural 's', a new separate word or an extra first letter
  ('cchardet', 'aresponses') is how real families of projects are named.
* *How long the target is*: every short name has dozens of honest neighbours
  one edit away, so a short target needs a stronger kind of edit.
* *How popular the target is*: an attacker's payoff grows with the target's
  installs, so each tenfold of monthly downloads raises the odds.
* *Whether the changed word is a word other projects use*: 'identity' next to
  'identify' is a real word, 'reqeusts' is not.
* *Popularity asymmetry*: a candidate that is itself more popular than the
  target is not a squat of it; one that is in the popular list at all is
  reported only at low severity.

The default threshold keeps false alarms on honest popular names at about
half a percent; thresholds and weights live in ``TyposquatConfig``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from detectors.corpus import NameIndex, Project
from detectors.facts import Finding, ProjectFacts, Severity
from detectors.names import tokens
from detectors.similarity import TYPO_RANK, NameForms, Relation, relate

__all__ = [
    "Match",
    "TyposquatConfig",
    "detect",
    "find_matches",
    "load_allowlist",
    "ordinal",
]

DETECTOR = "typosquat"

# Weight of each relation kind, by where in a word the edit fell.  Keys are
# "kind:where" or "kind"; see the module docstring for why they are ordered
# the way they are.
DEFAULT_KIND_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "lookalike": 3.5,
        "repeat": 4.0,
        "transposition:inner": 3.4,
        "transposition:start": 2.1,
        "transposition:end": 2.2,
        "doubling": 2.0,
        "omission:inner": 2.3,
        "omission:start": 0.9,
        "omission:end": 0.9,
        "keyboard:inner": 1.7,
        "keyboard:end": 1.2,
        "keyboard:start": -0.5,
        "insertion:inner": 1.8,
        "insertion:end": 1.1,
        "insertion:start": -1.4,
        "bitflip:inner": 0.1,
        "bitflip:end": 0.3,
        "bitflip:start": -0.3,
        "substitution:inner": -0.3,
        "substitution:end": 0.0,
        "substitution:start": -1.7,
        "plural": 0.7,
        "compound": -0.2,
        "separator": -0.5,
        "reorder": -0.3,
        "affix": -0.3,
        "affix-edit:inner": 0.0,
        "affix-edit:end": -0.5,
        "affix-edit:start": -0.8,
        "version": -2.3,
        "two-edits:likely": -1.4,
        "two-edits:possible": -1.8,
        "two-edits:unlikely": -3.1,
        "affix-two-edits:likely": -1.7,
        "affix-two-edits:possible": -3.3,
        "affix-two-edits:unlikely": -4.0,
    }
)

# Weight by the length of the target form the edits were counted on.
DEFAULT_LENGTH_WEIGHTS: tuple[float, ...] = (-2.6, -2.6, -2.6, -2.6, -2.1, -1.6, -0.6, 0.0, 0.6, 0.9, 1.3, 1.7)

_STRONG_KINDS = frozenset({"repeat", "transposition", "omission", "doubling"})


@dataclass(frozen=True)
class TyposquatConfig:
    """Thresholds and weights of the typosquat score (see the module docstring).

    ``threshold``: score from which a popular or curated target is reported
    (severity medium, high from ``high_threshold``).  ``internal_threshold``:
    score from which an internal target is reported (always critical: the
    list is short and a near miss of an internal name has no honest reason).
    ``unknown_downloads``: monthly downloads assumed for a curated name without
    a count.  ``allowlist``: (candidate, target) pairs never reported.
    """

    threshold: float = 0.45
    high_threshold: float = 0.9
    internal_threshold: float = 0.1
    intercept: float = -1.86
    kind_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_KIND_WEIGHTS)
    length_weights: tuple[float, ...] = DEFAULT_LENGTH_WEIGHTS
    popularity_weight: float = 1.29
    popularity_pivot: float = 7.0
    known_word_weight: float = -1.64
    strong_short_weight: float = 1.17
    unknown_downloads: int = 10_000_000
    allowlist: frozenset[tuple[str, str]] = field(default_factory=lambda: load_allowlist())

    def __post_init__(self) -> None:
        for label in ("threshold", "high_threshold", "internal_threshold"):
            value = getattr(self, label)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"typosquat {label} must be within [0, 1], got {value}")


@dataclass(frozen=True)
class Match:
    """One protected name the candidate imitates, with the explanation and score."""

    target: Project
    relation: Relation
    score: float

    @property
    def description(self) -> str:
        """'one transposition ('ue' to 'eu') from 'requests' (7th most downloaded)'."""
        text = f"{self.relation.words} from '{self.target.name}'"
        if self.target.kind == "internal":
            return f"{self.relation.words} from internal project '{self.target.name}'"
        if self.target.rank is not None:
            return f"{text} ({ordinal(self.target.rank)} most downloaded)"
        return f"{text} (a protected ML/AI project)" if self.target.kind == "ml" else text


def ordinal(number: int) -> str:
    """1 -> '1st', 12 -> '12th', 23 -> '23rd'."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _kind_key(relation: Relation) -> str:
    if relation.kind in ("two-edits", "affix-two-edits"):
        typo = sum(TYPO_RANK.get(kind, 0) for kind in relation.edits)
        level = "likely" if typo >= 10 else "possible" if typo >= 7 else "unlikely"
        return f"{relation.kind}:{level}"
    return f"{relation.kind}:{relation.where}"


def score(
    cand: NameForms,
    target: Project,
    target_forms: NameForms,
    relation: Relation,
    vocabulary: frozenset[str],
    config: TyposquatConfig,
) -> float:
    """Probability-like score in (0, 1) that ``cand`` was made to imitate ``target``."""
    weights = config.kind_weights
    key = _kind_key(relation)
    logit = config.intercept + weights.get(key, weights.get(relation.kind, 0.0))
    lengths = config.length_weights
    logit += lengths[min(relation.length, len(lengths) - 1)]
    logit += _popularity_logit(target, config)
    target_words = set(tokens(target_forms.canonical))
    changed = [w for w in tokens(cand.canonical) if w not in target_words]
    if changed and all(w in vocabulary for w in changed):
        logit += config.known_word_weight
    if relation.length <= 6 and relation.kind in _STRONG_KINDS:
        logit += config.strong_short_weight
    return 1.0 / (1.0 + math.exp(-logit))


def find_matches(
    name: str | NameForms,
    index: NameIndex,
    config: TyposquatConfig,
    *,
    minimum: float = 0.0,
) -> list[Match]:
    """Every protected name in ``index`` that ``name`` may imitate, best first.

    ``name`` may be given as its precomputed ``NameForms`` when it is checked
    against several indexes.

    Applies the allowlist and popularity asymmetry but no threshold beyond
    ``minimum``, so that benchmarks can sweep it.  Raises ``InvalidName``.
    """
    cand = name if isinstance(name, NameForms) else NameForms.of(name)
    own = index.get_canonical(cand.canonical)
    floor = math.log(minimum / (1.0 - minimum)) if 0.0 < minimum < 1.0 else -math.inf
    matches: list[Match] = []
    for ident in index.candidates(cand):
        target = index.projects[ident]
        if target.name == cand.canonical or (cand.canonical, target.name) in config.allowlist:
            continue
        if own is not None and _at_least_as_popular(own, target):
            continue
        target_forms = index.forms[ident]
        relation = relate(cand, target_forms, two_edits_too=_two_edits_can_matter(target, target_forms, floor, config))
        if relation is None:
            continue
        value = score(cand, target, target_forms, relation, index.words, config)
        if value >= minimum:
            matches.append(Match(target, relation, value))
    matches.sort(key=lambda m: (-m.score, -(m.target.downloads or 0), m.target.name))
    return matches


def _popularity_logit(target: Project, config: TyposquatConfig) -> float:
    if target.kind == "internal":
        return 0.0
    downloads = target.downloads if target.downloads is not None else config.unknown_downloads
    return config.popularity_weight * (math.log10(max(downloads, 1)) - config.popularity_pivot)


def _two_edits_can_matter(target: Project, forms: NameForms, floor: float, config: TyposquatConfig) -> bool:
    """Whether a two-edit relation to ``target`` could score at least ``floor`` (a logit).

    Explaining two edits is the one costly step; skipping it where even the
    most typo-like pair could not reach the threshold keeps checks fast.
    """
    if floor == -math.inf:
        return True
    weights = config.kind_weights
    best_kind = max((v for k, v in weights.items() if "two-edits" in k), default=0.0)
    lengths = config.length_weights
    best_length = lengths[min(len(forms.compact), len(lengths) - 1)]
    bonus = max(config.strong_short_weight, 0.0)
    return config.intercept + best_kind + best_length + bonus + _popularity_logit(target, config) >= floor


def _at_least_as_popular(own: Project, target: Project) -> bool:
    if own.downloads is None or target.downloads is None:
        return own.rank is not None and target.rank is not None and own.rank <= target.rank
    return own.downloads >= target.downloads


def detect(facts: ProjectFacts, config: TyposquatConfig, forms: NameForms | None = None) -> list[Finding]:
    """Findings for the requested name against internal names and the popular corpus.

    An internal name is the organisation's own project and is not checked
    against others (the dependency-confusion detector guards it instead).
    ``forms`` are the name's precomputed forms, when the caller has them.
    """
    findings: list[Finding] = []
    internal = facts.internal
    forms = forms or NameForms.of(facts.name)
    name = forms.canonical
    if name in internal.names:
        return findings
    if internal.index is not None and len(internal.index):
        best = find_matches(forms, internal.index, config, minimum=config.internal_threshold)
        if best:
            findings.append(_finding(name, best[0], Severity.CRITICAL, facts))
    if facts.corpus is not None:
        best = find_matches(forms, facts.corpus, config, minimum=config.threshold)
        if best:
            match = best[0]
            severity = Severity.HIGH if match.score >= config.high_threshold else Severity.MEDIUM
            if facts.corpus.get(name) is not None:
                severity = Severity.LOW  # both are established projects
            findings.append(_finding(name, match, severity, facts))
    return findings


def _finding(name: str, match: Match, severity: Severity, facts: ProjectFacts) -> Finding:
    target = match.target
    evidence = {
        "candidate": name,
        "target": target.name,
        "target_kind": target.kind,
        "target_rank": target.rank,
        "target_downloads": target.downloads,
        "transformation": match.relation.words,
        "relation": match.relation.kind,
        "where": match.relation.where,
        "edits": match.relation.distance,
        "score": round(match.score, 4),
    }
    if facts.corpus is not None:
        own = facts.corpus.get(name)
        if own is not None:
            evidence["candidate_downloads"] = own.downloads
    return Finding(
        detector=DETECTOR,
        severity=severity,
        title=match.description,
        target=target.name,
        evidence=evidence,
    )


def load_allowlist(text: str | None = None) -> frozenset[tuple[str, str]]:
    """(candidate, target) pairs from the allowlist format; the bundled list by default."""
    if text is None:
        return _bundled_allowlist()
    pairs = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if len(line) != 2:
            raise ValueError(f"allowlist line {number}: expected 'candidate target', got {raw.strip()!r}")
        pairs.add((NameForms.of(line[0]).canonical, NameForms.of(line[1]).canonical))
    return frozenset(pairs)


@functools.cache
def _bundled_allowlist() -> frozenset[tuple[str, str]]:
    text = resources.files("detectors").joinpath("data/typosquat_allowlist.txt").read_text(encoding="utf-8")
    return load_allowlist(text)
