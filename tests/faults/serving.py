"""Real ``indexguard serve`` processes for tests that kill, restart or race servers.

In-process mirrors (``tests.support.running``) cannot be SIGKILLed, and two of
them in one interpreter share module state that two servers never would, so
the tests that are about processes start real ones.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A TOML file from plain values (str, int, float, bool), the way users write it."""
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (int, float)):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


class ServerProcess:
    """``python -m mirror.cli serve --config FILE --port P`` with its output in a log file."""

    def __init__(self, config: Path, log: Path, *, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        self.fixed_port = port is not None
        self._listen_on(port or free_port())
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def _listen_on(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}/"
        self.simple_url = self.url + "simple/"

    def start(self, timeout: float = 60) -> "ServerProcess":
        """Start and wait until *this* process answers on its port.

        ``free_port`` lets the port go before the server binds it, so another
        test's server (pytest-xdist runs several) may take it first; a ready
        answer then comes from the wrong mirror.  Only uvicorn's "running on"
        line, printed after its own bind, proves the port ours; a lost port
        is retried on a fresh one.
        """
        for _ in range(3):
            if self._start_once(timeout):
                return self
            self._listen_on(free_port())
        raise RuntimeError(f"server could not bind a port:\n{self.output()}")

    def _start_once(self, timeout: float) -> bool:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mirror.cli", "serve", "--config", str(self.config), "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        bound = f"running on {self.url.rstrip('/')} "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            since = self.log.read_bytes()[offset:].decode(errors="replace")
            if self.process.poll() is not None:
                if "address already in use" in since and not self.fixed_port:
                    return False
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if bound in since and requests.get(self.url + "readyz", timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn's workers too): no cleanup runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
