"""Recall and false alarms of the typosquat detector, measured on names it was not fitted on.

Protocol (issues 3 and 14): the corpus is the first 5,000 rows of the popular
list; recall is measured on the labelled typosquats whose target ranks within
those 5,000, "right target" is the share of flagged names whose best match is
the labelled target, and the false-positive rate is measured on the popular
list's rows 5,001-15,000 (honest projects) checked against the same corpus.
The bundled allowlist is switched off: it must not help the measurement.

Headline (held out): the labelled typosquats are put into groups that must
stay on one side of a split - all variants of one target, and targets that
share a distinctive word ('requests', 'requests-toolbelt') - and each honest
name goes with the group of the protected name it comes nearest.  Groups are
dealt into four folds by a hash of their name.  For each fold the weights
are refitted (L2 logistic regression, the same features) on the other three,
the threshold is set to <= 0.5% false positives on the fitting folds' honest
names, and the fold is scored with both.  Every name is therefore scored by
a model that never saw its group.  Fold 0 is the lock box: ``--misses``
lists misses and false alarms of folds 1-3 only, so no name of fold 0 was
looked at while the mechanisms were developed (its summary line was printed
on every run, though).  The trade-off curve and the recall per kind of
manipulation are computed on the pooled out-of-fold scores.

One campaign ('900+ malicious packages', 2023-02-11) holds 80% of the rows
across dozens of targets; grouping by campaign too would leave one fold
with nearly everything.  It is measured instead as a stress line: fitted on
the campaign and tested on the rest, and the other way round.

Secondary (in sample): the shipped weights (``--fit`` writes them, fitted on
every row) scored on the very rows they were fitted on.

Also measured with the built-in corpus and shipped weights (nothing here was
fitted on them): five hand-written ML squat sets and the real ML projects
of ``tests/detectors/ml_lookalikes.txt`` that must all be allowed.  The
first set (``ml_squats.csv``) was frozen before tuning and then developed
against; the second (``ml_squats_second.csv``) and the third
(``ml_squats_third.csv``) were written on 2026-12-01 by writers who never
saw the detector or its output, each told only the kinds and a list of
targets.  The third was the lock box until 2026-12-04 (scored as totals
only: 0.399, then 0.437); it was then opened and developed against, like
the second.  On 2026-12-04 two more were written by writers who saw
neither the detector nor any other set: the fourth (``ml_squats_fourth.csv``),
whose brief suggested generic words and techniques, so it is a development
set, and the lock box (``ml_squats_lockbox.csv``), whose brief named the
kinds only.  Names either shared with an earlier set were dropped (103 of the
fourth's 366, 98 of the lock box's 346: the obvious squats every writer
thinks of), which makes both harder than the writers' own lists.  The lock
box's misses are never printed, and its recall is the ML goal's figure.

Experiment (off by default): ``--synthetic-kinds decoration,generic,separator``
adds attacks made by issue 14's mechanisms from the top popular names to
every fit (never measured; none is a labelled or popular name; those on a
target of the test fold's groups are left out of that fold's fit).  Measured
on 2026-12-01 it raised the ML squat set's recall but lowered the held-out
headline (the honest decorated names of the same shape take the false-positive
budget), so the shipped weights are fitted without it.  ``--synthetic-kinds
slip`` (one slip of a typing hand), measured the same day: held out 0.904 at
0.60% -> 0.908 at 0.61% (lock box 0.928 at 0.84% -> 0.928 at 0.76%), but
shipping it means refitting, and any refit of the current features lowers the
ML squat set: the shipped weights predate the last feature changes (no
``known_word`` for separators moved, ``ml_decoration``, whole-name rotations),
so in sample they flag 0.58%, not the 0.5% they were calibrated to.
Refitted without synthetic attacks: in sample 0.935 at 0.50%, ML squat set
0.835 -> 0.788; with ``slip``: 0.930 at 0.51%, ML 0.807.  Neither refit is
shipped.

Run: python benchmarks/detectors_eval.py [--data DIR] [--misses N] [--fit] [--in-sample-only]
     [--synthetic-kinds KINDS]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import DetectorConfig, ProjectFacts, Severity, run_name_detectors
from detectors.corpus import PopularCorpus
from detectors.names import canonical, tokens
from detectors.similarity import NameForms, relate
from detectors.typosquat import HAND_SET_WEIGHTS, TyposquatConfig, find_matches, load_allowlist, load_weights

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9)
FP_BUDGET = 0.005
FIT_C = 1.0
FIT_POSITIVE_WEIGHT = 2.0
# Issue 3's goals for the default threshold, on this protocol.
GOALS = {
    "recall": lambda value: value >= 0.95,
    "right target": lambda value: value >= 0.95,
    "false positives": lambda value: value <= FP_BUDGET,
}
FOLDS = 4
LOCK_BOX = 0
TESTS = Path(__file__).resolve().parent.parent / "tests" / "detectors"
# (label, file, whether its misses may be printed): see the module docstring for how each was
# written.  Only the lock box's totals are ever printed: it is the set the goal is measured on.
ML_SQUAT_SETS = (
    ("first (development)", TESTS / "ml_squats.csv", True),
    ("second (development)", TESTS / "ml_squats_second.csv", True),
    ("third (development; the lock box until 2026-12-04)", TESTS / "ml_squats_third.csv", True),
    ("fourth (development)", TESTS / "ml_squats_fourth.csv", True),
    ("lock box", TESTS / "ml_squats_lockbox.csv", False),
)
ML_LOOKALIKES = TESTS / "ml_lookalikes.txt"
WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "detectors" / "data" / "typosquat_weights.json"

Pairs = list[tuple[str, dict[str, float]]]


@dataclass(frozen=True)
class Squat:
    name: str
    target: str
    published: str
    summary: str


def load(data: Path) -> tuple[list[tuple[str, int]], list[Squat]]:
    with open(data / "popular_packages.csv", newline="", encoding="utf-8") as handle:
        popular = [(row["project"], int(row["download_count"])) for row in csv.DictReader(handle)]
    with open(data / "malicious_names.csv", newline="", encoding="utf-8") as handle:
        squats = [
            Squat(row["name"], canonical(row["target"]), row["published"][:10], row["summary"])
            for row in csv.DictReader(handle)
            if row["label"] == "typosquat" and row["target_rank"] and int(row["target_rank"]) <= 5000
        ]
    return popular, squats


def labelled_names(data: Path) -> set[str]:
    """Every name of the labelled set, whatever its label: no synthetic attack may be one of them."""
    with open(data / "malicious_names.csv", newline="", encoding="utf-8") as handle:
        return {row["name"] for row in csv.DictReader(handle)}


# Words too common in project names to tie two targets into one group.
_PLAIN_WORDS = frozenset({"py", "python", "python3", "django", "flask", "pytest", "types", "google", "azure",
                          "aws", "api", "client", "sdk", "lib", "core", "tools", "utils", "cloud", "mypy", "boto3"})


def campaign(squat: Squat) -> str | None:
    """The text a campaign's records share ('... — Attacker distributes ...'), with its day; None if none."""
    _, dash, tail = squat.summary.partition("\u2014")
    return f"{squat.published} {tail.strip()}" if dash and tail.strip() else None


def groups(squats: list[Squat], *, by_campaign_too: bool = False) -> dict[str, str]:
    """Target -> group: targets joined by a shared distinctive word, and by one campaign if asked (union-find).

    One campaign of the labelled set (2023-02-11, '900+ malicious packages')
    spans 80% of the rows and dozens of targets; grouped by campaign too,
    a fold holds it whole, which is measured as its own stress line.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_word: dict[str, str] = {}
    by_campaign: dict[str, str] = {}
    for squat in squats:
        find(squat.target)
        for word in tokens(squat.target):
            if len(word) >= 4 and word not in _PLAIN_WORDS:
                union(by_word.setdefault(word, squat.target), squat.target)
        text = campaign(squat) if by_campaign_too else None
        if text is not None:
            union(by_campaign.setdefault(text, squat.target), squat.target)
    return {target: find(target) for target in parent}


def fold_of(group: str) -> int:
    return zlib.crc32(group.encode()) % FOLDS


def best(name: str, corpus: PopularCorpus, config: TyposquatConfig) -> tuple[float, str | None, str]:
    matches = find_matches(name, corpus, config)
    if not matches:
        return 0.0, None, ""
    top = matches[0]
    return top.score, top.target.meant, top.description


def candidate_pairs(name: str, corpus: PopularCorpus, config: TyposquatConfig) -> Pairs:
    """(target, features) for every protected name ``name`` may imitate."""
    return [(match.target.meant, dict(match.features)) for match in find_matches(name, corpus, config)]


# Synthetic attacks (``synthetic_squats``): how many, on which targets, and how much each counts in a fit.
SYNTHETIC_PER_KIND = 150
SYNTHETIC_TOP = 500
SYNTHETIC_WEIGHT = 0.5
_DECORATIONS = ("py", "python", "python3", "py3")
_GENERIC_WORDS = ("sdk", "lib", "dev", "api")
_KEYS = "qwertyuiop asdfghjkl zxcvbnm"
SYNTHETIC_KINDS = ("decoration", "generic", "separator", "digit", "two-slips", "slip")
DEFAULT_SYNTHETIC: tuple[str, ...] = ()


def _slip(flat: str, rng: random.Random) -> str:
    """One slip of a typing hand inside ``flat``: a letter dropped, doubled, swapped or hit beside."""
    if len(flat) < 3:
        return flat
    at = rng.randrange(1, len(flat) - 1)
    kind = rng.choice(("drop", "double", "swap", "key"))
    if kind == "drop":
        return flat[:at] + flat[at + 1 :]
    if kind == "double":
        return flat[:at] + flat[at] + flat[at:]
    if kind == "swap":
        return flat[: at - 1] + flat[at] + flat[at - 1] + flat[at + 1 :]
    row = next((r for r in _KEYS.split() if flat[at] in r), None)
    if row is None:
        return flat[:at] + flat[at + 1 :]
    near = [row[i] for i in (row.index(flat[at]) - 1, row.index(flat[at]) + 1) if 0 <= i < len(row)]
    return flat[:at] + rng.choice(near) + flat[at + 1 :]


def _digit_edit(name: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(name) if c.isdigit()]
    at = rng.choice(spots)
    kind = rng.choice(("change", "drop", "add"))
    if kind == "change":
        return name[:at] + str((int(name[at]) + rng.choice((1, 2, -1))) % 10) + name[at + 1 :]
    if kind == "drop" and len(name) > 3:
        return name[:at] + name[at + 1 :]
    return name[: at + 1] + str(rng.randrange(10)) + name[at + 1 :]


def synthetic_squats(targets: list[str], rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, name, target) attacks made by issue 14's mechanisms from popular names, for fitting only.

    The labelled set has few examples of some manipulations (decorations,
    separators, digits, generic words, two slips), so a fit on it alone
    learns nothing of them.  These are generated from the popular names by
    the mechanism, never from any labelled or evaluated name, and count
    ``SYNTHETIC_WEIGHT`` of a real row; they are never measured.
    """
    made: list[tuple[str, str, str]] = []
    with_digits = [t for t in targets if any(c.isdigit() for c in t)]
    multi = [t for t in targets if "-" in t]
    for _ in range(SYNTHETIC_PER_KIND):
        target = rng.choice(targets)
        word = rng.choice(_DECORATIONS)
        glue = rng.choice(("", "-"))
        made.append(("decoration", word + glue + target if rng.random() < 0.5 else target + glue + word, target))
        target = rng.choice(targets)
        made.append(("generic", f"{target}-{rng.choice(_GENERIC_WORDS)}", target))
        target = rng.choice(targets)
        flat = target.replace("-", "")
        if len(flat) >= 5:
            at = rng.randrange(2, len(flat) - 1)
            made.append(("separator", flat[:at] + "-" + flat[at:], target))
        if multi:
            target = rng.choice(multi)
            made.append(("separator", target.replace("-", ""), target))
        if with_digits:
            target = rng.choice(with_digits)
            made.append(("digit", _digit_edit(target, rng), target))
        target = rng.choice(targets)
        made.append(("two-slips", _slip(_slip(target.replace("-", ""), rng), rng), target))
        target = rng.choice(targets)
        made.append(("slip", _slip(target.replace("-", ""), rng), target))
    return made


def training_rows(
    labelled: list[tuple[str, Pairs]], plain: list[Pairs], synthetic: list[tuple[str, Pairs]] = ()
) -> list[tuple[dict[str, float], int, float]]:
    """A typosquat's pair with its labelled target is a positive row; every pair of an honest name a negative one.

    Rows are (features, label, weight); synthetic attacks count ``SYNTHETIC_WEIGHT``.
    """
    rows = [(found, 1, FIT_POSITIVE_WEIGHT) for target, pairs in labelled for name, found in pairs if name == target]
    rows += [(found, 1, FIT_POSITIVE_WEIGHT * SYNTHETIC_WEIGHT)
             for target, pairs in synthetic for name, found in pairs if name == target]
    return rows + [(found, 0, 1.0) for pairs in plain for _, found in pairs]


def fit(
    rows: list[tuple[dict[str, float], int, float]], c: float = FIT_C, rounds: int = 1500,
) -> tuple[float, dict[str, float]]:
    """L2-regularised logistic regression by full-batch Adam (no numpy needed).

    Minimises the summed log-loss plus |w|^2 / (2c), like scikit-learn's
    LogisticRegression(C=c), over sparse feature dicts, each row counted by
    its weight.  Positive rows count ``FIT_POSITIVE_WEIGHT`` times: there are
    ten honest names per typosquat, and what matters is the few honest names
    scored highest, not the many easy ones.
    """
    names = sorted({k for f, _, _ in rows for k in f} - set(HAND_SET_WEIGHTS))
    column = {k: i for i, k in enumerate(names)}
    # Hand-set weights stay fixed (see detectors.typosquat.HAND_SET_WEIGHTS): an offset per row.
    offset = [sum(HAND_SET_WEIGHTS.get(k, 0.0) * v for k, v in f.items()) for f, _, _ in rows]
    sparse = [([(column[k], v) for k, v in f.items() if k in column], y, weight) for f, y, weight in rows]
    size = len(names) + 1  # the last weight is the intercept
    w = [0.0] * size
    m, v = [0.0] * size, [0.0] * size
    rate, beta1, beta2 = 0.05, 0.9, 0.999
    for step in range(1, rounds + 1):
        grad = [0.0] * size
        for (entries, y, weight), shift in zip(sparse, offset):
            z = w[-1] + shift + sum(w[i] * x for i, x in entries)
            p = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
            err = (p - y) * weight
            grad[-1] += err
            for i, x in entries:
                grad[i] += err * x
        for i in range(size - 1):
            grad[i] += w[i] / c
        for i in range(size):
            m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
            v[i] = beta2 * v[i] + (1 - beta2) * grad[i] ** 2
            w[i] -= rate * (m[i] / (1 - beta1**step)) / (math.sqrt(v[i] / (1 - beta2**step)) + 1e-8)
    return w[-1], dict(zip(names, w))


def best_of(pairs: Pairs, intercept: float, weights: dict[str, float]) -> tuple[float, str | None]:
    best, target = 0.0, None
    weights = {**weights, **HAND_SET_WEIGHTS}
    for name, found in pairs:
        z = intercept + sum(weights.get(k, 0.0) * x for k, x in found.items())
        value = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
        if value > best:
            best, target = value, name
    return best, target


def threshold_for(scores: Iterable[float], budget: float = FP_BUDGET) -> float:
    """The lowest threshold that flags at most ``budget`` of ``scores``."""
    ranked = sorted(scores, reverse=True)
    allowed = int(budget * len(ranked))
    return ranked[allowed] + 1e-9 if allowed < len(ranked) else 0.0


def manipulation(name: str, target: str) -> str:
    """The kind of manipulation (issue 14's table) that makes ``name`` from ``target``, for per-kind recall.

    Descriptive only: it reads the relation the similarity module finds
    between the two names, and never feeds the score.
    """
    cand, aim = NameForms.of(name), NameForms.of(target)
    relation = relate(cand, aim)
    if relation is None:
        return "three or more edits"
    kind = relation.kind
    if kind == "separator":
        return "separators only"
    if kind in ("version", "digit", "digit-moved"):
        return "version digit"
    if kind in ("rotation", "reorder"):
        return "words swapped"
    if kind in ("truncated", "doubling"):
        return "three or more edits"
    if kind in ("two-edits", "affix-two-edits"):
        return "two edits"
    if kind.startswith("affix") or kind == "decorated-edit":
        added = set(tokens(cand.canonical)) - set(tokens(aim.canonical))
        if kind == "affix" and added and added <= {"lib", "sdk", "dev", "api", "client"}:
            return "generic word added"
        if "py" in relation.words or "python" in relation.words:
            return "py/python added"
        return "other word added"
    return "one edit, short target" if len(aim.compact) <= 5 else "one edit"


@dataclass(frozen=True)
class Scored:
    """One name's held-out score: the fold it was tested in and the threshold of that fold's model."""

    name: str
    target: str | None
    score: float
    found: str | None
    threshold: float
    fold: int


def cross_validate(
    labelled: list[tuple[Squat, Pairs]],
    plain: list[tuple[str, Pairs]],
    squat_fold: Callable[[Squat], int],
    honest_fold: Callable[[str, Pairs], int],
    folds: int = FOLDS,
    synthetic: list[tuple[str, Pairs]] = (),
    target_fold: Callable[[str], int] = lambda target: -1,
) -> tuple[list[Scored], list[Scored]]:
    """Grouped k-fold: every name scored by weights fitted without its fold (see the module docstring).

    Synthetic attacks on a target of the test fold's groups are left out of that fold's fit too.
    """
    squat_out: list[Scored] = []
    honest_out: list[Scored] = []
    for fold in range(folds):
        rows = training_rows(
            [(s.target, pairs) for s, pairs in labelled if squat_fold(s) != fold],
            [pairs for name, pairs in plain if honest_fold(name, pairs) != fold],
            [(target, pairs) for target, pairs in synthetic if target_fold(target) != fold],
        )
        intercept, weights = fit(rows)
        threshold = threshold_for(
            best_of(p, intercept, weights)[0] for n, p in plain if honest_fold(n, p) != fold
        )
        for s, pairs in labelled:
            if squat_fold(s) == fold:
                value, found = best_of(pairs, intercept, weights)
                squat_out.append(Scored(s.name, s.target, value, found, threshold, fold))
        for name, pairs in plain:
            if honest_fold(name, pairs) == fold:
                value, found = best_of(pairs, intercept, weights)
                honest_out.append(Scored(name, None, value, found, threshold, fold))
    return squat_out, honest_out


def summary_line(label: str, squats: list[Scored], honest: list[Scored]) -> dict[str, float]:
    flagged = [s for s in squats if s.score >= s.threshold]
    right = sum(1 for s in flagged if s.found == s.target)
    false_pos = sum(1 for h in honest if h.score >= h.threshold)
    measured = {
        "recall": len(flagged) / max(len(squats), 1),
        "right target": right / max(len(flagged), 1),
        "false positives": false_pos / max(len(honest), 1),
    }
    print(f"  {label:<28} recall {measured['recall']:.3f}  right target {measured['right target']:.3f}  "
          f"false positives {false_pos}/{len(honest)} = {measured['false positives']:.2%}  "
          f"({len(squats)} typosquats)")
    return measured


def curve(squats: list[tuple[float, str | None, str | None]], honest: list[float], marks: dict[float, str]) -> None:
    """Recall, right target and false positives at every threshold in THRESHOLDS (plus ``marks``)."""
    print(f"  {'threshold':>9}  {'recall':>7}  {'right target':>12}  {'false pos.':>10}  {'FP rate':>8}")
    for threshold in sorted(set(THRESHOLDS) | set(marks)):
        flagged = [(value, found, target) for value, found, target in squats if value >= threshold]
        right = sum(1 for _, found, target in flagged if found == target)
        false_pos = sum(1 for value in honest if value >= threshold)
        print(f"  {threshold:9.3f}  {len(flagged) / len(squats):7.3f}  {right / max(len(flagged), 1):12.3f}  "
              f"{false_pos:10d}  {false_pos / len(honest):8.4f}{marks.get(threshold, '')}")


def per_kind(rows: list[tuple[str, str, bool]]) -> None:
    """Recall per kind of manipulation, from (name, target, flagged) rows."""
    total: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    for name, target, flagged in rows:
        kind = manipulation(name, target)
        total[kind] += 1
        caught[kind] += flagged
    for kind, count in total.most_common():
        print(f"    {kind:<24} {caught[kind] / count:6.3f}  ({caught[kind]}/{count})")


def synthetic_pairs(
    popular: list[tuple[str, int]], excluded: set[str], corpus: PopularCorpus, config: TyposquatConfig,
    kinds: str = ",".join(SYNTHETIC_KINDS),
) -> list[tuple[str, Pairs]]:
    """(target, pairs) of the synthetic attacks, none of them a popular or an ``excluded`` (labelled) name."""
    targets = [canonical(name) for name, _ in popular[:SYNTHETIC_TOP]]
    known = {canonical(name) for name, _ in popular} | excluded
    made = []
    chosen = {kind for kind in kinds.split(",") if kind}
    for kind, name, target in synthetic_squats(targets, random.Random(14)):
        if kind not in chosen:
            continue
        try:
            name = canonical(name)
        except ValueError:
            continue
        if name not in known and name != target:
            known.add(name)
            made.append((target, candidate_pairs(name, corpus, config)))
    return made


def held_out(
    squats: list[Squat], honest: list[str], corpus: PopularCorpus, misses: int, synthetic: list[tuple[str, Pairs]]
) -> dict[str, float]:
    print(f"\nHEADLINE - held out ({FOLDS}-fold, grouped by target; weights refitted without the "
          f"test fold, threshold at <= {FP_BUDGET:.1%} false positives on the fitting folds):")
    config = TyposquatConfig(allowlist=frozenset())
    labelled = [(s, candidate_pairs(s.name, corpus, config)) for s in squats]
    plain = [(name, candidate_pairs(name, corpus, config)) for name in honest]
    group = groups(squats)

    def honest_group(name: str, pairs: Pairs) -> str:
        nearest = pairs[0][0] if pairs else name
        return group.get(nearest, nearest)

    squat_out, honest_out = cross_validate(
        labelled, plain, lambda s: fold_of(group[s.target]), lambda n, p: fold_of(honest_group(n, p)),
        synthetic=synthetic, target_fold=lambda target: fold_of(group.get(target, target)),
    )
    headline = summary_line("all folds pooled", squat_out, honest_out)
    for fold in range(FOLDS):
        label = f"fold {fold}" + (" (lock box)" if fold == LOCK_BOX else "")
        summary_line(label, [s for s in squat_out if s.fold == fold], [h for h in honest_out if h.fold == fold])
    # Stress line: the one big campaign against everything else, both ways round.
    big = Counter(campaign(s) for s in squats if campaign(s)).most_common(1)[0][0]
    in_big = {s.target for s in squats if campaign(s) == big}
    joined = groups(squats, by_campaign_too=True)
    big_group = joined[next(iter(in_big))]
    side = {t: int(g == big_group) for t, g in joined.items()}
    stress_s, stress_h = cross_validate(
        labelled, plain, lambda s: side[s.target], lambda n, p: side.get(honest_group(n, p), 0), folds=2,
        synthetic=synthetic, target_fold=lambda target: side.get(joined.get(target, target), 0),
    )
    print(f"  leave-campaign-out stress line (the campaign holding {sum(side[s.target] for s in squats)} rows "
          "with every target it touched, against the rest):")
    summary_line("campaign held out", [s for s in stress_s if s.fold == 1], [h for h in stress_h if h.fold == 1])
    summary_line("rest held out", [s for s in stress_s if s.fold == 0], [h for h in stress_h if h.fold == 0])
    print("\n  trade-off curve of the pooled out-of-fold scores:")
    curve([(s.score, s.found, s.target) for s in squat_out], [h.score for h in honest_out], {})
    print("\n  held-out recall per kind of manipulation (each at its fold's threshold):")
    per_kind([(s.name, s.target or "", s.score >= s.threshold) for s in squat_out])
    if misses:
        print(f"\n  held-out misses, folds other than the lock box (first {misses}):")
        for s in [s for s in squat_out if s.fold != LOCK_BOX and s.score < s.threshold][:misses]:
            kind = manipulation(s.name, s.target or "")
            print(f"    {s.name:30} {s.target:25} {s.score:.2f}/{s.threshold:.2f} {kind}")
        print(f"\n  held-out false alarms, folds other than the lock box (first {misses}):")
        for h in sorted((h for h in honest_out if h.fold != LOCK_BOX and h.score >= h.threshold),
                        key=lambda h: -h.score)[:misses]:
            print(f"    {h.name:30} {h.found or '-':25} {h.score:.2f}/{h.threshold:.2f}")
    return headline


def refit(
    squats: list[Squat], honest: list[str], corpus: PopularCorpus, config: TyposquatConfig,
    synthetic: list[tuple[str, Pairs]],
) -> TyposquatConfig:
    """Fit the weights on every labelled row, calibrate, write them to the package, return a config using them.

    The intercept is shifted so that the default threshold flags <= 0.5% of
    the honest names: calibrated on the fitting rows, so in sample.
    """
    labelled = [(s.target, candidate_pairs(s.name, corpus, config)) for s in squats]
    plain = [candidate_pairs(name, corpus, config) for name in honest]
    rows = training_rows(labelled, plain, synthetic)
    intercept, weights = fit(rows)
    cut = min(max(threshold_for(best_of(p, intercept, weights)[0] for p in plain), 1e-6), 1 - 1e-6)
    intercept += math.log(config.threshold / (1 - config.threshold)) - math.log(cut / (1 - cut))
    document = {
        "fitted_by": "python benchmarks/detectors_eval.py --fit",
        "rows": len(rows),
        "c": FIT_C,
        "positive_weight": FIT_POSITIVE_WEIGHT,
        "calibrated": f"intercept shifted so that {config.threshold} flags <= {FP_BUDGET:.1%} of the honest rows",
        "intercept": round(intercept, 3),
        "weights": {name: round(value, 3) for name, value in sorted(weights.items()) if abs(value) >= 0.0005},
    }
    text = json.dumps(document, indent=1) + "\n"
    WEIGHTS_FILE.write_text(text, encoding="utf-8")
    print(f"fitted {len(document['weights'])} weights on {len(rows)} rows; written to {WEIGHTS_FILE}")
    intercept, weights = load_weights(text)
    return replace(config, intercept=intercept, weights=weights)


def ml_sets(config: TyposquatConfig, *, misses: bool = False) -> dict[str, float]:
    """The ML squat sets and the ML look-alike list, with the built-in corpus and allowlist.

    ``config`` carries the weights measured (the shipped ones, or those
    ``--fit`` just wrote: the bundled weights are read once per process).
    ``misses`` lists the misses of the development sets; the lock box's
    are never printed.
    """
    corpus = PopularCorpus.bundled()
    now = datetime(2026, 5, 1, tzinfo=timezone.utc)
    detectors = DetectorConfig(typosquat=replace(config, allowlist=load_allowlist()))

    def flagged(name: str) -> list:
        findings = run_name_detectors(ProjectFacts(name=name, now=now, corpus=corpus), detectors)
        return [f for f in findings if f.severity >= Severity.MEDIUM]

    recalls = {}
    for label, squats_file, shown in ML_SQUAT_SETS:
        with open(squats_file, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        results = [(row, flagged(row["name"])) for row in rows]
        caught = [(row, found) for row, found in results if found]
        right = sum(1 for row, found in caught if found[0].target == row["target"])
        recalls[label] = len(caught) / len(rows)
        print(f"\nML squat set, {label} ({squats_file.name}, {len(rows)} names; built-in corpus):")
        print(f"  recall {len(caught) / len(rows):.3f}  right target {right / max(len(caught), 1):.3f}")
        total: Counter[str] = Counter(row["kind"] for row in rows)
        hits: Counter[str] = Counter(row["kind"] for row, _ in caught)
        for kind, count in total.most_common():
            print(f"    {kind:<24} {hits[kind] / count:6.3f}  ({hits[kind]}/{count})")
        if misses and shown:
            for row, found in results:
                if not found:
                    print(f"    missed: {row['name']} ({row['kind']}, {row['target']})")
    lines = ML_LOOKALIKES.read_text(encoding="utf-8").splitlines()
    names = [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    bad = [(name, found[0].title) for name in names if (found := flagged(name))]
    print(f"\nML look-alike list ({ML_LOOKALIKES.name}): {len(bad)} of {len(names)} real ML projects flagged")
    for name, title in bad:
        print(f"    {name}: {title}")
    return {"ml recall": recalls["lock box"], "ml flagged": float(len(bad))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--misses", type=int, default=0, help="print this many held-out misses (not of the lock box)")
    parser.add_argument("--fit", action="store_true", help=f"refit the weights on all rows and write {WEIGHTS_FILE.name}")
    parser.add_argument("--synthetic-kinds", default=",".join(DEFAULT_SYNTHETIC),
                        help="kinds of synthetic attack fitted on (comma-separated; '' for none)")
    parser.add_argument("--in-sample-only", "--quick", action="store_true", dest="in_sample_only",
                        help="skip the held-out refits (fast; no headline)")
    args = parser.parse_args(argv)

    popular, squats = load(args.data)
    config = TyposquatConfig(allowlist=frozenset())
    corpus = PopularCorpus.from_rows(popular[:5000])
    honest = [name for name, _ in popular[5000:15000]]
    print(f"corpus: {len(corpus)} names; typosquats: {len(squats)}; honest names: {len(honest)}")
    synthetic = synthetic_pairs(popular, labelled_names(args.data), corpus, config, args.synthetic_kinds)
    if args.synthetic_kinds:
        print(f"synthetic attacks for fitting only ({args.synthetic_kinds} on the top {SYNTHETIC_TOP:,} names, "
              f"each {SYNTHETIC_WEIGHT} of a real row): {len(synthetic)}")
    if args.fit:
        config = refit(squats, honest, corpus, config, synthetic)

    headline = None if args.in_sample_only else held_out(squats, honest, corpus, args.misses, synthetic)

    started = time.perf_counter()
    squat_results = [(s.name, s.target, *best(s.name, corpus, config)) for s in squats]
    honest_results = [(name, *best(name, corpus, config)) for name in honest]
    elapsed = time.perf_counter() - started
    default = config.threshold
    print(f"\nsecondary - IN SAMPLE: shipped weights on the rows they were fitted on "
          f"({len(squats) + len(honest)} names checked in {elapsed:.2f} s):")
    curve([(value, found, target) for _, target, value, found, _ in squat_results],
          [value for _, value, _, _ in honest_results], {default: "  <- default"})
    print("  in-sample recall per kind at the default threshold:")
    per_kind([(name, target, value >= default) for name, target, value, _, _ in squat_results])
    decorated = ("types-", "pytest-", "django-")
    shaped = [(name, words) for name, value, _, words in honest_results if value >= default
              and (name.startswith(decorated) or name.endswith("-stubs") or name[-1].isdigit())]
    print(f"  honest types-*/*-stubs/pytest-*/django-*/digit-ending names flagged: {len(shaped)}"
          + "".join(f"\n    {name}: {words}" for name, words in shaped))

    ml = ml_sets(config, misses=args.misses > 0)
    measured = headline or {}
    missed = [name for name, value in measured.items() if not GOALS[name](value)]
    if ml["ml recall"] < 0.95:
        missed.append("ML squat recall (lock box)")
    if ml["ml flagged"]:
        missed.append("ML look-alikes flagged")
    print("\ngoals (held out: recall >= 0.95, right target >= 0.95, false positives <= 0.5%; ML squat recall "
          "on the lock box >= 0.95; no ML look-alike flagged): "
          + ("met" if not missed else "missed (" + ", ".join(missed) + ")"))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
