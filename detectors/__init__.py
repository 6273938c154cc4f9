"""IndexGuard's detectors: a pure library, facts in, findings out.

No HTTP, no database, no clock: everything a detector needs arrives in a
``ProjectFacts`` or ``ReleaseFacts`` value, so the mirror, the re-audit job
and the ``indexguard check`` command share the same rules and every rule can
be tested with plain data.
"""

from detectors.corpus import NameIndex, PopularCorpus, Project
from detectors.facts import DownloadStats, Finding, InternalNames, ProjectFacts, ReleaseFacts, Severity
from detectors.run import DetectorConfig, load_corpus, run_all, run_name_detectors, run_release_detectors

__all__ = [
    "DetectorConfig",
    "DownloadStats",
    "Finding",
    "InternalNames",
    "NameIndex",
    "PopularCorpus",
    "Project",
    "ProjectFacts",
    "ReleaseFacts",
    "Severity",
    "load_corpus",
    "run_all",
    "run_name_detectors",
    "run_release_detectors",
]
