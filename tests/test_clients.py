"""Real pip and uv through the running mirror."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

from urllib.parse import urljoin

import requests

from tests.support.clients import fresh_venv, pip, uv
from tests.support.publish import publish


def test_pip_download_wheel_and_sdist(mirror, index_server, tmp_path) -> None:
    files = publish(index_server, tmp_path, "quiet-otter", "1.0", sdist=True)
    out = tmp_path / "out"
    result = pip(
        tmp_path, "download", "--no-deps", "--index-url", mirror.simple_url, "-d", str(out), "quiet-otter==1.0"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    wheel = next(f for f in files if f.filename.endswith(".whl"))
    assert got == {wheel.filename: wheel.sha256}
    # pip would build an sdist to read its metadata (needing a build backend from
    # the index), so fetch the sdist the way pip does after resolving: by its link.
    sdist = next(f for f in files if f.filename.endswith(".tar.gz"))
    page = requests.get(mirror.simple_url + "quiet-otter/", headers={"Accept": "text/html"}, timeout=30).text
    href = re.search(r'href="([^"]*' + re.escape(sdist.filename) + r'[^"]*)"', page).group(1)
    body = requests.get(urljoin(mirror.simple_url + "quiet-otter/", href), timeout=30).content
    assert hashlib.sha256(body).hexdigest() == sdist.sha256


def test_pip_install_with_require_hashes(mirror, index_server, tmp_path) -> None:
    wheel = publish(index_server, tmp_path, "quiet-otter", "1.0")[0]
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"quiet-otter==1.0 --hash=sha256:{wheel.sha256}\n")
    target = tmp_path / "target"
    result = pip(
        tmp_path, "install", "--require-hashes", "--no-deps", "--index-url", mirror.simple_url,
        "--target", str(target), "-r", str(reqs),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "quiet_otter" / "__init__.py").exists()
    reqs.write_text(f"quiet-otter==1.0 --hash=sha256:{'0' * 64}\n")
    bad = pip(
        tmp_path, "install", "--require-hashes", "--no-deps", "--index-url", mirror.simple_url,
        "--target", str(tmp_path / "t2"), "-r", str(reqs),
    )
    assert bad.returncode != 0
    assert "HASHES" in bad.stderr.upper()


def test_uv_pip_install_with_dependencies(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0", requires_dist=["calm-badger>=2"])
    publish(index_server, tmp_path, "calm-badger", "2.1")
    python = fresh_venv(tmp_path / "venv")
    result = uv(tmp_path, "pip", "install", "--python", str(python), "--index-url", mirror.simple_url, "quiet-otter")
    assert result.returncode == 0, result.stdout + result.stderr
    listing = uv(tmp_path, "pip", "list", "--python", str(python))
    assert "quiet-otter" in listing.stdout and "calm-badger" in listing.stdout


def test_uv_exclude_newer_uses_upload_time(mirror, index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "quiet-otter", "1.0", age=timedelta(days=900))
    publish(index_server, tmp_path, "quiet-otter", "2.0", age=timedelta(days=500))
    python = fresh_venv(tmp_path / "venv")
    cutoff = (datetime.now(timezone.utc) - timedelta(days=700)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = uv(
        tmp_path, "pip", "install", "--python", str(python), "--index-url", mirror.simple_url,
        "--exclude-newer", cutoff, "quiet-otter",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listing = uv(tmp_path, "pip", "list", "--python", str(python))
    assert "1.0" in listing.stdout and "2.0" not in listing.stdout
