"""Ready means able to store: free space against ``[storage] min_free_bytes`` (issue 12, item 24).

Found: ``/readyz`` answered ready with 0 bytes free, because its write
check creates an empty file, which needs no free block.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from mirror.config import SettingsError, settings_from_mapping
from mirror.web.health import free_bytes
from tests.support.running import RunningMirror, mirror_settings


@pytest.fixture
def start_mirror(index_server, tmp_path: Path, clock) -> Iterator[Callable[..., RunningMirror]]:
    """A mirror whose ``[storage]`` section the test sets (the shared fixture fixes its path)."""
    started: list[RunningMirror] = []

    def start(**storage) -> RunningMirror:
        storage.setdefault("path", str(tmp_path / f"data{len(started)}"))
        settings = mirror_settings(
            upstream_url=index_server.simple_url,
            database_url=f"sqlite:///{tmp_path / f'mirror{len(started)}.db'}",
            storage=Path(storage["path"]),
        )
        settings = settings.model_copy(update={"storage": settings_from_mapping({"storage": storage}).storage})
        started.append(RunningMirror(settings, clock).start())
        return started[-1]

    yield start
    for mirror in started:
        mirror.stop()


def readyz(mirror) -> requests.Response:
    return requests.get(mirror.url + "readyz", timeout=30)


def test_ready_only_with_the_configured_free_space(start_mirror) -> None:
    roomy = start_mirror(min_free_bytes=1)
    ready = readyz(roomy)
    assert ready.status_code == 200 and ready.json()["storage"] == "ok"
    floor = free_bytes(roomy.services.store.root) + 1024**4  # a TiB more than this device has free
    cramped = start_mirror(min_free_bytes=floor)
    refused = readyz(cramped)
    assert refused.status_code == 503
    body = refused.json()
    assert body["ready"] is False and body["database"] == "ok"
    assert "storage.min_free_bytes" in body["storage"] and str(floor) in body["storage"]
    assert requests.get(cramped.url + "healthz", timeout=30).status_code == 200  # alive, just not ready


def test_the_floor_must_not_be_negative() -> None:
    with pytest.raises(SettingsError, match="storage.min_free_bytes"):
        settings_from_mapping({"storage": {"min_free_bytes": -1}})
    assert settings_from_mapping({}).storage.min_free_bytes == 1024**3


@pytest.fixture
def small_device(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: a real device that can be filled.  Needs the right to mount."""
    mountpoint = tmp_path / f"dev-{uuid.uuid4().hex[:8]}"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_device_is_not_ready(start_mirror, small_device: Path) -> None:
    mirror = start_mirror(path=str(small_device / "store"), min_free_bytes=1024 * 1024)
    assert readyz(mirror).status_code == 200
    fd = os.open(small_device / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert free_bytes(small_device) == 0
    full = readyz(mirror)
    assert full.status_code == 503, full.text
    assert "0 bytes free" in full.json()["storage"]
    os.unlink(small_device / "filler")
    assert readyz(mirror).status_code == 200
