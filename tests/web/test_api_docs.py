"""/api/docs works offline: no script from anywhere, every admin operation listed."""

from __future__ import annotations

import requests


def test_api_docs_are_served_without_a_cdn(mirror) -> None:
    page = requests.get(mirror.url + "api/docs", timeout=30)
    assert page.status_code == 200
    assert "<script" not in page.text and "cdn" not in page.text.lower()
    spec = requests.get(mirror.url + "api/openapi.json", timeout=30).json()
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page.text
    assert any(path.startswith("/api/v1/") for path in spec["paths"])
