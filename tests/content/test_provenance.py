"""PEP 740 provenance, verified offline on real recorded attestations (see assets/README.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from detectors.facts import Severity
from mirror.content import Artifact, scan_release, verify_provenance
from mirror.content.provenance import Publisher, provenance_findings

ASSETS = Path(__file__).with_name("assets")
DIST = ASSETS / "pypi_attestations-0.0.19.tar.gz"
PROVENANCE = (ASSETS / "pypi_attestations-0.0.19.tar.gz.provenance").read_bytes()
SIGSTORE_NAME = "sigstore-3.6.1.tar.gz"
SIGSTORE_SHA = "ee60fdc9236fd6709271ad53b44027461360c3fde155d2af15482e4c451ff865"
SIGSTORE_PROVENANCE = (ASSETS / "sigstore-3.6.1.tar.gz.provenance").read_bytes()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_real_provenance_verifies_offline_with_publisher_identity():
    result = verify_provenance(DIST.name, _sha(DIST), PROVENANCE)
    assert result.verified, result.error
    assert result.publisher == Publisher(
        kind="GitHub", repository="trailofbits/pypi-attestations", repository_id="772247423", owner="trailofbits",
        owner_id="2314423", workflow="release.yml", environment=None, email=None,
        issuer="https://token.actions.githubusercontent.com",
    )
    from pypi_attestations import AttestationType

    assert result.predicate_types == (AttestationType.PYPI_PUBLISH_V1.value,)


def test_tampered_artifact_does_not_verify():
    result = verify_provenance(DIST.name, hashlib.sha256(DIST.read_bytes() + b"x").hexdigest(), PROVENANCE)
    assert not result.verified and "digest" in result.error


def test_provenance_for_another_file_does_not_verify():
    result = verify_provenance(SIGSTORE_NAME, SIGSTORE_SHA, PROVENANCE)
    assert not result.verified


def test_tampered_provenance_does_not_verify():
    doc = json.loads(PROVENANCE)
    doc["attestation_bundles"][0]["attestations"][0]["envelope"]["signature"] = "MEUCIQ" + "A" * 90
    assert not verify_provenance(DIST.name, _sha(DIST), json.dumps(doc)).verified


def test_garbage_provenance_is_not_a_crash():
    result = verify_provenance(DIST.name, _sha(DIST), b"{not json")
    assert result.present and not result.verified and "unreadable" in result.error


def _release(provenance=None, *, known=True):
    return [Artifact(DIST.name, DIST, provenance=provenance, provenance_known=known)]


def test_attested_release_then_unattested_one_is_flagged():
    first = scan_release(_release(PROVENANCE), None)
    assert not [f for f in first.findings if f.detector.startswith("provenance.")]
    assert first.inventory["provenance"]["attested_ever"] is True
    second = scan_release(_release(None), first.inventory)
    [found] = [f for f in second.findings if f.detector == "provenance.missing"]
    assert found.severity == Severity.HIGH and found.evidence["file"] == DIST.name
    assert found.evidence["new_since"] == "0.0.19"


def test_unknown_provenance_is_not_read_as_missing():
    first = scan_release(_release(PROVENANCE), None)
    second = scan_release(_release(known=False), first.inventory)
    assert not [f for f in second.findings if f.detector.startswith("provenance.")]
    assert second.inventory["provenance"]["attested_ever"] is True


def test_tampered_file_with_provenance_is_critical(tmp_path):
    fake = tmp_path / DIST.name
    fake.write_bytes(DIST.read_bytes()[:-10] + b"0" * 10)
    report = scan_release([Artifact(fake.name, fake, provenance=PROVENANCE)], None)
    [found] = [f for f in report.findings if f.detector == "provenance.invalid"]
    assert found.severity == Severity.CRITICAL


def _previous(publisher: Publisher) -> dict:
    return {"attested_ever": True, "publishers": [publisher.to_dict()]}


def test_changed_publisher_is_flagged():
    result = verify_provenance(SIGSTORE_NAME, SIGSTORE_SHA, SIGSTORE_PROVENANCE)
    assert result.verified and result.publisher.repository == "sigstore/sigstore-python"
    earlier = verify_provenance(DIST.name, _sha(DIST), PROVENANCE).publisher
    [found] = provenance_findings([result], _previous(earlier), release="3.6.1", previous_version="3.6.0")
    assert found.detector == "provenance.publisher-changed" and found.severity == Severity.HIGH
    assert found.evidence["publisher"]["repository"] == "sigstore/sigstore-python"


def test_same_repository_name_with_another_id_is_critical():
    result = verify_provenance(DIST.name, _sha(DIST), PROVENANCE)
    impostor = Publisher(**{**result.publisher.to_dict(), "repository_id": "1"})
    [found] = provenance_findings([result], _previous(impostor), release="0.0.19", previous_version="0.0.18")
    assert found.detector == "provenance.repository-id-changed" and found.severity == Severity.CRITICAL


def test_changed_workflow_is_medium():
    result = verify_provenance(DIST.name, _sha(DIST), PROVENANCE)
    other = Publisher(**{**result.publisher.to_dict(), "workflow": "other.yml"})
    [found] = provenance_findings([result], _previous(other), release="0.0.19", previous_version="0.0.18")
    assert found.detector == "provenance.workflow-changed" and found.severity == Severity.MEDIUM


def test_same_publisher_is_quiet():
    result = verify_provenance(DIST.name, _sha(DIST), PROVENANCE)
    assert provenance_findings([result], _previous(result.publisher), release="0.0.19", previous_version="0.0.18") == []


@pytest.mark.parametrize("previous", [None, {"attested_ever": False, "publishers": []}])
def test_never_attested_project_without_provenance_is_quiet(previous):
    result = verify_provenance(DIST.name, _sha(DIST), None)
    assert provenance_findings([result], previous, release="1", previous_version="0") == []
