"""Rebuild ``detectors/data/description_words.tsv.gz`` from a list of public projects.

The typosquat score asks whether a candidate name is a word that other
projects use when they describe themselves ('unicorn', 'identity',
'persistent'): an honest name usually is one, a slip of the hand
('reqeyst') never is.  This script counts, for every word of the one-line
summaries of all public projects, how many projects use it - not counting a
project whose own name contains the word, so that no project vouches for
its own name.

Input: a TSV whose first line names the columns, with the project name in
the first column and the summary in the column named ``summary`` (the
machine's ``packages/pypi.tsv`` has this shape).

Run: python benchmarks/build_vocabulary.py [--public FILE] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import Counter
from pathlib import Path

from packaging.utils import InvalidName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PUBLIC = Path("/work/.library/env/packages/pypi.tsv")
DEFAULT_OUT = ROOT / "detectors" / "data" / "description_words.tsv.gz"
WORD = re.compile(r"[a-z][a-z0-9]+")
# Longer strings are not names anybody types; they only cost memory.
MAX_LENGTH = 40


def count_words(lines: list[str] | object) -> Counter[str]:
    """Per word, the number of projects whose summary uses it and whose name does not."""
    counts: Counter[str] = Counter()
    column = None
    for number, line in enumerate(lines):
        fields = line.rstrip("\n").split("\t")
        if number == 0:
            column = fields.index("summary")
            continue
        if column is None or len(fields) <= column:
            continue
        try:
            name = canonicalize_name(fields[0], validate=True)
        except InvalidName:
            continue
        own = set(name.split("-")) | {name.replace("-", "")}
        words = {w for w in WORD.findall(fields[column].lower()) if len(w) <= MAX_LENGTH}
        counts.update(words - own)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", type=Path, default=DEFAULT_PUBLIC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    with open(args.public, encoding="utf-8", errors="replace") as handle:
        counts = count_words(handle)
    text = "".join(f"{word}\t{count}\n" for word, count in sorted(counts.items()))
    # mtime=0: the same input gives the same bytes.
    args.out.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"{len(counts):,} words written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
