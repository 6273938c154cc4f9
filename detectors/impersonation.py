"""Impersonation: a look-alike name that also copies what its target says about itself.

The attack: a typosquat is more convincing, to a person and to an assistant
reading the project page, when it wears its target's clothes - the target's
summary, its README, links to its repository and documentation, its
author's name.  The name-only detector (``detectors.typosquat``) sees a
resemblance that many honest projects share; a young project with one
release whose summary is the target's, word for word, has no honest reading
left.  This detector scores those facts together, for the targets the name
already resembles (the typosquat findings are its input, as for
``detectors.downloads``), and only adds findings: it never lowers or hides
another detector's.

How the score is built (points, set by hand before any evaluation; see
``ImpersonationConfig``):

* *Copied from the target* - each one a small pure check below:
  the summary equal to the target's once both projects' names are blanked
  out (3) or nearly equal (2); the description (README) largely made of the
  target's (2); a home page or project URL at the target's repository or
  site (3); the target's author name or e-mail while the index says the two
  projects have no owner in common (1).  Nothing is reported below 2 copy
  points: a resemblance alone is the name detector's finding.
* *Context* - a project first uploaded within ``young`` (+2), with at most
  ``few_releases`` releases (+1), with fewer than ``few_downloads`` a month
  when the count is known (+1); an established project (older than
  ``established_age`` with at least ``established_releases`` releases) (-3)
  or one with ``many_downloads`` a month of its own (-2) has users who
  would have noticed.
* *Honesty* - no finding at all when the index reports an owner (or the
  organisation) the two projects share (ownership is the one fact here an
  attacker cannot write), or when the look-alike says what it is - 'fork',
  'stubs', 'unofficial', 'plugin', 'backport' ... - in words its target
  does not use about itself.  Saying so can be faked; the name-only finding
  still stands then.

Severity: critical from 6 points (an exact copy of the summary or links to
the target's repository, on a young project with few releases: denied by
default), high from 4, medium from 2, low below (shown to reviewers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from difflib import SequenceMatcher
from urllib.parse import urlsplit

from detectors.facts import Finding, ProjectFacts, ProjectMetadata, Severity
from detectors.names import compact

__all__ = [
    "Copy",
    "ImpersonationConfig",
    "author_copy",
    "context_points",
    "description_copy",
    "detect",
    "disclosure",
    "shared_ownership",
    "summary_copy",
    "url_copies",
    "url_identity",
]

DETECTOR = "impersonation"
_RESEMBLANCE = "typosquat"

# Hosts whose first two path segments name a repository ('github.com/psf/requests').
_CODE_HOSTS = frozenset({"github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "sr.ht", "git.sr.ht"})
# Hosts shared by unrelated projects: pointing at one says nothing about the target.
_SHARED_HOSTS = frozenset({
    "python.org", "docs.python.org", "readthedocs.io", "readthedocs.org", "google.com", "twitter.com", "x.com",
    "discord.gg", "discord.com", "gitter.im", "stackoverflow.com", "opencollective.com", "tidelift.com",
    "patreon.com", "img.shields.io", "badge.fury.io", "mastodon.social", "linkedin.com", "youtube.com",
    "example.com", "localhost",
})
# Words with which a project says what it is relative to another.
_DISCLOSURE = re.compile(
    r"\b(fork(?:ed)?|stubs?|unofficial|not affiliated|unaffiliated|plugin|extension|backports?|"
    r"wrapper|bindings?|compat(?:ibility)?|repackag\w*|rebuild|mirror of|vendored|port of|inspired by)\b"
)
# Summaries that say nothing: equal to a target's proves nothing.
_EMPTY_SUMMARIES = frozenset({"", "unknown", "none", "todo", "a python package", "python package", "n a"})
_WORD = re.compile(r"[a-z0-9]+")
_DESCRIPTION_CHARS = 6000
_SHINGLE = 4


@dataclass(frozen=True)
class ImpersonationConfig:
    """Points and thresholds of the impersonation score (see the module docstring for the reasoning)."""

    summary_equal: int = 3
    summary_near: int = 2
    summary_near_ratio: float = 0.85
    description_near: int = 2
    description_shared: float = 0.6
    description_min_shingles: int = 20
    url: int = 3
    author: int = 1
    young: timedelta = timedelta(days=30)
    young_points: int = 2
    few_releases: int = 3
    few_releases_points: int = 1
    few_downloads: int = 1_000
    few_downloads_points: int = 1
    many_downloads: int = 100_000
    many_downloads_points: int = -2
    established_age: timedelta = timedelta(days=365)
    established_releases: int = 10
    established_points: int = -3
    minimum_copy: int = 2
    critical_from: int = 6
    high_from: int = 4
    medium_from: int = 2


@dataclass(frozen=True)
class Copy:
    """One thing the candidate took from its target: which field, how, and both texts."""

    field: str
    how: str
    candidate: str
    target: str
    points: int

    def to_dict(self) -> dict[str, object]:
        return {"field": self.field, "how": self.how, "candidate": self.candidate, "target": self.target,
                "points": self.points}


# -- the checks: each a small pure function -------------------------------------


def _blanked_words(text: str, names: Iterable[str]) -> list[str]:
    """Lower-case words of ``text`` with every spelling of the two projects' names blanked.

    A squat writes its own name where the target wrote the target's
    ('reqeusts is an HTTP library'): with both blanked the sentences match.
    """
    words = _WORD.findall(text.lower())
    blanks = {compact(n) for n in names if n}
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in (3, 2, 1):  # a name written in words: 'scikit learn'
            if i + size <= len(words) and "".join(words[i : i + size]) in blanks:
                out.append("<name>")
                i += size
                break
        else:
            out.append(words[i])
            i += 1
    return out


def summary_copy(
    candidate: ProjectMetadata, target: ProjectMetadata, names: tuple[str, str], config: ImpersonationConfig
) -> Copy | None:
    """The candidate's summary equal, or nearly, to the target's (names blanked)."""
    if not candidate.summary or not target.summary:
        return None
    mine, theirs = _blanked_words(candidate.summary, names), _blanked_words(target.summary, names)
    if len(theirs) < 3 or " ".join(w for w in theirs if w != "<name>") in _EMPTY_SUMMARIES:
        return None
    if mine == theirs:
        return Copy("summary", "is the target's", candidate.summary, target.summary, config.summary_equal)
    ratio = SequenceMatcher(None, " ".join(mine), " ".join(theirs), autojunk=False).ratio()
    if ratio >= config.summary_near_ratio:
        return Copy("summary", f"is nearly the target's ({ratio:.0%} alike)", candidate.summary,
                    target.summary, config.summary_near)
    return None


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def description_copy(
    candidate: ProjectMetadata, target: ProjectMetadata, names: tuple[str, str], config: ImpersonationConfig
) -> Copy | None:
    """Most of the candidate's description (its first few thousand characters) is the target's."""
    if not candidate.description or not target.description:
        return None
    mine = _shingles(_blanked_words(candidate.description[:_DESCRIPTION_CHARS], names))
    theirs = _shingles(_blanked_words(target.description[:_DESCRIPTION_CHARS], names))
    if len(mine) < config.description_min_shingles or len(theirs) < config.description_min_shingles:
        return None
    shared = len(mine & theirs) / len(mine)
    if shared < config.description_shared:
        return None
    return Copy("description", f"is mostly the target's ({shared:.0%} of it)", candidate.description[:200],
                target.description[:200], config.description_near)


def url_identity(url: str) -> str | None:
    """What a URL points at, for comparison: 'github.com/psf/requests', 'requests.readthedocs.io'.

    A repository on a code host is its owner and name; any other site is its
    host.  None for what identifies nothing: a non-web URL, a user page on a
    code host, a site shared by unrelated projects.
    """
    try:
        parsed = urlsplit(url.strip())
        host = (parsed.hostname or "").lower()
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not host:
        return None
    host = host.removeprefix("www.")
    if host in _CODE_HOSTS:
        parts = [p.lower() for p in parsed.path.split("/") if p]
        if len(parts) < 2:
            return None
        return f"{host}/{parts[0]}/{parts[1].removesuffix('.git')}"
    if host in _SHARED_HOSTS or any(host.endswith("." + shared) for shared in ("python.org", "google.com")):
        return None
    return host


def _urls(metadata: ProjectMetadata) -> Iterator[tuple[str, str]]:
    if metadata.home_page:
        yield "home_page", metadata.home_page
    for label, url in metadata.project_urls.items():
        yield f"project_urls[{label}]", url


def url_copies(candidate: ProjectMetadata, target: ProjectMetadata, config: ImpersonationConfig) -> list[Copy]:
    """The candidate's home page and project URLs that point at the target's repository or site."""
    theirs: dict[str, str] = {}
    for _label, url in _urls(target):
        identity = url_identity(url)
        if identity is not None:
            theirs.setdefault(identity, url)
    copies = []
    for label, url in _urls(candidate):
        identity = url_identity(url)
        if identity is not None and identity in theirs:
            where = "repository" if "/" in identity else "site"
            copies.append(Copy(label, f"points at the target's {where} ({identity})", url, theirs[identity],
                               config.url))
    return copies


def _person(text: str | None) -> str:
    return " ".join(_WORD.findall((text or "").lower()))


def author_copy(candidate: ProjectMetadata, target: ProjectMetadata, config: ImpersonationConfig) -> Copy | None:
    """The target's author name or e-mail on a project the index says they do not own.

    Only when both ownership tables are known and disjoint: otherwise an
    equal author is as likely the same person as a copy.
    """
    if candidate.owners is None or target.owners is None or not target.owners:
        return None
    for label in ("author", "author_email"):
        mine, theirs = getattr(candidate, label), getattr(target, label)
        if _person(mine) and _person(mine) == _person(theirs):
            return Copy(label, "is the target's (no owner is shared)", mine, theirs, config.author)
    return None


def shared_ownership(candidate: ProjectMetadata, target: ProjectMetadata) -> list[str]:
    """Owners (or the organisation) the index reports for both projects: the same hands."""
    shared = []
    if candidate.owners and target.owners:
        shared = sorted({o.lower() for o in candidate.owners} & {o.lower() for o in target.owners})
    if candidate.organization and candidate.organization.lower() == (target.organization or "").lower():
        shared.append(f"organization {candidate.organization}")
    return shared


def disclosure(candidate: ProjectMetadata, target: ProjectMetadata) -> str | None:
    """A word with which the candidate says what it is ('fork', 'stubs') that its target does not use.

    Read in the summary and the description's first paragraphs; words the
    target uses about itself ('the friendly PIL fork') prove nothing when copied.
    """
    theirs = " ".join(_WORD.findall(f"{target.summary or ''} {(target.description or '')[:1000]}".lower()))
    mine = " ".join(_WORD.findall(f"{candidate.summary or ''} {(candidate.description or '')[:1000]}".lower()))
    for match in _DISCLOSURE.finditer(mine):
        if not re.search(rf"\b{re.escape(match[1])}\b", theirs):
            return match[1]
    return None


def context_points(facts: ProjectFacts, config: ImpersonationConfig) -> tuple[int, dict[str, object]]:
    """Points for what the candidate's age, releases and downloads say, and those facts as evidence."""
    points, seen = 0, {}
    releases = len(facts.release_uploads) or None
    if facts.first_upload is not None:
        age = facts.now - facts.first_upload
        seen["age_days"] = round(age.total_seconds() / 86400, 1)
        if age < config.young:
            points += config.young_points
        elif age >= config.established_age and releases is not None and releases >= config.established_releases:
            points += config.established_points
    if releases is not None:
        seen["releases"] = releases
        if releases <= config.few_releases:
            points += config.few_releases_points
    monthly = facts.downloads.last_month if facts.downloads is not None else None
    if monthly is not None:
        seen["last_month_downloads"] = monthly
        if monthly < config.few_downloads:
            points += config.few_downloads_points
        elif monthly >= config.many_downloads:
            points += config.many_downloads_points
    return points, seen


# -- the detector -------------------------------------------------------------------


def _severity(points: int, config: ImpersonationConfig) -> Severity:
    if points >= config.critical_from:
        return Severity.CRITICAL
    if points >= config.high_from:
        return Severity.HIGH
    return Severity.MEDIUM if points >= config.medium_from else Severity.LOW


def _copies(candidate: ProjectMetadata, target: ProjectMetadata, names: tuple[str, str],
            config: ImpersonationConfig) -> list[Copy]:
    found = [summary_copy(candidate, target, names, config), description_copy(candidate, target, names, config)]
    found += url_copies(candidate, target, config)
    found.append(author_copy(candidate, target, config))
    return [c for c in found if c is not None]


def _title(target: str, copies: list[Copy], seen: Mapping[str, object]) -> str:
    fields: list[str] = []
    for copy in copies:
        phrase = f"{copy.field} {copy.how.split(' (')[0]}"
        if phrase not in fields:
            fields.append(phrase)
    context = []
    if "age_days" in seen:
        context.append(f"first uploaded {seen['age_days']:g} days ago")
    if "releases" in seen:
        context.append(f"{seen['releases']} release{'s' if seen['releases'] != 1 else ''}")
    text = f"copies '{target}': {'; '.join(fields)}"
    return f"{text} ({', '.join(context)})" if context else text


def detect(facts: ProjectFacts, config: ImpersonationConfig, resemblances: Iterable[Finding] = ()) -> list[Finding]:
    """At most one finding: the resembled target whose clothes the candidate wears most.

    ``resemblances`` are the typosquat findings for the same name; a target
    whose metadata is not in ``facts.target_metadata`` (not fetched, or not
    found) is skipped, as is everything when the candidate's own metadata is
    unknown.
    """
    candidate = facts.metadata
    if candidate is None:
        return []
    best: Finding | None = None
    for resemblance in resemblances:
        name = resemblance.target
        if resemblance.detector != _RESEMBLANCE or name is None or resemblance.evidence.get("target_kind") == "internal":
            continue
        target = facts.target_metadata.get(name)
        if target is None:
            continue
        finding = _judge(facts, candidate, name, target, resemblance, config)
        if finding is not None and (best is None or finding.evidence["points"] > best.evidence["points"]):
            best = finding
    return [best] if best is not None else []


def _judge(
    facts: ProjectFacts,
    candidate: ProjectMetadata,
    name: str,
    target: ProjectMetadata,
    resemblance: Finding,
    config: ImpersonationConfig,
) -> Finding | None:
    if shared_ownership(candidate, target):
        return None
    if disclosure(candidate, target) is not None:
        return None
    copies = _copies(candidate, target, (facts.name, name), config)
    copied = sum(c.points for c in copies)
    if copied < config.minimum_copy:
        return None
    context, seen = context_points(facts, config)
    points = copied + context
    evidence = {
        "candidate": resemblance.evidence.get("candidate", facts.name),
        "target": name,
        "copied": [c.to_dict() for c in copies],
        "copied_fields": sorted({c.field for c in copies}),
        "context": seen,
        "copy_points": copied,
        "context_points": context,
        "points": points,
        "name_relation": resemblance.evidence.get("transformation"),
        "owners": sorted(candidate.owners) if candidate.owners is not None else None,
        "target_owners": sorted(target.owners) if target.owners is not None else None,
    }
    return Finding(DETECTOR, _severity(points, config), _title(name, copies, seen), name, evidence)
