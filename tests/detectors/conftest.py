"""Small corpora built from plain data, and the bundled one (loaded once)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from detectors.corpus import PopularCorpus
from detectors.facts import InternalNames

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

# A slice of the real popularity list, most downloaded first.
POPULAR = [
    ("boto3", 1_880_218_825),
    ("requests", 1_100_000_000),
    ("python-dateutil", 700_000_000),
    ("pyyaml", 560_000_000),
    ("numpy", 500_000_000),
    ("pandas", 300_000_000),
    ("colorama", 200_000_000),
    ("beautifulsoup4", 110_000_000),
    ("matplotlib", 90_000_000),
    ("scikit-learn", 80_000_000),
    ("tqdm", 70_000_000),
    ("pillow", 60_000_000),
    ("websocket-client", 50_000_000),
    ("eth-account", 9_000_000),
    ("flask", 40_000_000),
    ("ujson", 30_000_000),
    ("attrs", 400_000_000),
    ("rich", 150_000_000),
    ("six", 300_000_000),
    ("web3", 5_000_000),
]


@pytest.fixture(scope="session")
def corpus() -> PopularCorpus:
    return PopularCorpus.from_rows(POPULAR, extra=["torch", "vllm"])


@pytest.fixture(scope="session")
def bundled() -> PopularCorpus:
    return PopularCorpus.bundled()


@pytest.fixture(scope="session")
def internal() -> InternalNames:
    return InternalNames.build(["acme-auth", "acme-billing-service", "widgetcorp-sdk"], ["acme-*"])
