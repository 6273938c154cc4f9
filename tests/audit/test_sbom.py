"""The SBOM: what is cached (and, with a flag, what was pinned), streamed, valid CycloneDX 1.5."""

from __future__ import annotations

import json
from io import StringIO

import requests
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from mirror.audit import sbom as sbom_module
from mirror.audit.sbom import purl, sbom_chunks
from mirror.cli.audit import ProgressReporter
from mirror.cli.main import main
from mirror.db.models import Vulnerability
from tests.audit.support import audit, page, write_advisory
from tests.audit.test_schedule_sbom_cli import write_config
from tests.review.support import Api, make_token
from tests.support.publish import publish

VALIDATOR = JsonStrictValidator(SchemaVersion.V1_5)


def props(component: dict) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component["properties"] if p["name"] != "indexguard:finding"}


def download(mirror, dist) -> None:
    response = requests.get(f"{mirror.url}files/{dist.sha256}/{dist.filename}", timeout=30)
    assert response.status_code == 200, response.text


def test_sbom_lists_what_is_cached_and_with_a_flag_what_was_pinned(start_mirror, index_server, tmp_path) -> None:
    advisories = tmp_path / "advisories"
    write_advisory(advisories, "PYSEC-2024-9", "calm-badger", fixed="3.0", aliases=("CVE-2024-9",))
    wheel, sdist = publish(index_server, tmp_path, "calm-badger", "1.0", sdist=True)
    publish(index_server, tmp_path, "calm-badger", "2.0")  # listed upstream, never downloaded
    publish(index_server, tmp_path, "reqeusts", "1.0")  # quarantined: nothing of it cached
    mirror = start_mirror(audit={"advisory_dir": str(advisories), "vulnerability_service": "none"})
    assert page(mirror, "calm-badger").status_code == 200
    assert page(mirror, "reqeusts").status_code == 403
    download(mirror, wheel)
    assert audit(mirror).new_vulnerabilities == 2  # 1.0 and 2.0 are both before the fix
    api = Api(mirror, make_token(mirror, "reviewer", "rita"))

    response = api.get("sbom")
    assert response.status_code == 200 and "cyclonedx" in response.headers["content-type"]
    assert "content-length" not in response.headers  # streamed, not built whole first
    assert VALIDATOR.validate_str(response.text) is None
    bom = json.loads(response.text)
    [release] = bom["components"]  # only the release with a cached file
    assert release["bom-ref"] == "pkg:pypi/calm-badger@1.0"
    assert props(release)["indexguard:source"] == "public"
    assert props(release)["indexguard:project-state"] == "allowed"
    [file] = release["components"]  # the sdist was never downloaded
    assert file["name"] == wheel.filename and file["hashes"] == [{"alg": "SHA-256", "content": wheel.sha256}]
    assert props(file)["indexguard:cached"] == "true"
    assert props(file)["indexguard:verified"] == "sha256"
    assert props(file)["indexguard:content-scan"] == "allow (no findings)"  # looked at before it was served
    assert props(file)["indexguard:content-ruleset"].startswith("content-")
    [vuln] = bom["vulnerabilities"]
    assert vuln["id"] == "PYSEC-2024-9" and vuln["affects"] == [{"ref": "pkg:pypi/calm-badger@1.0"}]
    assert {"name": "indexguard:alias", "value": "CVE-2024-9"} in vuln["properties"]

    pinned = api.get("sbom", include_pinned="true")
    assert VALIDATOR.validate_str(pinned.text) is None
    bom = json.loads(pinned.text)
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    assert sorted(by_ref) == ["pkg:pypi/calm-badger@1.0", "pkg:pypi/calm-badger@2.0", "pkg:pypi/reqeusts@1.0"]
    files = {f["name"]: props(f)["indexguard:cached"] for f in by_ref["pkg:pypi/calm-badger@1.0"]["components"]}
    assert files == {wheel.filename: "true", sdist.filename: "false"}
    squat = by_ref["pkg:pypi/reqeusts@1.0"]
    assert props(squat)["indexguard:project-state"] == "quarantined"
    assert any(p["name"] == "indexguard:finding" and "requests" in p["value"] for p in squat["properties"])
    [vuln] = bom["vulnerabilities"]
    assert vuln["affects"] == [{"ref": "pkg:pypi/calm-badger@1.0"}, {"ref": "pkg:pypi/calm-badger@2.0"}]
    assert Api(mirror, None).get("sbom").status_code == 401


def test_sbom_is_written_as_it_is_read(start_mirror, index_server, tmp_path) -> None:
    """One piece per release, the first before the last project is read: nothing waits for the whole document."""
    dists = [publish(index_server, tmp_path, f"calm-badger-{i}", "1.0")[0] for i in range(3)]
    mirror = start_mirror()
    for i, dist in enumerate(dists):
        assert page(mirror, f"calm-badger-{i}").status_code == 200
        download(mirror, dist)
    seen: list[tuple[int, int, str]] = []
    chunks = sbom_chunks(mirror.services, progress=lambda done, total, name: seen.append((done, total, name)))
    header, first = next(chunks), next(chunks)
    assert header.endswith('"components":[') and '"bom-ref":"pkg:pypi/calm-badger-0@1.0"' in first
    assert seen == []  # the first release is out before its project's progress is even counted
    rest = list(chunks)
    assert VALIDATOR.validate_str(header + first + "".join(rest)) is None
    assert len(rest) == 2 + 2  # two more releases, then the vulnerabilities' opening and the close
    assert seen == [(1, 3, "calm-badger-0"), (2, 3, "calm-badger-1"), (3, 3, "calm-badger-2")]


def test_sbom_command_writes_a_complete_file_or_none(index_server, tmp_path, database_url, capsys) -> None:
    config = write_config(tmp_path, index_server, database_url)
    out = tmp_path / "sbom.json"
    assert main(["sbom", "--config", str(config), "--output", str(out)]) == 0
    assert VALIDATOR.validate_str(out.read_text()) is None
    assert "sbom: 0 project(s) written to" in capsys.readouterr().err
    missing = tmp_path / "no-such-directory" / "sbom.json"
    assert main(["sbom", "--config", str(config), "--output", str(missing)]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err
    assert not missing.parent.exists()


def test_purls_are_encoded_as_the_purl_library_writes_them() -> None:
    for version, file_name in (("1.0", "a-1.0.tar.gz"), ("1.0+local.1", "a-1.0+local.1-py3-none-any.whl"),
                               ("2!1.0rc1", None), (None, None)):
        expected = PackageURL(type="pypi", name="calm-badger", version=version,
                              qualifiers={"file_name": file_name} if file_name else None).to_string()
        assert purl("calm-badger", version, file_name) == expected


def test_progress_prints_on_time_as_well_as_every_tenth() -> None:
    now = [0.0]
    stream = StringIO()
    report = ProgressReporter(stream, "sbom", every=30.0, monotonic=lambda: now[0])
    report(1, 1000, "a")  # the first tenth starts: a line
    report(2, 1000, "b")  # same tenth, no time passed: quiet
    now[0] = 31.0
    report(3, 1000, "c", 1)  # same tenth, but 31 s later: a line, with the failures so far
    lines = stream.getvalue().splitlines()
    assert lines == ["sbom: 1/1000 projects (a)", "sbom: 3/1000 projects, 1 failed (c)"]


def test_open_vulnerabilities_are_grouped_by_id_across_keyset_pages(mirror, monkeypatch) -> None:
    """A vulnerability whose rows straddle two pages of the keyset read is still one group; resolved ones are left out."""
    now = mirror.services.clock()
    rows = [("PYSEC-1", "calm-badger", "1.0"), ("PYSEC-1", "calm-badger", "2.0"), ("PYSEC-1", "calm-badger", "3.0"),
            ("PYSEC-2", "quiet-otter", "1.0"), ("PYSEC-3", "quiet-otter", "2.0")]
    with mirror.services.sessions.begin() as session:
        for vuln_id, project, version in rows:
            session.add(Vulnerability(project=project, version=version, vuln_id=vuln_id, source="offline",
                                      first_seen=now, last_seen=now,
                                      resolved_at=now if vuln_id == "PYSEC-3" else None))
    monkeypatch.setattr(sbom_module, "BATCH", 2)  # PYSEC-1's three rows span two pages
    grouped = [(vuln_id, [r.version for r in group]) for vuln_id, group in sbom_module._open_vulnerabilities(mirror.services)]
    assert grouped == [("PYSEC-1", ["1.0", "2.0", "3.0"]), ("PYSEC-2", ["1.0"])]
