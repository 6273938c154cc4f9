"""Dependency confusion: a public project answering to one of our internal names.

The attack: an organisation installs ``acme-auth`` from its private index;
an attacker publishes ``acme-auth`` (or ``acme_auth``, ``acmeauth``,
``acme-authv2`` ...) on the public index with a higher version, and an
installer that merges both indexes picks the attacker's release.  An internal
name must therefore never be resolved upstream, and a public project that
claims one is evidence of an attack in progress, not a coincidence.

Matching is deliberately wider than PEP 503 equality: the ultra-normalised
form (no separators, look-alikes folded) also counts, because an installer
asked for 'acme-auth' will never fetch 'acmeauth', but a human copying a name
from a chat message will.  Glob patterns (``acme-*``) cover families of
internal names that do not exist yet.  Near misses (edits) of internal names
are the typosquat detector's job and are reported there as critical.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from detectors.facts import Finding, InternalNames, ProjectFacts, Severity
from detectors.names import InvalidName, canonical, canonical_pattern, compact, fold_lookalikes
from detectors.similarity import NameForms
from detectors.typosquat import TyposquatConfig, find_matches


__all__ = ["ConfusionConfig", "detect", "internal_match", "sweep"]

DETECTOR = "confusion"


@dataclass(frozen=True)
class ConfusionConfig:
    """Severities of the dependency-confusion findings.

    ``upstream_severity`` is used when the public index is known to have a
    project under the internal name (an attack in progress);
    ``request_severity`` for a request of an internal name whose upstream
    state is unknown or absent (the mirror must still never look upstream).
    """

    upstream_severity: str = "critical"
    request_severity: str = "critical"

    def __post_init__(self) -> None:
        Severity.parse(self.upstream_severity)
        Severity.parse(self.request_severity)


def internal_match(name: str | NameForms, internal: InternalNames) -> tuple[str, str] | None:
    """How ``name`` matches the internal names: (kind, internal name or pattern), or None.

    kind is 'name' (PEP 503 equal), 'lookalike' (equal once separators are
    dropped and look-alikes folded) or 'pattern' (a glob pattern matches).
    Raises ``InvalidName`` for a name no index would accept.
    """
    if isinstance(name, NameForms):
        canon, folded = name.canonical, name.folded
    else:
        canon = canonical(name)
        folded = fold_lookalikes(compact(canon))
    if canon in internal.names:
        return "name", canon
    if internal.index is not None:
        project = internal.index.get_folded(folded)
        if project is not None:
            return "lookalike", project.name
    for pattern in internal.patterns:
        if fnmatch.fnmatchcase(canon, pattern) or fnmatch.fnmatchcase(canon, canonical_pattern(pattern)):
            return "pattern", pattern
    return None


def detect(facts: ProjectFacts, config: ConfusionConfig, forms: NameForms | None = None) -> list[Finding]:
    """A critical finding when the requested name is, or reads as, an internal name.

    ``forms`` are the name's precomputed forms, when the caller has them.
    """
    forms = forms or NameForms.of(facts.name)
    if not facts.internal.names and not facts.internal.patterns:
        return []
    match = internal_match(forms, facts.internal)
    if match is None:
        return []
    kind, what = match
    canon = forms.canonical
    if kind == "name":
        how = f"'{canon}' is an internal project name"
    elif kind == "lookalike":
        how = f"'{canon}' reads as internal project '{what}'"
    else:
        how = f"'{canon}' matches the internal name pattern '{what}'"
    evidence = {"candidate": canon, "match": kind, "internal": what, "exists_upstream": facts.exists_upstream}
    if facts.exists_upstream:
        severity, title = config.upstream_severity, f"{how}, and the public index has a project under it"
    else:
        severity, title = config.request_severity, f"{how}; it must only come from internal sources"
    return [Finding(detector=DETECTOR, severity=Severity.parse(severity), title=title, target=what, evidence=evidence)]


def sweep(public_names: Iterable[str], internal: InternalNames, config: TyposquatConfig) -> Iterator[tuple[str, str, str]]:
    """Public names that are, read as, or nearly are an internal name: (public, internal, why).

    For the periodic dependency-confusion sweep over the public index's full
    name list: the internal names are the (small) index and the public names
    stream through it, so the cost is one check per public name and nothing
    is held in memory but the internal index.  Invalid public names are
    skipped (the public list is not ours to validate).
    """
    for raw in public_names:
        try:
            match = internal_match(raw, internal)
        except InvalidName:
            continue
        if match is not None:
            yield canonical(raw), match[1], match[0]
            continue
        if internal.index is None:
            continue
        near = find_matches(raw, internal.index, config, minimum=config.internal_threshold)
        if near:
            yield canonical(raw), near[0].target.name, near[0].relation.words
