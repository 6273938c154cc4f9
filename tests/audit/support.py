"""Helpers for the audit tests: advisories on disk, page requests, an audit run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from mirror.audit.runner import AuditSettings, Auditor, AuditSummary

JSON = "application/vnd.pypi.simple.v1+json"
OFFLINE = {"vulnerability_service": "none", "rate_per_second": 0}


def page(mirror: Any, name: str) -> requests.Response:
    return requests.get(mirror.simple_url + f"{name}/", headers={"Accept": JSON}, timeout=30)


def versions(mirror: Any, name: str) -> list[str]:
    response = page(mirror, name)
    assert response.status_code == 200, response.text
    return response.json()["versions"]


def audit(mirror: Any, **overrides: Any) -> AuditSummary:
    raw = {**OFFLINE, **mirror.settings.extra.get("audit", {}), **overrides}
    return Auditor(mirror.services, AuditSettings.from_mapping(raw)).run(trigger="test")


def write_advisory(directory: Path, ident: str, project: str, *, introduced: str = "0", fixed: str | None = None,
                   severity: str | None = "HIGH", aliases: tuple[str, ...] = (), versions: tuple[str, ...] = ()) -> Path:
    """An OSV document as the PyPA advisory database publishes it."""
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    document: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": f"remote code execution in {project}",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": project},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
            "versions": list(versions),
        }],
    }
    if severity:
        document["database_specific"] = {"severity": severity}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{ident}.json"
    path.write_text(json.dumps(document))
    return path
