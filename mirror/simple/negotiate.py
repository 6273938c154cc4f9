"""PEP 691 content negotiation: which Simple API format a request gets.

Every page request passes through here, so the answer for a given
``Accept`` header is computed once and cached; clients send a handful of
distinct headers, and a hostile client sending unique ones only churns a
bounded cache.
"""

from __future__ import annotations

import functools
import re

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

# What we serve, best first.  Ties in client preference go to the earliest:
# JSON is the most expressive format, and text/html is the legacy alias that
# the PEP says to use only as a last resort.
OFFERED = (JSON, HTML, TEXT_HTML)

# Names a client may use for an offered type.  ``latest`` is PEP 691's
# meta-version; the response still carries the concrete ``v1`` type.
_ALIASES = {
    JSON: JSON,
    HTML: HTML,
    TEXT_HTML: TEXT_HTML,
    "application/vnd.pypi.simple.latest+json": JSON,
    "application/vnd.pypi.simple.latest+html": HTML,
}

# Specificity ranks: an exact type outranks ``type/*``, which outranks ``*/*``.
_EXACT, _SUBTYPE_WILDCARD, _ANY = 3, 2, 1

_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@functools.lru_cache(maxsize=1024)
@functools.lru_cache(maxsize=512)
def choose_format(accept: str | None, format_param: str | None) -> str | None:
    """The media type to answer with, or None when nothing acceptable is offered (406).

    Cached: clients send a handful of distinct Accept headers, on every request.

    ``format_param`` is the ``?format=`` query value; when present it wins
    over ``Accept`` and must name exactly one type (no wildcards or q-values),
    so a wrong value is an error rather than a silent fallback the user
    would never notice.  A request without ``Accept`` gets ``text/html``:
    such clients predate PEP 691 and expect the legacy format.
    """
    if format_param is not None:
        return _ALIASES.get(format_param.strip().lower())
    if accept is None or not accept.strip():
        return TEXT_HTML
    quality = _qualities(accept)
    best, best_q = None, 0.0
    for offered in OFFERED:
        q = quality.get(offered, 0.0)
        if q > best_q:
            best, best_q = offered, q
    return best


def _qualities(accept: str) -> dict[str, float]:
    """Map each offered type to the q-value of the most specific range matching it."""
    ranked: dict[str, tuple[int, float]] = {}
    for entry in accept.split(","):
        parsed = _media_range(entry)
        if parsed is None:
            continue
        media_range, q = parsed
        for offered in OFFERED:
            rank = _match(media_range, offered)
            if not rank:
                continue
            seen = ranked.get(offered)
            # A more specific range overrides a vaguer one (RFC 9110 12.5.1),
            # so "application/*, application/vnd...json;q=0" refuses JSON.
            if seen is None or rank > seen[0] or (rank == seen[0] and q > seen[1]):
                ranked[offered] = (rank, q)
    return {offered: q for offered, (_, q) in ranked.items()}


def _media_range(entry: str) -> tuple[str, float] | None:
    """``"type/sub;q=0.5"`` -> ``("type/sub", 0.5)``; None for an entry to ignore."""
    media_range, *params = entry.split(";")
    media_range = media_range.strip().lower()
    if media_range.count("/") != 1:
        return None
    q = 1.0
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            q = _qvalue(value.strip())
            if q is None:
                return None
            break  # parameters after q are accept-extensions, not part of the range
    return media_range, q


def _qvalue(text: str) -> float | None:
    """A q-value per RFC 9110 ("0", "0.5", "1.000"), or None if malformed."""
    if _QVALUE.fullmatch(text) is None:
        return None
    return float(text)


def _match(media_range: str, offered: str) -> int:
    """How specifically ``media_range`` names ``offered`` (0 = not at all)."""
    if _ALIASES.get(media_range) == offered:
        return _EXACT
    if media_range == "*/*":
        return _ANY
    kind, _, subtype = media_range.partition("/")
    if subtype == "*" and offered.split("/", 1)[0] == kind:
        return _SUBTYPE_WILDCARD
    return 0
