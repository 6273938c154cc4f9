"""Running real pip and uv against a mirror, isolated from this machine's pip config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def client_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def pip(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args, "--no-cache-dir"],
        env=client_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path / "bin" / "python"


def uv(tmp_path: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    assert UV, "uv is a test dependency"
    return subprocess.run(
        [UV, *args], env=client_env(tmp_path), capture_output=True, text=True, timeout=timeout
    )
