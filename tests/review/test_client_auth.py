"""Optional credentials for package clients: pip and uv send them from the index URL."""

from __future__ import annotations

import pytest
import requests

from tests.review.support import Api, allowed, get, make_token
from tests.support.clients import pip, uv
from tests.support.publish import publish

REQUIRED = {"review": {"require_client_auth": True}}


def _with_credentials(url: str, secret: str) -> str:
    return url.replace("http://", f"http://ci:{secret}@", 1)


def test_off_by_default(mirror, index_server, tmp_path) -> None:
    allowed(mirror, index_server, tmp_path)
    assert get(mirror, "/simple/quiet-otter/").status_code == 200


def test_simple_and_files_need_a_valid_token(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(**REQUIRED)
    secret = make_token(mirror, "client", "ci")
    good = ("anyone", secret)
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    page = get(mirror, "/simple/quiet-otter/", auth=good, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200
    assert "private" in page.headers["Cache-Control"] and "public" not in page.headers["Cache-Control"]
    file_url = mirror.url + "simple/quiet-otter/" + page.json()["files"][0]["url"]
    for path in ("/simple/", "/simple/quiet-otter/", "/simple/quiet-otter"):
        for auth in (None, ("ci", "wrong"), ("ci", "")):
            refused = get(mirror, path, auth=auth)
            assert refused.status_code == 401, (path, auth)
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="indexguard"'
    assert requests.get(file_url, timeout=30).status_code == 401
    assert requests.get(file_url, auth=good, timeout=30).content[:2] == b"PK"
    bearer = get(mirror, "/simple/quiet-otter/", headers={"Authorization": f"Bearer {secret}"})
    assert bearer.status_code == 401
    assert get(mirror, "/healthz").status_code == 200  # probes stay open
    assert Api(mirror, None).get("queue").status_code == 401  # the API keeps its own bearer check


def test_a_revoked_client_token_stops_working(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(**REQUIRED)
    secret = make_token(mirror, "client", "ci")
    admin = Api(mirror, make_token(mirror, "admin", "ada"))
    assert get(mirror, "/simple/", auth=("u", secret)).status_code == 200
    admin.ok("DELETE", "tokens/ci")
    assert get(mirror, "/simple/", auth=("u", secret)).status_code == 401


def test_pip_and_uv_install_with_the_token_in_the_index_url(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(**REQUIRED)
    secret = make_token(mirror, "client", "ci")
    allowed_url = _with_credentials(mirror.simple_url, secret)
    publish(index_server, tmp_path, "quiet-otter", "1.0")
    fetched = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "pip-out"),
                  "--index-url", allowed_url, "quiet-otter")
    assert fetched.returncode == 0, fetched.stderr
    assert [p.name for p in (tmp_path / "pip-out").iterdir()] == ["quiet_otter-1.0-py3-none-any.whl"]
    assert secret not in fetched.stdout + fetched.stderr  # pip redacts it; so does the mirror
    refused = pip(tmp_path, "download", "--no-deps", "-d", str(tmp_path / "nope"),
                  "--index-url", mirror.simple_url, "quiet-otter")
    assert refused.returncode != 0
    target = tmp_path / "uv-target"
    installed = uv(tmp_path, "pip", "install", "--no-deps", "--target", str(target),
                   "--index-url", allowed_url, "quiet-otter")
    assert installed.returncode == 0, installed.stderr
    assert (target / "quiet_otter").is_dir()


def test_review_settings_are_checked_and_name_the_key() -> None:
    from mirror.review.settings import ReviewSettings
    from mirror.config import SettingsError

    assert ReviewSettings.from_mapping({}) == ReviewSettings(require_client_auth=False, session_hours=12.0)
    for raw, key in (
        ({"require_client_auth": "yes"}, "review.require_client_auth"),
        ({"session_hours": 0}, "review.session_hours"),
        ({"session_hours": True}, "review.session_hours"),
        ({"sessions": 1}, "review.sessions"),
    ):
        with pytest.raises(SettingsError) as caught:
            ReviewSettings.from_mapping(raw)
        assert caught.value.key == key
