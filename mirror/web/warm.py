"""The warm page fast path: a page the mirror allowed seconds ago, answered before routing.

A warm page is the most common request a mirror gets, and it is only
stored bytes.  Routing, the framework's request and response objects and
its exception layers cost several times the send itself, so a recently
allowed page (``ProjectService.warm``: the same answer the route's first
step gives) is answered here.  Everything else, and every miss, goes on to
the routes.  This sits inside the authentication, limits, metrics and
access-log middleware, so those apply as to any request.
"""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.serving.project_service import ProjectService
from mirror.simple.negotiate import choose_format
from mirror.web.simple import html_unrendered, page_reply

PREFIX = "/simple/"
# What metrics and the access log label these requests with: the route's own template.
ROUTE = SimpleNamespace(path="/simple/{name}/")


class WarmPages:
    def __init__(self, app: ASGIApp, projects: ProjectService) -> None:
        self.app = app
        self.projects = projects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            reply = self._reply(scope)
            if reply is not None:
                status, headers, body = reply
                scope["route"] = ROUTE
                await send({
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
                })
                await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
                return
        await self.app(scope, receive, send)

    def _reply(self, scope: Scope) -> tuple[int, dict[str, str], bytes] | None:
        """The reply when memory alone can answer, else None (the routes answer)."""
        path: str = scope["path"]
        if not path.startswith(PREFIX) or not path.endswith("/") or scope.get("root_path"):
            return None
        project = path[len(PREFIX):-1]
        if not project or "/" in project:
            return None
        page = self.projects.warm(project)  # only canonical names are ever warm
        if page is None:
            return None
        headers = {}
        for key, value in scope["headers"]:
            if key in (b"accept", b"accept-encoding", b"if-none-match"):
                headers[key] = value.decode("latin-1")
        query = scope.get("query_string", b"")
        fmt = None
        if query:
            values = parse_qs(query.decode("latin-1")).get("format")
            if values is None:
                return None  # anything unusual: the route's rules
            fmt = values[0].replace(" ", "+")
        media_type = choose_format(headers.get(b"accept"), fmt)
        if media_type is None or html_unrendered(page, media_type):
            return None  # the route's 406, or the first HTML request: the route renders it
        return page_reply(page, media_type, headers.get(b"accept-encoding", ""), headers.get(b"if-none-match", ""))
