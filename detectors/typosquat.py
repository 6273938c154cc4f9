"""Typosquats: names made to be mistaken for a popular, curated or internal project.

The attack: publish ``reqeusts`` or ``python-requests`` and wait for a typing
slip, a wrong line in a requirements file, or an assistant that misremembers
a name.  The detector finds the protected names within reach of the
requested one (``detectors.corpus``), explains each relation
(``detectors.similarity``) and scores it.

Why the score looks the way it does
-----------------------------------
The score is a logistic model over a few features that generalise beyond any
one name (``features``), with weights fitted by L2 logistic regression on a
labelled sample of real malicious names and of honest popular names (the
evaluation in ``benchmarks/detectors_eval.py``, whose ``--held-out`` option
refits them on half the targets and measures on the other half):

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
* *Whether the edit made unusual letters*: a slip leaves letter triples that
  hardly any project name has ('reqyest'), an honest name is built of common
  ones ('unicorn' next to 'gunicorn').
* *How crowded the target's neighbourhood is*: a name with many protected
  names one edit away ('six') has honest neighbours by nature; a lone one
  ('colorama') does not.
* *Which decoration*: 'py'/'python' glued to a popular name is the classic
  squat ('python-requests'); other added words are how families are named.
* *Popularity asymmetry*: a candidate that is itself more popular than the
  target is not a squat of it; one that is in the popular list at all is
  reported only at low severity.

The default threshold keeps false alarms on honest popular names at about
half a percent; thresholds and weights live in ``TyposquatConfig``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType

from detectors.corpus import NameIndex, Project, trigrams
from detectors.facts import Finding, ProjectFacts, Severity
from detectors.names import tokens
from detectors.similarity import (
    TYPO_RANK,
    NameForms,
    Relation,
    relate_by_two_edits,
    relate_closely,
)

__all__ = [
    "Match",
    "TyposquatConfig",
    "detect",
    "find_matches",
    "load_allowlist",
    "ordinal",
]

DETECTOR = "typosquat"

# Weights of the score's features (see ``features``), fitted by logistic
# regression on the labelled sample described in the module docstring.
DEFAULT_INTERCEPT = -0.69
DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "crowding": -0.60,
        "kind:affix-edit:end": -0.96,
        "kind:affix-edit:inner": -0.34,
        "kind:affix-edit:start": -1.36,
        "kind:affix-two-edits:likely": -2.26,
        "kind:affix-two-edits:possible": -3.38,
        "kind:affix-two-edits:unlikely": -3.19,
        "kind:affix:inner": -1.88,
        "kind:bitflip:end": 0.01,
        "kind:bitflip:inner": -1.57,
        "kind:bitflip:start": -1.29,
        "kind:compound:end": -1.22,
        "kind:compound:inner": -0.02,
        "kind:decorated-edit:affix": 2.53,
        "kind:decorated-edit:inner": 2.54,
        "kind:decorated-edit:start": -0.16,
        "kind:doubling:inner": 2.94,
        "kind:insertion:end": 1.08,
        "kind:insertion:inner": 1.66,
        "kind:insertion:start": -1.89,
        "kind:keyboard:end": 1.22,
        "kind:keyboard:inner": 1.26,
        "kind:keyboard:start": -1.29,
        "kind:omission:end": 1.88,
        "kind:omission:inner": 2.88,
        "kind:omission:start": 1.32,
        "kind:plural:end": 1.39,
        "kind:reorder:inner": -0.57,
        "kind:repeat:inner": 5.27,
        "kind:separator:inner": -1.21,
        "kind:substitution:end": -0.45,
        "kind:substitution:inner": -0.43,
        "kind:substitution:start": -2.83,
        "kind:swap:inner": 0.38,
        "kind:transposition:end": 3.12,
        "kind:transposition:inner": 4.26,
        "kind:transposition:start": 2.85,
        "kind:two-edits:likely": -0.89,
        "kind:two-edits:possible": -1.81,
        "kind:two-edits:unlikely": -2.95,
        "kind:version:end": -2.72,
        "kind:version:inner": -2.71,
        "kind:vowel:end": 0.61,
        "kind:vowel:inner": 0.85,
        "kind:vowel:start": -0.95,
        "known_word": -1.26,
        "length:10": 0.54,
        "length:11": 0.77,
        "length:12": 1.34,
        "length:4": -1.70,
        "length:5": -1.17,
        "length:6": -0.18,
        "length:7": -0.66,
        "length:8": 0.76,
        "length:9": 0.02,
        "letters_seen": -0.22,
        "popularity": 1.25,
        "py_affix": 0.61,
        "rare_letters": 0.42,
        "short_alone": -0.98,
        "strong_short": 0.34,
        # Not in the labelled sample: set by hand to a slip as strong as a
        # transposition, since to a reader the name is the same.
        "kind:lookalike:inner": 4.0,
        "kind:lookalike:start": 4.0,
        "kind:lookalike:end": 4.0,
    }
)

# The py/python decorations that say "the Python package of X": added to a
# popular name they make the classic squat ('python-requests').
_PY_AFFIX = re.compile(r"(prefix|suffix) '(py|py3|python|python3)' (added|dropped)")
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

    threshold: float = 0.52
    high_threshold: float = 0.9
    internal_threshold: float = 0.1
    intercept: float = DEFAULT_INTERCEPT
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    popularity_pivot: float = 7.0
    unknown_downloads: int = 10_000_000
    allowlist: frozenset[tuple[str, str]] = field(default_factory=lambda: load_allowlist())
    _two_edit_bound: list[float] = field(default_factory=list, init=False, repr=False, compare=False)

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


def features(
    cand: NameForms,
    target: Project,
    target_forms: NameForms,
    relation: Relation,
    index: NameIndex,
    config: TyposquatConfig,
) -> dict[str, float]:
    """The evidence ``score`` weighs, by name (see the module docstring)."""
    found = {"kind:" + _kind_key(relation): 1.0}
    if relation.kind == "affix" and _PY_AFFIX.search(relation.words):
        found["py_affix"] = 1.0
    crowd = index.crowding[index.ident(target.name)]
    found["crowding"] = math.log2(1 + crowd)
    if relation.kind in _STRONG_KINDS and relation.length <= 6:
        found["strong_short"] = 1.0
    if relation.distance == 0 and relation.kind in ("affix", "version"):
        # The whole target is there, decorated: its full length is what a
        # reader recognises, not the length of its core.
        found[f"length:{min(max(len(target_forms.compact), 4), 12)}"] = 1.0
    else:
        found[f"length:{min(max(relation.length, 4), 12)}"] = 1.0
    if relation.length <= 5 and crowd == 0:
        found["short_alone"] = 1.0
    if target.kind != "internal":
        downloads = target.downloads if target.downloads is not None else config.unknown_downloads
        found["popularity"] = math.log10(max(downloads, 1)) - config.popularity_pivot
    target_words = set(tokens(target_forms.canonical))
    changed = [w for w in tokens(cand.canonical) if w not in target_words]
    if changed and all(w in index.words for w in changed):
        found["known_word"] = 1.0
    if relation.distance:
        rarest = _rarest(cand.compact, target_forms.compact, index)
        if rarest is not None:
            found["rare_letters"] = 1.0 / (1.0 + rarest)
            found["letters_seen"] = math.log2(1 + rarest)
    return found


def _rarest(cand: str, target: str, index: NameIndex) -> int | None:
    """In how many protected names the rarest letter triple the edit introduced occurs.

    An honest neighbour of a popular name is usually a word of its own
    ('identity', 'unicorn') whose letter triples are everywhere; a slip of the
    hand leaves triples hardly any project name has ('reqyest').  None when
    the edit introduced no new triple.
    """
    have = set(trigrams(target))
    counts = index.trigrams
    return min((counts.get(t, 0) for t in trigrams(cand) if t not in have), default=None)


def score(
    cand: NameForms,
    target: Project,
    target_forms: NameForms,
    relation: Relation,
    index: NameIndex,
    config: TyposquatConfig,
) -> float:
    """Probability-like score in (0, 1) that ``cand`` was made to imitate ``target``."""
    weights = config.weights
    logit = config.intercept
    for name, value in features(cand, target, target_forms, relation, index, config).items():
        logit += weights.get(name, 0.0) * value
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
        relation = relate_closely(cand, target_forms)
        if relation is None:
            # Explaining two edits is the one costly step: only where it could score.
            if not _two_edits_can_matter(target, target_forms, floor, config):
                continue
            if _two_edit_ceiling(ident, target, target_forms, index, config) < floor:
                continue
            relation = relate_by_two_edits(cand, target_forms)
            if relation is None:
                continue
        value = score(cand, target, target_forms, relation, index, config)
        if value >= minimum:
            matches.append(Match(target, relation, value))
    matches.sort(key=lambda m: (-m.score, -(m.target.downloads or 0), m.target.name))
    return matches


def _two_edits_can_matter(target: Project, forms: NameForms, floor: float, config: TyposquatConfig) -> bool:
    """Whether a two-edit relation to ``target`` could score at least ``floor`` (a logit).

    Explaining two edits is the one costly step; skipping it where even the
    most typo-like pair could not reach the threshold keeps checks fast.
    """
    if floor == -math.inf:
        return True
    best = config.intercept + _best_two_edit_logit(config)
    if target.kind != "internal":
        downloads = target.downloads if target.downloads is not None else config.unknown_downloads
        best += config.weights.get("popularity", 0.0) * (math.log10(max(downloads, 1)) - config.popularity_pivot)
    return best >= floor


_TWO_EDIT_KINDS = tuple(
    f"kind:{kind}:{level}" for kind in ("two-edits", "affix-two-edits") for level in ("likely", "possible", "unlikely")
)
# Float sums in another order may differ in the last bits; the ceiling stays above them.
_CEILING_SLACK = 1e-9


def _two_edit_ceiling(ident: int, target: Project, forms: NameForms, index: NameIndex, config: TyposquatConfig) -> float:
    """The highest logit a two-edit relation to this one target could score (see ``features``).

    Tighter than ``_two_edits_can_matter``: the target's crowding, popularity
    and possible lengths are known, and most two-edit candidates of a popular
    name are honest names in a crowded neighbourhood, so the costly two-edit
    explanation is skipped wherever it could not reach the threshold anyway.
    """
    weights = config.weights
    get = weights.get
    best = config.intercept + max(get(key, 0.0) for key in _TWO_EDIT_KINDS)
    best += get("crowding", 0.0) * math.log2(1 + index.crowding[ident])
    lengths = {min(max(len(forms.compact), 4), 12), min(max(len(forms.core), 4), 12)}
    best += max(get(f"length:{n}", 0.0) for n in lengths)
    best += sum(max(get(key, 0.0), 0.0) for key in ("short_alone", "known_word", "rare_letters"))
    best += max(get("letters_seen", 0.0), 0.0) * math.log2(1 + len(index))
    if target.kind != "internal":
        downloads = target.downloads if target.downloads is not None else config.unknown_downloads
        best += get("popularity", 0.0) * (math.log10(max(downloads, 1)) - config.popularity_pivot)
    return best + _CEILING_SLACK


def _best_two_edit_logit(config: TyposquatConfig) -> float:
    """An upper bound of every weight but popularity a two-edit relation can collect."""
    cached = config._two_edit_bound
    if cached:
        return cached[0]
    weights = config.weights
    best = max((v for k, v in weights.items() if "two-edits" in k), default=0.0)
    best += max((v for k, v in weights.items() if k.startswith("length:")), default=0.0)
    best += sum(max(weights.get(k, 0.0), 0.0) for k in ("strong_short", "known_word", "rare_letters", "short_alone"))
    best += max(weights.get("letters_seen", 0.0), 0.0) * 16 + max(weights.get("crowding", 0.0), 0.0) * 16
    cached.append(best)
    return best


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
