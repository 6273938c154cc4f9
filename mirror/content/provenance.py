"""PEP 740 provenance: verify it offline and compare the publisher with earlier releases.

A valid attestation proves which CI identity uploaded a file, not that the
file is benign (ultralytics 8.3.41 was attested by its real workflow).  What
it does catch is the stolen-token case: a project whose releases were
attested publishes one that is not (ultralytics 8.3.45), or one attested by
another repository or workflow, or by a repository of the same name that is
in fact another repository (a different numeric ID: deleted and re-created,
or a renamed owner taken over).

Verification is offline with ``pypi-attestations`` and sigstore's bundled
trust root: nothing is fetched, so it works on the mirror's locked-down
network and costs a few milliseconds.  The certificate's Fulcio extensions
give the identity fields the publisher object does not carry (repository
and owner IDs, the exact workflow ref).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from detectors.findings import Finding, Severity

from mirror.content.evidence import excerpt, finding

__all__ = ["Publisher", "ProvenanceResult", "provenance_findings", "verify_provenance"]

_OID = "1.3.6.1.4.1.57264.1."
_CLAIM_REPOSITORY_URI = _OID + "12"
_CLAIM_REPOSITORY_ID = _OID + "15"
_CLAIM_OWNER_URI = _OID + "16"
_CLAIM_OWNER_ID = _OID + "17"
_CLAIM_BUILD_CONFIG = _OID + "18"
_CLAIM_ISSUER = _OID + "8"


@dataclass(frozen=True)
class Publisher:
    """Who published a file, as stored per file and compared across releases."""

    kind: str
    repository: str | None = None
    repository_id: str | None = None
    owner: str | None = None
    owner_id: str | None = None
    workflow: str | None = None
    environment: str | None = None
    email: str | None = None
    issuer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Publisher:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProvenanceResult:
    """Outcome for one file: no provenance, verified with a publisher, or failed with the reason."""

    filename: str
    present: bool
    verified: bool
    publisher: Publisher | None = None
    error: str = ""
    predicate_types: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "present": self.present,
            "verified": self.verified,
            "publisher": self.publisher.to_dict() if self.publisher else None,
            "error": self.error,
            "predicate_types": list(self.predicate_types),
        }


def _publisher(bundle_publisher: Any, claims: Mapping[str, str]) -> Publisher:
    kind = getattr(bundle_publisher, "kind", "unknown")
    owner_uri = claims.get(_CLAIM_OWNER_URI)
    return Publisher(
        kind=kind,
        repository=getattr(bundle_publisher, "repository", None),
        repository_id=claims.get(_CLAIM_REPOSITORY_ID),
        owner=owner_uri.rstrip("/").rsplit("/", 1)[-1] if owner_uri else None,
        owner_id=claims.get(_CLAIM_OWNER_ID),
        workflow=getattr(bundle_publisher, "workflow", None) or getattr(bundle_publisher, "workflow_filepath", None),
        environment=getattr(bundle_publisher, "environment", None),
        email=getattr(bundle_publisher, "email", None),
        issuer=claims.get(_CLAIM_ISSUER),
    )


def verify_provenance(filename: str, sha256: str, provenance: bytes | str | Mapping[str, Any] | None) -> ProvenanceResult:
    """Verify a PEP 740 provenance object for the file ``filename`` whose digest is ``sha256``.

    Every attestation of every bundle must verify against its bundle's
    publisher (the Trusted Publisher policy of pypi-attestations), offline.
    """
    if provenance is None:
        return ProvenanceResult(filename=filename, present=False, verified=False)
    from pydantic import ValidationError  # with pypi-attestations (built on it): slow, only when needed
    from pypi_attestations import AttestationError, Distribution, Provenance

    try:
        raw = json.dumps(provenance) if isinstance(provenance, Mapping) else provenance
        parsed = Provenance.model_validate_json(raw)
        dist = Distribution(name=filename, digest=sha256.lower())
    except (ValidationError, ValueError, TypeError) as exc:
        return ProvenanceResult(filename, True, False, error=f"unreadable provenance: {str(exc)[:300]}")
    if not parsed.attestation_bundles or not any(b.attestations for b in parsed.attestation_bundles):
        return ProvenanceResult(filename, True, False, error="provenance holds no attestation")
    publisher: Publisher | None = None
    types: list[str] = []
    for bundle in parsed.attestation_bundles:
        for attestation in bundle.attestations:
            try:
                predicate_type, _ = attestation.verify(bundle.publisher, dist, offline=True)
                claims = attestation.certificate_claims
            except (AttestationError, ValueError) as exc:
                return ProvenanceResult(filename, True, False, publisher=publisher,
                                        error=f"attestation does not verify: {str(exc)[:300]}")
            except Exception as exc:  # sigstore raises a few of its own kinds
                return ProvenanceResult(filename, True, False, publisher=publisher,
                                        error=f"attestation does not verify: {type(exc).__name__}: {str(exc)[:300]}")
            types.append(predicate_type)
            publisher = publisher or _publisher(bundle.publisher, claims)
    return ProvenanceResult(filename, True, True, publisher=publisher, predicate_types=tuple(types))


def _identity(p: Publisher) -> tuple[str | None, ...]:
    return (p.kind, (p.repository or "").lower() or p.email)


def provenance_findings(
    results: Sequence[ProvenanceResult],
    previous: Mapping[str, Any] | None,
    *,
    release: str | None,
    previous_version: str | None,
) -> list[Finding]:
    """Findings from this release's provenance against what earlier releases had.

    ``previous`` is the ``provenance`` part of the previous inventory:
    ``{"attested_ever": bool, "publishers": [Publisher dicts]}``.
    """
    findings: list[Finding] = []
    since = previous_version
    attested_before = bool(previous and previous.get("attested_ever"))
    known = [Publisher.from_dict(p) for p in (previous or {}).get("publishers", [])]
    for result in results:
        if result.present and not result.verified:
            findings.append(finding("provenance.invalid", Severity.CRITICAL,
                                    "provenance does not verify for this file", file=result.filename,
                                    rule="invalid", quote=excerpt(result.error), release=release))
            continue
        if not result.present:
            if attested_before:
                findings.append(finding("provenance.missing", Severity.HIGH,
                                        "earlier releases were attested, this file is not",
                                        file=result.filename, rule="missing", quote="", release=release,
                                        new_since=since))
            continue
        current = result.publisher
        if current is None or not known:
            continue
        same_name = [p for p in known if _identity(p) == _identity(current)]
        if not same_name:
            findings.append(finding("provenance.publisher-changed", Severity.HIGH,
                                    f"published by {current.kind} {current.repository or current.email}, "
                                    f"earlier releases by {', '.join(sorted({str(p.repository or p.email) for p in known}))}",
                                    file=result.filename, rule="publisher-changed",
                                    quote=excerpt(json.dumps(current.to_dict())), release=release, new_since=since,
                                    publisher=current.to_dict(), previous_publishers=[p.to_dict() for p in known]))
            continue
        for old in same_name:
            ids_differ = (
                (old.repository_id and current.repository_id and old.repository_id != current.repository_id)
                or (old.owner_id and current.owner_id and old.owner_id != current.owner_id)
            )
            if ids_differ:
                findings.append(finding("provenance.repository-id-changed", Severity.CRITICAL,
                                        f"repository {current.repository} now has ID {current.repository_id} "
                                        f"(owner {current.owner_id}), before {old.repository_id} (owner {old.owner_id})",
                                        file=result.filename, rule="repository-id-changed",
                                        quote=excerpt(f"{old.repository_id}->{current.repository_id}"),
                                        release=release, new_since=since, publisher=current.to_dict()))
                break
        else:
            if not any(p.workflow == current.workflow for p in same_name):
                findings.append(finding("provenance.workflow-changed", Severity.MEDIUM,
                                        f"published by workflow {current.workflow}, before "
                                        f"{', '.join(sorted({str(p.workflow) for p in same_name}))}",
                                        file=result.filename, rule="workflow-changed",
                                        quote=excerpt(str(current.workflow)), release=release, new_since=since))
            elif not any(p.environment == current.environment for p in same_name):
                findings.append(finding("provenance.environment-changed", Severity.LOW,
                                        f"published from environment {current.environment!r}",
                                        file=result.filename, rule="environment-changed",
                                        quote=excerpt(str(current.environment)), release=release, new_since=since))
    return findings


def provenance_summary(results: Sequence[ProvenanceResult], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``provenance`` part of the new inventory (carried forward to the next release)."""
    publishers = {json.dumps(r.publisher.to_dict(), sort_keys=True) for r in results if r.verified and r.publisher}
    attested = bool(results) and all(r.verified for r in results)
    return {
        "attested": attested,
        "attested_ever": attested or bool(previous and previous.get("attested_ever")),
        "publishers": [json.loads(p) for p in sorted(publishers)]
        or list((previous or {}).get("publishers", [])),
        "files": [r.to_dict() for r in results],
    }
