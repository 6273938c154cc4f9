"""One error hierarchy: every upstream failure, the network guard's included, is an UpstreamError."""

from __future__ import annotations

import pytest
import requests

from mirror.upstream.client import UpstreamClient
from mirror.upstream.errors import BlockedURL, UpstreamError, UpstreamUnreachable
from mirror.upstream.netguard import NetGuard
from tests.faults.checks import get_page

UNRESOLVABLE = "http://no-such-upstream.invalid/simple/"


def test_an_unresolvable_upstream_is_the_one_upstream_error() -> None:
    client = UpstreamClient(UNRESOLVABLE, timeout=2, max_page_bytes=1 << 20, guard=NetGuard(None))
    with pytest.raises(UpstreamUnreachable, match="cannot resolve") as caught:
        client.fetch_project("requests")
    assert isinstance(caught.value, UpstreamError)
    assert issubclass(BlockedURL, UpstreamError)


def test_an_unresolvable_upstream_is_a_503_with_retry_after_not_a_500(start_mirror) -> None:
    mirror = start_mirror(upstream={"url": UNRESOLVABLE, "timeout": 2.0})
    response = get_page(mirror.url, "requests")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert requests.get(f"{mirror.url}simple/requests/", timeout=30).status_code == 503
