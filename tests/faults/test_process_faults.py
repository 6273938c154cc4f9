"""Faults around the mirror's own process and disk: clients leaving, SIGKILL, a full disk."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from tests.faults.checks import blob_names, file_url, get_page, store_problems
from tests.faults.serving import ServerProcess, write_config
from tests.support.dists import build_large_wheel
from tests.support.publish import ESTABLISHED
from tests.support.running import RunningMirror, mirror_settings
from tests.support.waiting import wait_until


def publish_large(index_server, tmp_path: Path, name: str, size_mib: float):
    path = build_large_wheel(tmp_path / "dists", name, "1.0", size_mib=size_mib)
    registered = index_server.add_file(name, path, upload_time=datetime.now(timezone.utc) - ESTABLISHED)
    index_server.set_project_info(name, owners={"maintainer-one": "Owner"})
    return registered, path.read_bytes()


def first_file_url(base_url: str, name: str) -> str:
    response = get_page(base_url, name)
    assert response.status_code == 200, response.text
    return file_url(base_url, name, response.json()["files"][0])


# -- a client leaving mid-download -----------------------------------------------------


def test_client_disconnecting_mid_download_hurts_nobody(mirror, index_server, tmp_path) -> None:
    registered, original = publish_large(index_server, tmp_path, "big-otter", 2)
    url = first_file_url(mirror.url, "big-otter")
    index_server.fault(registered.filename, "drip", bytes_per_second=1 << 20)
    leaver_read = threading.Event()
    results: dict[str, bytes] = {}

    def leaver() -> None:
        with requests.get(url, stream=True, timeout=60) as response:
            got = next(response.iter_content(64 * 1024))
            results["leaver"] = got
            leaver_read.set()
        # leaving the block closes the connection with most of the file unread

    def stayer() -> None:
        leaver_read.wait(60)
        results["stayer"] = requests.get(url, timeout=120).content

    threads = [threading.Thread(target=leaver), threading.Thread(target=stayer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert results["leaver"] == original[: len(results["leaver"])]
    assert hashlib.sha256(results["stayer"]).hexdigest() == registered.sha256
    assert index_server.download_count(registered.filename) == 1
    assert blob_names(mirror.services.store.root) == {registered.sha256}
    assert store_problems(mirror.services.store.root) == []


def test_download_finishes_for_the_cache_when_its_only_client_leaves(mirror, index_server, tmp_path) -> None:
    registered, _ = publish_large(index_server, tmp_path, "big-otter", 1)
    url = first_file_url(mirror.url, "big-otter")
    index_server.fault(registered.filename, "drip", bytes_per_second=2 << 20)
    with requests.get(url, stream=True, timeout=60) as response:
        next(response.iter_content(1024))
    assert wait_until(lambda: mirror.services.store.has(registered.sha256))
    assert store_problems(mirror.services.store.root) == []
    index_server.clear_faults()
    again = requests.get(url, timeout=60)
    assert hashlib.sha256(again.content).hexdigest() == registered.sha256
    assert index_server.download_count(registered.filename) == 1


# -- SIGKILL mid-download ------------------------------------------------------------------


@pytest.mark.parametrize("restart_after", ["a while", "at once"])
def test_server_killed_mid_download_leaves_no_partial_blob(
    index_server, database_url, tmp_path, restart_after
) -> None:
    registered, original = publish_large(index_server, tmp_path, "big-otter", 6)
    storage = tmp_path / "storage"
    config = write_config(tmp_path / "mirror.toml", {
        "server": {"host": "127.0.0.1"},
        "database": {"url": database_url},
        "storage": {"path": str(storage)},
        "upstream": {"url": index_server.simple_url, "timeout": 30.0},
    })
    files = storage / "files"
    server = ServerProcess(config, tmp_path / "server.log").start()
    try:
        url = first_file_url(server.url, "big-otter")
        index_server.fault(registered.filename, "drip", bytes_per_second=1 << 20)
        received = 0
        with requests.get(url, stream=True, timeout=60) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(64 * 1024):
                received += len(chunk)
                if received >= 512 * 1024:
                    server.kill()
                    break
    finally:
        server.kill()
    partials = sorted(p.name for p in (files / "tmp").iterdir())
    assert len(partials) == 1 and partials[0].startswith(registered.sha256)
    assert blob_names(files) == set()  # nothing half-written ever sits among the blobs
    if restart_after == "a while":
        # Stand for the time a restart takes in real life: start-up sweeps old leftovers.
        old = time.time() - 3600
        os.utime(files / "tmp" / partials[0], (old, old))
    index_server.clear_faults()
    restarted = ServerProcess(config, tmp_path / "server.log").start()
    try:
        if restart_after == "a while":
            # The killed server's leftover is gone (a new server may already be writing temps of its own).
            assert partials[0] not in {p.name for p in (files / "tmp").iterdir()}
        served = requests.get(url.replace(server.url, restarted.url), timeout=120)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == registered.sha256
        assert served.content == original
    finally:
        restarted.stop()
    assert blob_names(files) == {registered.sha256}
    assert store_problems(files) == []
    assert index_server.download_count(registered.filename) == 2


# -- the disk filling up -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 2 MiB filesystem for the store, so writes fail with ENOSPC."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_disk_full_during_download_is_a_clear_error_and_recovers(
    index_server, database_url, tmp_path, small_disk, caplog
) -> None:
    registered, original = publish_large(index_server, tmp_path, "big-otter", 4)
    settings = mirror_settings(upstream_url=index_server.simple_url, database_url=database_url, storage=small_disk)
    with RunningMirror(settings) as mirror:
        url = first_file_url(mirror.url, "big-otter")
        received = bytearray()
        failed = False
        try:
            with requests.get(url, stream=True, timeout=60) as response:
                status = response.status_code
                for chunk in response.iter_content(64 * 1024):
                    received += chunk
        except requests.RequestException:
            failed = True
        # A 502 saying so before any byte, or a transfer cut short: never a whole file.
        assert failed or status == 502
        assert len(received) < len(original)
        assert "no space left on the storage device" in caplog.text
        assert blob_names(small_disk / "files") == set()
        assert store_problems(small_disk / "files") == []
        # Space comes back: the next request simply works.
        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
        served = requests.get(url, timeout=60)
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == registered.sha256
    assert blob_names(small_disk / "files") == {registered.sha256}
    assert store_problems(small_disk / "files") == []
