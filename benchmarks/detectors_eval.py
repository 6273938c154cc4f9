"""Recall and false alarms of the typosquat detector, across its score threshold.

Protocol (issue 3): the corpus is the first 5,000 rows of the popular list;
recall is measured on the labelled typosquats whose target ranks within those
5,000, "right target" is the share of flagged names whose best match is the
labelled target, and the false-positive rate is measured on the popular list's
rows 5,001-15,000 (honest projects) checked against the same corpus.  The
bundled allowlist is switched off: it must not help the measurement.

Run: python benchmarks/detectors_eval.py [--data DIR] [--misses N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.corpus import PopularCorpus  # noqa: E402
from detectors.names import canonical  # noqa: E402
from detectors.typosquat import TyposquatConfig, find_matches  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9)


def load(data: Path) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    with open(data / "popular_packages.csv", newline="", encoding="utf-8") as handle:
        popular = [(row["project"], int(row["download_count"])) for row in csv.DictReader(handle)]
    with open(data / "malicious_names.csv", newline="", encoding="utf-8") as handle:
        squats = [
            (row["name"], canonical(row["target"]))
            for row in csv.DictReader(handle)
            if row["label"] == "typosquat" and row["target_rank"] and int(row["target_rank"]) <= 5000
        ]
    return popular, squats


def best(name: str, corpus: PopularCorpus, config: TyposquatConfig) -> tuple[float, str | None, str]:
    matches = find_matches(name, corpus, config)
    if not matches:
        return 0.0, None, ""
    top = matches[0]
    return top.score, top.target.name, top.description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--misses", type=int, default=0, help="print this many misses and false alarms")
    args = parser.parse_args(argv)

    popular, squats = load(args.data)
    config = TyposquatConfig(allowlist=frozenset())
    corpus = PopularCorpus.from_rows(popular[:5000])
    honest = [name for name, _ in popular[5000:15000]]

    started = time.perf_counter()
    squat_results = [(name, target, *best(name, corpus, config)) for name, target in squats]
    honest_results = [(name, *best(name, corpus, config)) for name in honest]
    elapsed = time.perf_counter() - started

    print(f"corpus: {len(corpus)} names; typosquats: {len(squats)}; honest names: {len(honest)}")
    print(f"checked {len(squats) + len(honest)} names in {elapsed:.2f} s")
    print()
    print(f"{'threshold':>9}  {'recall':>7}  {'right target':>12}  {'false pos.':>10}  {'FP rate':>8}")
    default = config.threshold
    for threshold in sorted(set(THRESHOLDS) | {default}):
        flagged = [r for r in squat_results if r[2] >= threshold]
        right = sum(1 for r in flagged if r[3] == r[1])
        false_pos = sum(1 for r in honest_results if r[1] >= threshold)
        mark = "  <- default" if threshold == default else ""
        print(
            f"{threshold:9.2f}  {len(flagged) / len(squats):7.3f}  {right / max(len(flagged), 1):12.3f}  "
            f"{false_pos:10d}  {false_pos / len(honest):8.4f}{mark}"
        )
    if args.misses:
        print("\nmissed typosquats at the default threshold:")
        for name, target, value, found, words in [r for r in squat_results if r[2] < default][: args.misses]:
            print(f"  {name:30} {target:25} {value:.2f} {found or '-'} {words}")
        print("\nfalse alarms at the default threshold:")
        ranked = sorted((r for r in honest_results if r[1] >= default), key=lambda r: -r[1])
        for name, value, found, words in ranked[: args.misses]:
            print(f"  {name:30} {value:.2f} {words}")
        print("\nwrong target at the default threshold:")
        for name, target, value, found, words in [r for r in squat_results if r[2] >= default and r[3] != r[1]]:
            print(f"  {name:30} {target:25} {value:.2f} {words}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
