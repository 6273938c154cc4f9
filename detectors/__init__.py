"""IndexGuard's detectors: a pure library, facts in, findings out.

No HTTP, no database, no clock: everything a detector needs arrives in a
``ProjectFacts`` or ``ReleaseFacts`` value, so the mirror, the re-audit job
and the ``indexguard check`` command share the same rules and every rule can
be tested with plain data.

The names below load with the module that defines them, on first use: a
process that only reports findings (``detectors.findings``) never loads the
name index and its native libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detectors.corpus import NameIndex, PopularCorpus, Project
    from detectors.facts import DownloadStats, InternalNames, ProjectFacts, ReleaseFacts
    from detectors.findings import Finding, Severity
    from detectors.run import DetectorConfig, load_corpus, run_all, run_name_detectors, run_release_detectors

_HOMES = {
    "NameIndex": "corpus", "PopularCorpus": "corpus", "Project": "corpus",
    "DownloadStats": "facts", "InternalNames": "facts", "ProjectFacts": "facts", "ReleaseFacts": "facts",
    "Finding": "findings", "Severity": "findings",
    "DetectorConfig": "run", "load_corpus": "run", "run_all": "run", "run_name_detectors": "run",
    "run_release_detectors": "run",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'detectors' has no attribute {name!r}")
    return getattr(importlib.import_module(f"detectors.{home}"), name)
