"""pip's and uv's user agent, said in four short facts (installer, Python, OS, CI).

pip and uv send ``NAME/VERSION {json}`` (the "linehaul" format PyPI's
statistics read).  Printed whole it is several hundred characters of JSON
that stretch a review card; a reviewer needs only who asked and from what
kind of machine.  Every value is client-controlled text: the result holds
plain, length-bounded strings and the templates escape them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

MAX_PART = 80
MAX_RAW = 500


@dataclass(frozen=True)
class ClientInfo:
    """What a reviewer reads about the client; ``None`` where the agent did not say."""

    installer: str
    python: str | None = None
    system: str | None = None
    ci: bool | None = None
    raw: str = ""


def parse_user_agent(text: str | None) -> ClientInfo | None:
    """The client facts in ``text``; None for an empty agent.

    An agent without the JSON part (curl, a browser, an old pip) keeps its
    first word as the installer, so nothing is hidden, only shortened.
    """
    text = (text or "").strip()
    if not text:
        return None
    raw = text[:MAX_RAW]
    head, _, rest = text.partition(" ")
    data = _json_object(rest)
    if data is None:
        return ClientInfo(installer=_short(head), raw=raw)
    installer = _name_version(data.get("installer")) or _short(head)
    implementation = _name_version(data.get("implementation"))
    python = data.get("python")
    python_text = implementation or (f"Python {_short(python)}" if isinstance(python, str) and python else None)
    return ClientInfo(
        installer=installer,
        python=python_text,
        system=_system(data),
        ci=True if data.get("ci") is True else (False if "ci" in data else None),
        raw=raw,
    )


def _json_object(text: str) -> Mapping[str, Any] | None:
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _name_version(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        return None
    version = value.get("version")
    text = value["name"] + (f" {version}" if isinstance(version, str) and version else "")
    return _short(text)


def _system(data: Mapping[str, Any]) -> str | None:
    """'Ubuntu 22.04 (Linux, x86_64)': the distribution when known, else the kernel's system name."""
    distro = _name_version(data.get("distro"))
    system = data.get("system")
    system_name = system.get("name") if isinstance(system, Mapping) and isinstance(system.get("name"), str) else None
    cpu = data.get("cpu") if isinstance(data.get("cpu"), str) else None
    detail = ", ".join(part for part in (system_name, cpu) if part)
    if distro:
        return _short(f"{distro} ({detail})" if detail else distro)
    if detail:
        return _short(detail)
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PART else text[: MAX_PART - 1] + "…"
