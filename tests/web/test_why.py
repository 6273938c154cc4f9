"""Users who get a refusal can find out why: /why/NAME, `indexguard why`, and the 403 pointing there."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import requests

from tests.support.publish import publish

JSON = "application/vnd.pypi.simple.v1+json"


def why(mirror, requirement: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror.cli", "why", requirement, "--url", url or mirror.simple_url],
        capture_output=True, text=True, timeout=60,
    )


def test_a_refusal_points_at_its_explanation(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "reqeusts")
    refused = requests.get(mirror.simple_url + "reqeusts/", headers={"Accept": JSON}, timeout=30)
    assert refused.status_code == 403
    assert f"Details: {mirror.url}why/reqeusts" in refused.text
    page = requests.get(mirror.url + "why/reqeusts", timeout=30)
    assert page.status_code == 200 and "quarantined" in page.text and "requests" in page.text
    result = why(mirror, "reqeusts")
    assert result.returncode == 1 and "quarantined" in result.stdout


def test_why_names_the_held_release_pip_silently_skipped(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    publish(index_server, tmp_path, "quiet-otter", "1.1", age=timedelta(hours=2))
    assert requests.get(mirror.simple_url + "quiet-otter/", timeout=30).status_code == 200
    held = why(mirror, "quiet-otter==1.1")
    assert held.returncode == 1, held.stdout + held.stderr
    assert "quiet-otter 1.1 is held until" in held.stdout
    assert why(mirror, "quiet-otter==1.0").returncode == 0
    overview = why(mirror, "Quiet_Otter", url=mirror.url)
    assert overview.returncode == 0 and "1.1 is held" in overview.stdout


def test_why_reports_bad_input_and_an_unreachable_mirror_clearly(mirror) -> None:
    bad = why(mirror, "quiet-otter>=1")
    assert bad.returncode == 2 and "NAME==VERSION" in bad.stderr
    down = why(mirror, "quiet-otter", url="http://127.0.0.1:9/")
    assert down.returncode == 2 and "could not reach" in down.stderr and "Traceback" not in down.stderr
