"""How the impersonation detector (a look-alike name plus copied project facts) scores CONSTRUCTED cases.

What this is, and what it is not: there is no labelled set of real malicious
projects' metadata offline (nor of honest look-alikes'), so the cases in
``tests/detectors/data/impersonation_cases.json`` are constructed: twelve
squat rules (copied summary, copied links, copied README, full clones, and
two evasions the rules are expected to miss) and twelve honest rules
(same-owner sub-projects, official variant builds, disclosed forks, stubs,
plugins, an undisclosed fork expected to be a false positive ...) applied to
twelve real popular names with invented metadata.  The rules and the cases
were written and frozen before the detector was first run on them, and the
detector's points were set before the cases were written; nothing here was
tuned on these figures.  They say whether the rules do what they claim on
the situations they were written for, not how often real attacks look like
this: read them as a specification check, not a real-world recall.

Two measurements, kept apart from the name-only score:

* *Given a resemblance*: each case is scored by ``detectors.impersonation``
  alone, with a typosquat resemblance to its target handed in, so the name
  detector's own misses do not enter.
* *Through the detectors*: each case goes through ``detectors.run_all``
  with the bundled corpus, once without and once with its target's
  metadata, and through the default policy: the name detector decides
  whether there is a resemblance at all, and the table shows how far the
  facts move the decision beyond the name-only one.

Run: ``python -m benchmarks.impersonation_eval`` (``--cases FILE`` for another set).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import detectors
from detectors import impersonation
from detectors.facts import DownloadStats, Finding, ProjectFacts, ProjectMetadata, Severity
from mirror.screening.policy import PolicyConfig, decide

CASES = Path(__file__).resolve().parents[1] / "tests" / "detectors" / "data" / "impersonation_cases.json"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def metadata(raw: dict[str, Any]) -> ProjectMetadata:
    owners = raw.get("owners")
    return ProjectMetadata(
        summary=raw.get("summary"),
        description=raw.get("description"),
        home_page=raw.get("home_page"),
        project_urls=dict(raw.get("project_urls") or {}),
        author=raw.get("author"),
        author_email=raw.get("author_email"),
        owners=frozenset(owners) if owners is not None else None,
        organization=raw.get("organization"),
    )


def facts_of(case: dict[str, Any], corpus: Any = None) -> ProjectFacts:
    """The case's facts: releases spread over its life (over its first 10 days when padded)."""
    first = NOW - timedelta(days=case["age_days"])
    span = timedelta(days=min(case["age_days"], 10 if case["kind"] == "padded-releases" else case["age_days"]))
    count = case["releases"]
    uploads = {f"{i + 1}.0": first + span * (i / max(count - 1, 1)) for i in range(count)}
    downloads = case.get("last_month_downloads")
    return ProjectFacts(
        name=case["candidate"],
        now=NOW,
        corpus=corpus,
        exists_upstream=True,
        first_upload=first,
        release_uploads=uploads,
        roles={o: "Owner" for o in case["candidate_metadata"]["owners"] or []} or None,
        downloads=DownloadStats(last_month=downloads) if downloads is not None else None,
        metadata=metadata(case["candidate_metadata"]),
        target_metadata={case["target"]: metadata(case["target_metadata"])},
    )


def resemblance(case: dict[str, Any]) -> Finding:
    """A name-only finding to the case's target, as the typosquat detector would hand it on."""
    return Finding("typosquat", Severity.MEDIUM, f"resembles '{case['target']}'", case["target"],
                   {"candidate": case["candidate"], "target": case["target"], "target_kind": "popular"})


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {hits / total:.3f}" if total else "0/0"


def given_resemblance(cases: list[dict[str, Any]]) -> dict[str, Any]:
    config = impersonation.ImpersonationConfig()
    policy = PolicyConfig()
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for case in cases:
        found = impersonation.detect(facts_of(case), config, [resemblance(case)])
        severity = str(found[0].severity) if found else "none"
        action = decide(found, policy, project=case["candidate"]).action
        by_kind[case["kind"]][severity] += 1
        totals[case["label"]][severity] += 1
        totals[case["label"]]["action:" + action] += 1
    return {"by_kind": by_kind, "totals": totals}


def through_detectors(cases: list[dict[str, Any]]) -> dict[str, Any]:
    corpus = detectors.load_corpus()
    policy = PolicyConfig()
    moves: dict[str, Counter[str]] = defaultdict(Counter)
    for case in cases:
        facts = facts_of(case, corpus)
        name_only = detectors.run_all(replace(facts, target_metadata={}))
        with_facts = detectors.run_all(facts)
        before = decide(name_only, policy, project=case["candidate"]).action
        after = decide(with_facts, policy, project=case["candidate"]).action
        resembles = any(f.detector == "typosquat" and f.target == case["target"] for f in name_only)
        moves[case["label"]][f"{'resembles' if resembles else 'no resemblance'}: {before} -> {after}"] += 1
    return moves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    args = parser.parse_args()
    document = json.loads(args.cases.read_text())
    cases = document["cases"]
    print(f"CONSTRUCTED cases, not real-world data: {len(cases)} from {args.cases.name}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n")

    result = given_resemblance(cases)
    print("1. Given a resemblance to the target (impersonation detector alone)")
    print(f"   {'kind':<26} {'label':<14} critical high medium low none")
    labels = {c["kind"]: c["label"] for c in cases}
    for kind, counts in result["by_kind"].items():
        row = " ".join(f"{counts.get(s, 0):>{len(s)}}" for s in ("critical", "high", "medium", "low", "none"))
        print(f"   {kind:<26} {labels[kind]:<14} {row}")
    squats, honest = result["totals"]["impersonation"], result["totals"]["honest"]
    n_squat, n_honest = sum(squats[s] for s in ("critical", "high", "medium", "low", "none")), sum(
        honest[s] for s in ("critical", "high", "medium", "low", "none"))
    print(f"   squats denied (critical):           {_rate(squats['critical'], n_squat)}")
    print(f"   squats at high or above:            {_rate(squats['critical'] + squats['high'], n_squat)}")
    print(f"   squats with any finding >= medium:  "
          f"{_rate(squats['critical'] + squats['high'] + squats['medium'], n_squat)}")
    print(f"   honest with a finding >= medium:    "
          f"{_rate(honest['critical'] + honest['high'] + honest['medium'], n_honest)}")
    print(f"   honest denied (critical):           {_rate(honest['critical'], n_honest)}")
    print(f"   honest with any finding (even low): {_rate(n_honest - honest['none'], n_honest)}\n")

    print("2. Through detectors.run_all with the bundled corpus and the default policy:")
    print("   the decision without the target's metadata (name-only evidence) -> with it")
    for label, counts in through_detectors(cases).items():
        for move, count in sorted(counts.items()):
            print(f"   {label:<14} {move:<40} {count}")


if __name__ == "__main__":
    main()
