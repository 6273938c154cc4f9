"""Publishing real distributions on the local upstream in one call."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.support.dists import build_sdist, build_wheel

# Old enough to pass the young-project and release-cooldown checks.
ESTABLISHED = timedelta(days=800)


def publish(
    server: Any,
    workdir: Path,
    name: str,
    version: str = "1.0",
    *,
    age: timedelta = ESTABLISHED,
    sdist: bool = False,
    owners: dict[str, str] | None = None,
    **wheel_args: Any,
):
    """Build a wheel (and optionally an sdist) and publish it ``age`` ago."""
    out = workdir / "dists"
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(timezone.utc) - age
    registered = [server.add_file(name, build_wheel(out, name, version, **wheel_args), upload_time=when)]
    if sdist:
        registered.append(server.add_file(name, build_sdist(out, name, version), upload_time=when))
    server.set_project_info(name, owners=owners or {"maintainer-one": "Owner"})
    return registered
