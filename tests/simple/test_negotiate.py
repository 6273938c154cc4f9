"""PEP 691 content negotiation, as a table of Accept headers and answers."""

from __future__ import annotations

import pytest

from mirror.simple.negotiate import HTML, JSON, TEXT_HTML, choose_format

LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        # No header, or an empty one: legacy clients that expect HTML.
        (None, TEXT_HTML),
        ("", TEXT_HTML),
        ("   ", TEXT_HTML),
        # Exact types.
        (JSON, JSON),
        (HTML, HTML),
        (TEXT_HTML, TEXT_HTML),
        ("TEXT/HTML", TEXT_HTML),
        # latest aliases answer with the concrete v1 type.
        (LATEST_JSON, JSON),
        (LATEST_HTML, HTML),
        # What pip sends today.
        (f"{JSON}, {HTML}; q=0.1, text/html; q=0.01", JSON),
        # The PEP's example client.
        (f"{JSON}, {HTML};q=0.2, text/html;q=0.01", JSON),
        # q-values decide...
        (f"{JSON};q=0.5, {HTML}", HTML),
        (f"text/html, {JSON};q=0.999", TEXT_HTML),
        (f"{JSON};q=0.001, text/html;q=0", JSON),
        # ...order in the header does not.
        (f"text/html, {JSON}", JSON),
        (f"{HTML}, {JSON}", JSON),
        (f"{HTML}, text/html", HTML),
        # Wildcards: ties go to the server's preference, JSON first.
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/*", TEXT_HTML),
        (f"application/*, {JSON};q=0", HTML),
        (f"*/*;q=0.1, {HTML}", HTML),
        ("*/*, text/html;q=0", JSON),
        # A browser: text/html outranks everything else it will take.
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", TEXT_HTML),
        # A more specific range overrides a vaguer one even with a lower q.
        (f"*/*;q=1, {JSON};q=0.1", HTML),
        # Parameters after q are extensions; other parameters are ignored.
        (f"{JSON};q=0.5;ext=1, {HTML};q=0.4", JSON),
        (f'{HTML}; charset="utf-8"', HTML),
        # Malformed entries are ignored, not fatal.
        (f"garbage, {HTML}", HTML),
        (f"{JSON};q=2, {HTML};q=0.5", HTML),
        (f"{JSON};q=0.1234, {HTML};q=0.5", HTML),
        (f"{JSON};q=abc, {HTML}", HTML),
        (f"{JSON};q=, {HTML}", HTML),
        (f"{JSON};q=-1, {HTML}", HTML),
        (f"{JSON};q=1.000, {HTML};q=0.500", JSON),
        (",,,", None),
    ],
)
def test_accept_header(accept, expected) -> None:
    assert choose_format(accept, None) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "image/png",
        "application/vnd.pypi.simple.v2+json",
        "application/vnd.pypi.simple.v1+xml",
        f"{JSON};q=0, {HTML};q=0, text/html;q=0",
        "*/*;q=0",
        "text/plain, image/*",
        "text/html;q=0.0, application/*;q=0",
    ],
)
def test_nothing_acceptable_is_406(accept) -> None:
    assert choose_format(accept, None) is None


@pytest.mark.parametrize(
    ("format_param", "accept", "expected"),
    [
        (JSON, "text/html", JSON),
        (HTML, JSON, HTML),
        (TEXT_HTML, JSON, TEXT_HTML),
        (LATEST_JSON, None, JSON),
        (LATEST_HTML, None, HTML),
        (" Application/Vnd.PyPI.Simple.V1+JSON ", None, JSON),
        # The override must name exactly one valid type; anything else is refused.
        ("json", JSON, None),
        ("", JSON, None),
        ("*/*", JSON, None),
        (f"{JSON};q=1", JSON, None),
        (f"{JSON}, {HTML}", JSON, None),
        ("application/vnd.pypi.simple.v2+json", JSON, None),
    ],
)
def test_format_parameter_overrides_accept(format_param, accept, expected) -> None:
    assert choose_format(accept, format_param) == expected


def test_answers_are_cached_per_header() -> None:
    header = f"{HTML}, {JSON};q=0.3, cache-probe/x"
    before = choose_format.cache_info()
    assert choose_format(header, None) == HTML
    assert choose_format(header, None) == HTML
    after = choose_format.cache_info()
    assert after.hits - before.hits >= 1
    assert after.misses - before.misses == 1
