"""PEP 740 provenance through the server, with real recorded attestations
(tests/content/assets/README.md says where they come from): the mirror serves
its own copy, verifies it before the file is served, and flags a release of an
attested project that comes without one, or with one that does not match."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import requests

from mirror.db.models import ArtifactScan, Release
from tests.support.dists import build_sdist
from tests.support.publish import ESTABLISHED

ASSETS = Path(__file__).resolve().parents[1] / "content" / "assets"
SDIST = ASSETS / "pypi_attestations-0.0.19.tar.gz"
PROVENANCE = json.loads((ASSETS / "pypi_attestations-0.0.19.tar.gz.provenance").read_text())
JSON = "application/vnd.pypi.simple.v1+json"


def files(mirror, name: str) -> list[dict]:
    response = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["files"]


def absolute(mirror, name: str, url: str) -> str:
    return requests.compat.urljoin(mirror.simple_url + f"{name}/", url)


def scan_of(mirror, version: str, seconds: float = 30) -> ArtifactScan | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with mirror.services.sessions() as session:
            scan = session.query(ArtifactScan).filter_by(project="pypi-attestations", version=version).first()
        if scan is not None:
            return scan
        time.sleep(0.1)
    return None


def publish_attested(index_server, clock) -> None:
    index_server.add_file("pypi-attestations", SDIST, upload_time=clock() - ESTABLISHED, provenance=PROVENANCE)
    index_server.set_project_info("pypi-attestations", owners={"maintainer-one": "Owner"})


def test_provenance_is_served_from_the_mirror_and_verified(mirror, index_server, clock) -> None:
    publish_attested(index_server, clock)
    [entry] = files(mirror, "pypi-attestations")
    assert entry["provenance"].startswith("../../files/") and index_server.url not in entry["provenance"]
    copy = requests.get(absolute(mirror, "pypi-attestations", entry["provenance"]), timeout=30)
    assert copy.status_code == 200 and copy.json() == PROVENANCE
    assert copy.headers["content-type"].startswith("application/vnd.pypi.integrity.v1+json")
    download = requests.get(absolute(mirror, "pypi-attestations", entry["url"]), timeout=60)
    assert download.status_code == 200 and download.content == SDIST.read_bytes()
    scan = scan_of(mirror, "0.0.19")
    summary = scan.report["inventory"]["provenance"]
    assert summary["attested"] is True
    [publisher] = summary["publishers"]
    assert publisher["repository"] == "trailofbits/pypi-attestations"
    assert not [f for f in scan.report["findings"] if f["detector"].startswith("provenance.")]


def test_a_release_of_an_attested_project_without_provenance_is_held(mirror, index_server, clock, tmp_path) -> None:
    publish_attested(index_server, clock)
    [entry] = files(mirror, "pypi-attestations")
    assert requests.get(absolute(mirror, "pypi-attestations", entry["url"]), timeout=60).status_code == 200
    assert scan_of(mirror, "0.0.19").action == "allow"
    unattested = build_sdist(tmp_path, "pypi-attestations", "0.0.20")  # the stolen-token pattern: no attestation
    index_server.add_file("pypi-attestations", unattested, upload_time=clock() - timedelta(hours=1))
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    files(mirror, "pypi-attestations")
    scan = scan_of(mirror, "0.0.20")
    assert scan is not None and scan.action == "hold", scan.report["findings"] if scan else None
    assert any(f["detector"] == "provenance.missing" for f in scan.report["findings"])
    with mirror.services.sessions() as session:
        assert session.query(Release).filter_by(project="pypi-attestations", version="0.0.20").one().state == "held"


def test_a_provenance_that_does_not_match_its_file_is_refused(mirror, index_server, clock, tmp_path) -> None:
    other = build_sdist(tmp_path, "pypi-attestations", "0.0.19", summary="not the attested bytes")
    index_server.add_file("pypi-attestations", other, upload_time=clock() - ESTABLISHED, provenance=PROVENANCE)
    index_server.set_project_info("pypi-attestations", owners={"maintainer-one": "Owner"})
    [entry] = files(mirror, "pypi-attestations")
    url = absolute(mirror, "pypi-attestations", entry["url"])
    try:
        got = requests.get(url, timeout=60)
        completed = got.status_code == 200 and got.content == other.read_bytes()
    except requests.RequestException:
        completed = False
    assert not completed
    scan = scan_of(mirror, "0.0.19")
    assert scan.action == "deny"
    assert any(f["detector"] == "provenance.invalid" for f in scan.report["findings"])
    assert requests.get(url, timeout=30).status_code == 403
