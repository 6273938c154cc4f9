"""Screening at the door, end to end through the running mirror, pip and uv."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta


import requests
from sqlalchemy import select

from mirror.db.models import Decision, FindingRow, PinnedFile, Project
from mirror.screening.decisions import decide_project, decide_release
from tests.support.clients import client_env, fresh_venv, pip, uv
from tests.support.dists import build_wheel
from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def page(mirror, name: str, **headers: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON, **headers}, timeout=30)


def pinned_url(mirror, filename: str) -> str:
    with mirror.services.sessions() as session:
        pin = session.scalars(select(PinnedFile).where(PinnedFile.filename == filename)).one()
    return f"{mirror.url}files/{pin.sha256}/{pin.filename}"


def test_typosquat_is_quarantined_with_a_readable_reason(mirror, index_server, tmp_path) -> None:
    wheel = publish(index_server, tmp_path, "reqeusts", "1.0")[0]
    response = page(mirror, "reqeusts", **{"User-Agent": "pip/24.0 test"})
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "indexguard: 'reqeusts' is quarantined" in response.text
    assert "requests" in response.text and "review" in response.text
    # The file is refused too, even by its direct URL.
    assert requests.get(pinned_url(mirror, wheel.filename), timeout=30).status_code == 403
    assert index_server.download_count(wheel.filename) == 0
    # Evidence: findings and the triggering request are stored.
    with mirror.services.sessions() as session:
        project = session.get(Project, "reqeusts")
        decisions = list(session.scalars(select(Decision).where(Decision.project == "reqeusts")))
        findings = list(session.scalars(select(FindingRow).where(FindingRow.project == "reqeusts")))
    assert project.state == "quarantined"
    assert decisions[0].actor == "policy"
    assert decisions[0].request["user_agent"] == "pip/24.0 test"
    assert decisions[0].request["client"] == "127.0.0.1"
    assert findings and findings[0].target == "requests"


def test_pip_and_uv_refuse_a_quarantined_project(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "reqeusts", "1.0")
    result = pip(tmp_path, "install", "--index-url", mirror.simple_url, "--target", str(tmp_path / "t"), "reqeusts")
    assert result.returncode != 0
    assert not (tmp_path / "t" / "reqeusts").exists()
    python = fresh_venv(tmp_path / "venv")
    result = uv(tmp_path, "pip", "install", "--python", str(python), "--index-url", mirror.simple_url, "reqeusts")
    assert result.returncode != 0
    assert "403" in result.stderr


def test_held_release_is_invisible_until_it_matures(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    fresh = publish(index_server, tmp_path, "quiet-otter", "2.0", age=timedelta(hours=1))[0]
    doc = page(mirror, "quiet-otter").json()
    assert [f["filename"] for f in doc["files"]] == ["quiet_otter-1.0-py3-none-any.whl"]
    assert "2.0" not in doc["versions"]
    refused = requests.get(pinned_url(mirror, fresh.filename), timeout=30)
    assert refused.status_code == 403 and "cooldown" in refused.text
    clock.advance(hours=72)
    doc = page(mirror, "quiet-otter").json()
    assert "2.0" in doc["versions"]
    assert requests.get(pinned_url(mirror, fresh.filename), timeout=30).status_code == 200


def test_held_release_is_visible_once_approved(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    publish(index_server, tmp_path, "quiet-otter", "2.0", age=timedelta(hours=1))
    assert "2.0" not in page(mirror, "quiet-otter").json()["versions"]
    with mirror.services.sessions.begin() as session:
        decide_release(
            session, project="quiet-otter", version="2.0", action="allow", actor="alice",
            reason="reviewed the diff", now=mirror.clock(),
        )
    mirror.services.after_decision("quiet-otter")
    assert "2.0" in page(mirror, "quiet-otter").json()["versions"]


def test_break_glass_allow_expires(mirror, index_server, tmp_path, clock) -> None:
    publish(index_server, tmp_path, "reqeusts", "1.0")
    assert page(mirror, "reqeusts").status_code == 403
    with mirror.services.sessions.begin() as session:
        decide_project(
            session, project="reqeusts", action="allow", actor="alice", reason="incident 42",
            now=clock(), expires_at=clock() + timedelta(hours=1),
        )
    mirror.services.after_decision("reqeusts")
    assert page(mirror, "reqeusts").status_code == 200
    clock.advance(hours=2)
    assert page(mirror, "reqeusts").status_code == 403


def test_site_policy_deny_list_and_cutoff(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    publish(index_server, tmp_path, "calm-badger", "1.0", age=timedelta(days=400))
    publish(index_server, tmp_path, "calm-badger", "1.1", age=timedelta(days=10))
    cutoff = (index_server_now() - timedelta(days=30)).date().isoformat()
    mirror = start_mirror(policy={"deny": ["quiet-*"], "cutoff": cutoff})
    denied = page(mirror, "quiet-otter")
    assert denied.status_code == 403 and "denied" in denied.text
    assert page(mirror, "calm-badger").json()["versions"] == ["1.0"]


def index_server_now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def test_internal_name_never_comes_from_upstream(start_mirror, index_server, tmp_path) -> None:
    internal_dir = tmp_path / "internal"
    internal_dir.mkdir()
    build_wheel(internal_dir, "acme-tools", "1.0")
    publish(index_server, tmp_path, "acme-tools", "9.0")  # an attacker's higher version
    mirror = start_mirror(internal={"names": ["acme-tools"], "directory": str(internal_dir)})
    doc = page(mirror, "acme-tools").json()
    assert doc["versions"] == ["1.0"]
    assert doc["alternate-locations"] and not doc["meta"].get("tracks")
    target = tmp_path / "target"
    result = pip(tmp_path, "install", "--no-deps", "--index-url", mirror.simple_url, "--target", str(target), "acme-tools")
    assert result.returncode == 0, result.stderr
    assert (target / "acme_tools-1.0.dist-info").is_dir()
    assert index_server.count_requests("/simple/acme-tools") == 0
    assert index_server.count_requests("/pypi/acme-tools") == 0


def test_internal_pattern_without_files_is_404_not_upstream(start_mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "acme-secret", "1.0")
    mirror = start_mirror(internal={"patterns": ["acme-*"]})
    response = page(mirror, "acme-secret")
    assert response.status_code == 404
    assert "internal" in response.text
    assert index_server.count_requests("/simple/acme-secret") == 0


def test_twine_upload_then_install(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(internal={"upload_token": "s3cret-upload", "patterns": ["acme-*"]})
    wheel = build_wheel(tmp_path / "up", "acme-upload", "0.3")
    env = client_env(tmp_path)
    twine = [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", mirror.url + "legacy/", "-u", "__token__"]
    denied = subprocess.run([*twine, "-p", "wrong", str(wheel)], env=env, capture_output=True, text=True, timeout=120)
    assert denied.returncode != 0
    done = subprocess.run([*twine, "-p", "s3cret-upload", str(wheel)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = page(mirror, "acme-upload").json()
    assert doc["versions"] == ["0.3"]
    assert doc["files"][0]["core-metadata"]
    target = tmp_path / "target"
    result = pip(tmp_path, "install", "--no-deps", "--index-url", mirror.simple_url, "--target", str(target), "acme-upload")
    assert result.returncode == 0, result.stderr
    assert index_server.count_requests("/simple/acme-upload") == 0
