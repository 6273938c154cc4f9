"""Issue 14's ML sets, with the built-in corpus.

``ml_lookalikes.txt``: real ML projects whose names look like variants of
other ML projects (built from the public package list by the rule in its
header); every one must be allowed.  ``ml_squats.csv``: squats of ML
projects written by hand and frozen before the detector was tuned (none
taken from any evaluation set, none an existing public project); the
benchmark (``benchmarks/detectors_eval.py``) reports its recall per kind.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path



from detectors import PopularCorpus, ProjectFacts, Severity, run_name_detectors
from tests.detectors.conftest import NOW

HERE = Path(__file__).parent
# The frozen set scored 0.55 when this test was written and 0.82 once
# decorations of curated ML names and separator-only copies were weighed
# (the benchmark reports it per kind; issue 14's goal is 0.95); a fall below
# this floor is a regression.
ML_SQUAT_RECALL_FLOOR = 0.8


def lookalikes() -> list[str]:
    lines = (HERE / "ml_lookalikes.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def squats() -> list[dict[str, str]]:
    with open(HERE / "ml_squats.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def blocking(name: str, corpus: PopularCorpus) -> list:
    findings = run_name_detectors(ProjectFacts(name=name, now=NOW, corpus=corpus))
    return [f for f in findings if f.severity >= Severity.MEDIUM]


def test_the_lookalike_list_is_large_and_names_the_projects_the_issue_names() -> None:
    names = lookalikes()
    assert len(names) >= 250 and len(set(names)) == len(names)
    for name in ("torchvision", "torchaudio", "tensorflow-cpu", "tf-keras", "jaxlib", "opencv-python-headless",
                 "nvidia-cudnn-cu12", "langchain-openai", "llama-index-core", "faster-whisper", "onnxruntime-gpu"):
        assert name in names, name


def test_every_real_ml_lookalike_is_allowed_with_the_built_in_corpus(bundled: PopularCorpus) -> None:
    # Never pass this by allowlisting a listed name: the list stands for
    # every honest ML project the detector has not seen.
    flagged = {name: blocking(name, bundled)[0].title for name in lookalikes() if blocking(name, bundled)}
    assert flagged == {}


def test_the_frozen_squat_set_covers_every_kind_and_imitates_protected_names(bundled: PopularCorpus) -> None:
    rows = squats()
    assert len(rows) >= 150
    kinds = Counter(row["kind"] for row in rows)
    assert set(kinds) >= {"affix", "separator", "digit", "two-edits", "short", "three-edits", "swap", "combo"}
    for row in rows:
        assert bundled.get(row["target"]) is not None, row
        assert bundled.get(row["name"]) is None, row


def test_the_frozen_squat_set_stays_caught(bundled: PopularCorpus) -> None:
    rows = squats()
    caught = sum(1 for row in rows if blocking(row["name"], bundled))
    assert caught / len(rows) >= ML_SQUAT_RECALL_FLOOR
