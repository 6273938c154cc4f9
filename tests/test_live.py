"""A few fast checks against the real public index through the mirror (marked live)."""

from __future__ import annotations

import hashlib

import pytest
import requests

from mirror.config import default_upstream_url
from tests.support.clients import pip
from tests.support.running import RunningMirror, mirror_settings

pytestmark = pytest.mark.live


@pytest.fixture
def live_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    upstream = default_upstream_url()
    try:
        requests.head(upstream, timeout=10)
    except requests.RequestException as exc:
        pytest.skip(f"the public index is not reachable here: {type(exc).__name__}")
    settings = mirror_settings(
        upstream_url="", database_url=f"sqlite:///{tmp_path / 'live.db'}", storage=tmp_path / "data"
    )
    with RunningMirror(settings) as mirror:
        yield mirror


def test_pip_download_small_projects_through_the_mirror(live_mirror, tmp_path) -> None:
    out = tmp_path / "out"
    result = pip(
        tmp_path, "download", "--no-deps", "--only-binary", ":all:", "--index-url",
        live_mirror.simple_url, "-d", str(out), "six", "idna", "iniconfig",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    downloaded = sorted(p.name.split("-")[0] for p in out.iterdir())
    assert downloaded == ["idna", "iniconfig", "six"]
    store = live_mirror.services.store
    for path in out.iterdir():
        assert store.has(hashlib.sha256(path.read_bytes()).hexdigest())
