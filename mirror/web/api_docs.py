"""``/api/docs``: the admin API's reference, served from the mirror itself.

FastAPI's Swagger page loads its scripts from a CDN, which a mirror's
network (often without the internet) cannot reach: the page stayed blank.
This one is rendered from the same OpenAPI document, with no script at all.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()

METHODS = ("get", "post", "put", "patch", "delete")


@router.get("/api/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render_api_docs(request.app.openapi()))


def render_api_docs(spec: dict[str, Any]) -> str:
    """One row per operation: method, path, summary and who may call it."""
    rows = []
    for path, item in sorted(spec.get("paths", {}).items()):
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            summary = operation.get("summary") or operation.get("description", "").split("\n")[0]
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{escape(path)}</code></td>"
                f"<td>{escape(summary)}</td></tr>"
            )
    title = escape(f"{spec.get('info', {}).get('title', 'API')} {spec.get('info', {}).get('version', '')}")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title} API</title>"
        "<style>body{font:15px system-ui,sans-serif;margin:2em;max-width:70em}"
        "td{padding:.3em .8em;border-bottom:1px solid #ddd;vertical-align:top}</style></head><body>"
        f"<h1>{title} admin API</h1>"
        "<p>Every call needs <code>Authorization: Bearer TOKEN</code> (see <code>indexguard admin token create</code>). "
        'The machine-readable description is <a href="/api/openapi.json">/api/openapi.json</a>; '
        "load it into any OpenAPI viewer for request and response shapes.</p>"
        f"<table><thead><tr><th>method</th><th>path</th><th>what it does</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>"
    )
