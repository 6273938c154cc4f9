"""What every fault test asserts afterwards: nothing unverified stored, nothing lost."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import requests

JSON = "application/vnd.pypi.simple.v1+json"


def get_page(base_url: str, name: str, **kwargs) -> requests.Response:
    return requests.get(f"{base_url}simple/{name}/", headers={"Accept": JSON}, timeout=60, **kwargs)


def file_url(base_url: str, name: str, entry: dict) -> str:
    return requests.compat.urljoin(f"{base_url}simple/{name}/", entry["url"])


def download(url: str) -> tuple[int | None, bytes, bool]:
    """(status, bytes received, whether the transfer broke off) for one GET."""
    received = bytearray()
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            for chunk in response.iter_content(65536):
                received += chunk
            return response.status_code, bytes(received), False
    except requests.RequestException:
        return None, bytes(received), True


def store_problems(files_root: Path) -> list[str]:
    """Temp leftovers and any blob whose bytes do not hash to its name."""
    problems = [f"temp file left: {p.name}" for p in (files_root / "tmp").glob("*")]
    for blob in (files_root / "blobs").rglob("*"):
        if blob.is_file():
            digest = hashlib.sha256(blob.read_bytes()).hexdigest()
            if digest != blob.name:
                problems.append(f"blob {blob.name} holds bytes hashing to {digest}")
    return problems


def blob_names(files_root: Path) -> set[str]:
    return {p.name for p in (files_root / "blobs").rglob("*") if p.is_file()}


class Listener:
    """A TCP port on another loopback address that counts who connects to it.

    Stands in for a private service a hostile page wants the mirror to reach:
    any connection at all is a failure.
    """

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
