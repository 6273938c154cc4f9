"""The private index's credentials never leave its origin, whatever it redirects to."""

from __future__ import annotations

import base64

import pytest

from mirror.upstream.client import UpstreamClient, private_index_client
from mirror.upstream.errors import BlockedURL
from mirror.upstream.netguard import NetGuard
from tests.support.index_server import IndexServer
from tests.support.publish import publish

USER, PASSWORD = "ci-reader", "pr1vate-s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def elsewhere():
    """Another index on another port: where a hostile redirect wants the credentials to go."""
    server = IndexServer()
    server.start()
    yield server
    server.stop()


def authorizations(server: IndexServer) -> list[str | None]:
    return [r.headers.get("Authorization") for r in server.requests]


def client_for(index_server: IndexServer) -> UpstreamClient:
    return private_index_client(
        index_server.simple_url,
        username=USER,
        password=PASSWORD,
        timeout=5,
        max_page_bytes=1 << 20,
        ca_bundle=True,
    )


def test_private_index_gets_its_credentials(index_server, tmp_path) -> None:
    publish(index_server, tmp_path, "acme-tools")
    client = client_for(index_server)
    assert client.fetch_project("acme-tools").page.files
    assert "acme-tools" in client.fetch_project_list()
    assert authorizations(index_server) and set(authorizations(index_server)) == {BASIC}


@pytest.mark.parametrize("where", ["page", "list"])
def test_a_redirect_to_another_port_is_refused_before_anything_is_sent(
    index_server, elsewhere, tmp_path, where
) -> None:
    publish(index_server, tmp_path, "acme-tools")
    publish(elsewhere, tmp_path / "elsewhere", "acme-tools")
    target = elsewhere.simple_url + ("acme-tools/" if where == "page" else "")
    index_server.fault("/simple/", "redirect", location=target)
    client = client_for(index_server)
    with pytest.raises(BlockedURL, match="not an allowed upstream host"):
        if where == "page":
            client.fetch_project("acme-tools")
        else:
            client.fetch_project_list()
    assert elsewhere.requests == []


def test_credentials_are_not_sent_where_an_allowed_redirect_leads(index_server, elsewhere, tmp_path) -> None:
    """Even with a guard that lets the redirect through, the other origin gets no credentials."""
    publish(elsewhere, tmp_path, "acme-tools")
    index_server.fault("/simple/", "redirect", location=elsewhere.simple_url + "acme-tools/")
    client = UpstreamClient(
        index_server.simple_url,
        timeout=5,
        max_page_bytes=1 << 20,
        guard=NetGuard(None, allow_private=True),
        auth=(USER, PASSWORD),
    )
    assert client.fetch_project("acme-tools").page.files
    assert authorizations(index_server) == [BASIC]
    assert authorizations(elsewhere) == [None]
