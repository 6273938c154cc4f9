"""Helpers for the review tests: tokens in a running mirror, an API client, a typosquat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from mirror.review.tokens import create_token
from tests.support.publish import publish

# One transposition from a popular project: the mirror quarantines it on first request.
TYPOSQUAT = "reqeusts"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def make_token(mirror: Any, role: str, name: str | None = None) -> str:
    """Create a token straight in the mirror's database and return its secret."""
    with mirror.services.sessions.begin() as session:
        _, secret = create_token(
            session, name=name or f"{role}-user", role=role, created_by="test", now=mirror.clock()
        )
    return secret


class Api:
    """The admin API of a running mirror, as one token sees it."""

    def __init__(self, mirror: Any, token: str | None) -> None:
        self.base = mirror.url + "api/v1/"
        self.session = requests.Session()
        self.session.trust_env = False
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, json: Any = None, **params: Any) -> requests.Response:
        return self.session.request(method, self.base + path.lstrip("/"), json=json, params=params, timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, **params)

    def post(self, path: str, json: Any = None) -> requests.Response:
        return self.request("POST", path, json=json)

    def ok(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = self.request(method, path, json=json, **params)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()


def get(mirror: Any, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("allow_redirects", False)
    return requests.get(mirror.url + path.lstrip("/"), **kwargs)


def quarantine(mirror: Any, index_server: Any, workdir: Path, name: str = TYPOSQUAT, **info: Any) -> str:
    """Publish a look-alike of a popular project upstream and let the mirror screen it."""
    publish(index_server, workdir, name, "1.0")
    if info:
        index_server.set_project_info(name, **info)
    response = get(mirror, f"/simple/{name}/")
    assert response.status_code == 403, response.text
    assert "quarantined" in response.text
    return name


def allowed(mirror: Any, index_server: Any, workdir: Path, name: str = "quiet-otter", *versions: str) -> str:
    """Publish an established, unremarkable project and let the mirror allow it."""
    for version in versions or ("1.0",):
        publish(index_server, workdir, name, version)
    response = get(mirror, f"/simple/{name}/")
    assert response.status_code == 200, response.text
    return name
