"""Release content screening: look inside every new release before it is served.

A pure library, like ``detectors``: bytes or paths and the previous
release's inventory in, findings (``detectors.facts.Finding``, detectors
named ``content.*`` and ``provenance.*``) and a new inventory out.  It
imports nothing else from the mirror, does no I/O beyond reading the
artifact it is given, and keeps no state between calls except the
default rule set (compiled on the first scan, with one yara-x scanner per
thread).

Entry points:

- ``scan_release(artifacts, previous_inventory, config)`` -> ``ReleaseReport``
- ``scan_artifact(artifact, previous_inventory, config)`` -> ``ArtifactReport`` (one file, streaming case)
- ``scan_member(path, data, kind=..., pure=..., rules=..., config=...)`` -> behaviours of one member
- ``verify_provenance(filename, sha256, provenance)`` -> ``ProvenanceResult``
- ``load_rules()`` / ``default_rules()`` -> ``RuleSet`` (compile once, share)
"""

from mirror.content.archive import ScanIncomplete
from mirror.content.config import ScanConfig
from mirror.content.provenance import ProvenanceResult, Publisher, verify_provenance
from mirror.content.report import ArtifactReport, ReleaseReport
from mirror.content.rules import Behaviour, RuleSet, default_rules, load_rules
from mirror.content.scan import Artifact, scan_artifact, scan_member, scan_release

__all__ = [
    "Artifact",
    "ArtifactReport",
    "Behaviour",
    "ProvenanceResult",
    "Publisher",
    "ReleaseReport",
    "RuleSet",
    "ScanConfig",
    "ScanIncomplete",
    "default_rules",
    "load_rules",
    "scan_artifact",
    "scan_member",
    "scan_release",
    "verify_provenance",
]
