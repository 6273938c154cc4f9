"""The admin pages under ``/admin``: server-rendered HTML forms, no JavaScript.

Safety rules every page follows:
- Jinja2 autoescaping is on for every template; package metadata is never
  marked safe and never turned into a link.
- A strict Content-Security-Policy forbids scripts outright, so even a
  template mistake cannot run injected code.
- Every POST carries the session's synchronizer CSRF token (the login form a
  double-submit token), and the session cookie is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from importlib import resources
from typing import Any, Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, pass_context
from packaging.utils import InvalidName, canonicalize_name
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mirror.clock import parse_utc
from mirror.db.models import Decision
from mirror.review import actions, bulk, evidence, pagecontext, queries, websession
from mirror.review.api import request_record
from mirror.review.auth import principal_for
from mirror.review.refusals import flush_waiting
from mirror.review.schemas import MAX_REASON
from mirror.review.settings import ReviewSettings
from mirror.review.upstream_info import UpstreamInfoCache
from mirror.review.useragent import parse_user_agent
from mirror.review.websession import COOKIE, COOKIE_PATH, LOGIN_COOKIE, WebSession
from mirror.states import PROJECT_STATES

log = logging.getLogger("indexguard.review.pages")

router = APIRouter(prefix="/admin", include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FLASH = {
    "allowed": "Allowed.",
    "denied": "Denied.",
    "break-glass": "Break-glass allow recorded; the block returns when it expires.",
    "release-allowed": "Release allowed.",
    "release-denied": "Release denied.",
    "undone": "Decision undone; the previous state is restored.",
    "releases-allowed": "Selected releases allowed.",
    "releases-denied": "Selected releases denied.",
    "held-approved": "Held releases approved.",
    "refreshed": "Asked upstream again; this is what it says now.",
    "unblocked": "The file's block was cleared; its pinned bytes are served again.",
}
PAGE_SIZE = 50


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@pass_context
def ago(context: Any, value: datetime | None) -> str:
    """'3 days ago' relative to the page's clock, which tests control."""
    if value is None:
        return "—"
    seconds = (context["now"] - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def isotime(value: object) -> str:
    """A stored ISO time string shown like every other time on the pages."""
    if not isinstance(value, str) or not value:
        return "—"
    parsed = parse_utc(value)
    return stamp(parsed) if parsed else value


def num(value: int | None) -> str:
    return f"{value:,}" if isinstance(value, int) else "unknown"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("mirror.review", "templates"), autoescape=True)
    env.filters.update(
        stamp=stamp, ago=ago, num=num, isotime=isotime, evidence_rows=evidence.evidence_rows,
        explain=evidence.explain, client_info=parse_user_agent, beyond_reason=evidence.beyond_reason,
    )
    return env


_env = _environment()
_STYLE = resources.files("mirror.review").joinpath("templates/style.css").read_bytes()


# -- plumbing ------------------------------------------------------------------


def _services(request: Request) -> Any:
    return request.app.state.services


def _settings(request: Request) -> ReviewSettings:
    settings = getattr(request.app.state, "review_settings", None)
    if settings is None:
        settings = request.app.state.review_settings = ReviewSettings.from_settings(_services(request).settings)
    return settings


def _upstream_info(request: Request) -> UpstreamInfoCache:
    cache = getattr(request.app.state, "review_upstream_info", None)
    if cache is None:
        cache = request.app.state.review_upstream_info = UpstreamInfoCache.for_services(_services(request))
    return cache


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("title", "IndexGuard")
    context.setdefault("principal", None)
    context.setdefault("csrf", "")
    context.setdefault("nav", "")
    context.setdefault("queue_count", None)
    context.setdefault("flash", FLASH.get(request.query_params.get("done", "")))
    context.setdefault("error", None)
    context.setdefault("now", _services(request).clock())
    body = _env.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _secure(request: Request) -> bool:
    public = _services(request).settings.server.public_url
    return request.url.scheme == "https" or public.startswith("https://")


def _current(request: Request) -> WebSession | None:
    services = _services(request)
    with services.sessions() as session:
        return websession.lookup(session, request.cookies.get(COOKIE), services.clock())


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/admin/login?{urlencode({'next': target})}", status_code=303)


def _refuse(request: Request, status: int, message: str, principal: Any = None, csrf: str = "") -> HTMLResponse:
    return _render(request, "error.html", status, title="Refused", message=message, principal=principal, csrf=csrf)


def _checked_post(request: Request, csrf_token: str) -> WebSession | HTMLResponse:
    """The session of a form POST, or the refusal: no session, or a missing or wrong CSRF token."""
    current = _current(request)
    if current is None:
        return _refuse(request, 401, "Your session has ended. Sign in again, then repeat the action.")
    if not websession.csrf_matches(current.csrf_token, csrf_token):
        log.warning("refused a POST without a valid CSRF token from %s", request.client.host if request.client else "?")
        return _refuse(
            request, 403, "This form was not sent from this session (CSRF check failed). Reload the page and try again.",
            current.principal, current.csrf_token,
        )
    if not current.principal.can("reviewer"):
        return _refuse(request, 403, "This needs the reviewer role.", current.principal, current.csrf_token)
    return current


def _safe_next(value: str) -> str:
    """Only same-site admin paths: a login link must not redirect anywhere else."""
    if value.startswith("/admin/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin/"


def _canonical(name: str) -> str | None:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        return None


def _queue_count(request: Request) -> int:
    services = _services(request)
    with services.sessions() as session:
        queue = queries.review_queue(session, services.clock(), limit=0)
    return queue.counts.projects + queue.counts.releases


def _common(request: Request, current: WebSession, nav: str) -> dict[str, Any]:
    return {
        "principal": current.principal,
        "csrf": current.csrf_token,
        "nav": nav,
        "queue_count": _queue_count(request),
    }


# -- sign in and out -------------------------------------------------------------


@router.get("/style.css")
def style() -> Response:
    return Response(_STYLE, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("")
def admin_root() -> Response:
    return RedirectResponse("/admin/", status_code=308)


@router.get("/login")
def login_form(request: Request, next_url: str = Query("/admin/", alias="next")) -> Response:
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", title="Sign in", login_csrf=token, next=_safe_next(next_url))
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.post("/login")
def login(
    request: Request,
    token: str = Form(""),
    csrf_token: str = Form(""),
    next_url: str = Form("/admin/", alias="next"),
) -> Response:
    if not websession.csrf_matches(request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _refuse(request, 403, "The sign-in form expired or was not sent from this browser. Reload it and try again.")
    principal = principal_for(request, token.strip())
    if principal is None or not principal.can("reviewer"):
        log.warning("failed admin sign-in from %s", request.client.host if request.client else "?")
        fresh = secrets.token_urlsafe(32)
        message = "That token is not valid." if principal is None else "That token is for package clients, not for review."
        response = _render(
            request, "login.html", 401, title="Sign in", login_csrf=fresh, next=_safe_next(next_url), error=message
        )
        response.set_cookie(
            LOGIN_COOKIE, fresh, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
        )
        return response
    services = _services(request)
    lifetime = timedelta(hours=_settings(request).session_hours)
    with services.sessions.begin() as session:
        session_id, started = websession.start(session, principal, services.clock(), lifetime)
    response = RedirectResponse(_safe_next(next_url), status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(lifetime.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    checked = _checked_post(request, csrf_token)
    if isinstance(checked, Response):
        return checked
    services = _services(request)
    with services.sessions.begin() as session:
        websession.end(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


# -- reading -------------------------------------------------------------------------


@router.get("/")
def queue_page(request: Request, detector: str = "", severity: str = "", age: str = "") -> Response:
    current = _current(request)
    if current is None:
        return _login_redirect(request)
    flush_waiting(request.app.state)
    page = pagecontext.queue_context(
        _services(request), pagecontext.queue_filter(detector, severity, age), chart_days=_settings(request).chart_days
    )
    context = _common(request, current, "queue")
    context["queue_count"] = page["queue"].counts.projects + page["queue"].counts.releases
    return _render(request, "queue.html", title="Review queue", age=age,
                   refusals_days=_settings(request).refusals_retention_days, **page, **context)


@router.get("/projects")
def projects_page(request: Request, q: str = "", state: str = "", offset: int = 0) -> Response:
    current = _current(request)
    if current is None:
        return _login_redirect(request)
    services = _services(request)
    q = q[:200]
    state_filter = state if state in PROJECT_STATES else None
    offset = max(0, offset)
    with services.sessions() as session:
        result = queries.list_projects(
            session, services.clock(), query=q, state=state_filter, limit=PAGE_SIZE, offset=offset
        )

    def page_url(new_offset: int) -> str:
        return "/admin/projects?" + urlencode({"q": q, "state": state_filter or "", "offset": new_offset})

    return _render(
        request,
        "projects.html",
        title="Projects",
        result=result,
        internal=pagecontext.internal_names(services, q) if not state_filter and offset == 0 else [],
        q=q,
        state_filter=state_filter,
        states=PROJECT_STATES,
        prev_url=page_url(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        next_url=page_url(offset + PAGE_SIZE) if offset + PAGE_SIZE < result.total else None,
        **_common(request, current, "projects"),
    )


@router.get("/projects/{name}")
def project_page(request: Request, name: str) -> Response:
    current = _current(request)
    if current is None:
        return _login_redirect(request)
    return _project_view(request, current, name)


def _checked_project(request: Request, csrf_token: str, name: str) -> tuple[WebSession, str] | Response:
    """A form POST's session (CSRF-checked) and canonical project name, or the refusal."""
    checked = _checked_post(request, csrf_token)
    if isinstance(checked, Response):
        return checked
    canonical = _canonical(name)
    if canonical is None:
        return _refuse(request, 404, "That is not a valid project name.", checked.principal, checked.csrf_token)
    return checked, canonical


def _project_view(
    request: Request, current: WebSession, name: str, *, status: int = 200, error: str | None = None,
    reason_text: str = "", hours_text: str = "",
) -> Response:
    canonical = _canonical(name)
    if canonical is None:
        return _refuse(request, 404, "That is not a valid project name.", current.principal, current.csrf_token)
    if canonical != name:
        return RedirectResponse(f"/admin/projects/{canonical}", status_code=308)
    services = _services(request)
    flush_waiting(request.app.state)
    page = pagecontext.project_context(
        services, canonical, _upstream_info(request), releases_per_page=_settings(request).releases_per_page,
        releases_offset=_int_param(request, "releases"), live_upstream=request.query_params.get("upstream") == "live",
    )
    if page is None:
        internal = pagecontext.internal_context(services, canonical)
        if internal is not None:
            return _render(request, "internal.html", status, title=canonical, **internal,
                           **_common(request, current, "projects"))
        return _render(
            request, "error.html", 404, title="Not screened", back="/admin/projects",
            message=f"No project named {canonical} has been screened yet.", **_common(request, current, "projects"),
        )
    return _render(
        request,
        "project.html",
        status,
        title=canonical,
        **page,
        undoable=actions.undoable(page["history"].decisions),
        refusals_days=_settings(request).refusals_retention_days,
        error=error,
        reason_text=reason_text,
        hours_text=hours_text,
        **_common(request, current, "projects"),
    )


@router.get("/audit")
def audit_page(
    request: Request, offset: int = 0, routine: str = "", action: str = "", actor: str = "", detector: str = "",
    project: str = "",
) -> Response:
    """The audit log; the policy's "allow / no findings" rows are hidden unless ``routine=show``."""
    current = _current(request)
    if current is None:
        return _login_redirect(request)
    services = _services(request)
    offset = min(max(0, offset), 1_000_000)
    only = queries.AuditFilter(
        hide_routine=routine != "show", action=action[:64] or None, actor=actor[:255] or None,
        detector=detector[:64] or None,
    )
    project_name = _canonical(project) if project else None
    with services.sessions() as session:
        page = queries.audit_log(session, limit=PAGE_SIZE, offset=offset, project=project_name, only=only)
        choices = queries.audit_choices(session)
    params = {"routine": routine, "action": action, "actor": actor, "detector": detector, "project": project_name or ""}

    def page_url(new_offset: int) -> str:
        return "/admin/audit?" + urlencode({**{k: v for k, v in params.items() if v}, "offset": new_offset})

    return _render(
        request,
        "audit.html",
        title="Audit log",
        page=page,
        only=only,
        choices=choices,
        project=project_name,
        show_routine=routine == "show",
        prev_url=page_url(max(0, offset - PAGE_SIZE)) if offset > 0 else None,
        next_url=page_url(page.next_offset) if page.next_offset is not None else None,
        **_common(request, current, "audit"),
    )


def _int_param(request: Request, name: str) -> int:
    """A non-negative whole-number query parameter; anything else is 0."""
    value = request.query_params.get(name, "")
    return min(int(value), 1_000_000) if value.isdigit() else 0


# -- deciding --------------------------------------------------------------------------


@router.post("/projects/{name}/decide")
def decide_project_form(
    request: Request,
    name: str,
    csrf_token: str = Form(""),
    action: str = Form(""),
    reason: str = Form(""),
    hours: str = Form(""),
) -> Response:
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    checked, canonical = found

    def again(message: str, status: int = 400) -> Response:
        return _project_view(request, checked, canonical, status=status, error=message, reason_text=reason, hours_text=hours)

    if action not in ("allow", "deny"):
        return again("Choose Allow or Deny.")
    if not reason.strip():
        return again("A reason is required.")
    if len(reason) > MAX_REASON:
        return again(f"The reason is too long ({MAX_REASON} characters at most).")
    services = _services(request)
    now = services.clock()
    expires_at = None
    try:
        if hours.strip():
            try:
                value = float(hours)
            except ValueError:
                return again("Break-glass hours must be a number.")
            if action != "allow":
                return again("Break-glass hours only apply to Allow.")
            expires_at = actions.break_glass_expiry(now, value)  # the one bound: decide_on_project
        with services.sessions.begin() as session:
            actions.decide_on_project(
                session,
                project=canonical,
                action=action,
                actor=checked.principal.name,
                reason=reason.strip(),
                now=now,
                expires_at=expires_at,
                request=request_record(request, "web"),
            )
    except actions.ReviewError as exc:
        return again(str(exc), exc.status)
    services.after_decision(canonical)
    done = "break-glass" if expires_at else ("allowed" if action == "allow" else "denied")
    return RedirectResponse(f"/admin/projects/{canonical}?done={done}", status_code=303)


def _decision_problem(action: str, reason: str, doing: str) -> str | None:
    """What is wrong with an allow-or-deny form, in the words of the page; None when it is fine."""
    if action not in ("allow", "deny"):
        return "Choose Allow or Deny."
    return _reason_problem(reason, doing)


def _reason_problem(reason: str, doing: str) -> str | None:
    """What is wrong with a form's reason, in the words of the page; None when it is fine."""
    if not reason.strip():
        return f"A reason is required to {doing}."
    if len(reason) > MAX_REASON:
        return f"The reason is too long ({MAX_REASON} characters at most)."
    return None


def _decided(
    request: Request,
    checked: Any,
    project: str,
    decide: Callable[[Session], object],
    done: str,
) -> Response:
    """Apply one reviewer decision in a transaction, then show it (or say why it could not be made)."""
    services = _services(request)
    try:
        with services.sessions.begin() as session:
            decide(session)
    except actions.ReviewError as exc:
        return _project_view(request, checked, project, status=exc.status, error=str(exc))
    services.after_decision(project)
    return RedirectResponse(f"/admin/projects/{project}?done={done}", status_code=303)


@router.post("/projects/{name}/releases/{version}/decide")
def decide_release_form(
    request: Request,
    name: str,
    version: str,
    csrf_token: str = Form(""),
    action: str = Form(""),
    reason: str = Form(""),
) -> Response:
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    checked, canonical = found
    problem = _decision_problem(action, reason, f"{action} {version}")
    if problem:
        return _project_view(request, checked, canonical, status=400, error=problem)
    now = _services(request).clock()
    return _decided(request, checked, canonical, lambda session: actions.decide_on_release(
        session, project=canonical, version=version, action=action, actor=checked.principal.name,
        reason=reason.strip(), now=now, request=request_record(request, "web"),
    ), "release-allowed" if action == "allow" else "release-denied")


@router.post("/decisions/{decision_id}/undo")
def undo_form(request: Request, decision_id: int, csrf_token: str = Form(""), reason: str = Form("")) -> Response:
    checked = _checked_post(request, csrf_token)
    if isinstance(checked, Response):
        return checked
    services = _services(request)
    with services.sessions() as session:
        target = session.get(Decision, decision_id)
        project = target.project if target is not None else None
    if project is None:
        return _refuse(request, 404, f"There is no decision #{decision_id}.", checked.principal, checked.csrf_token)
    problem = _reason_problem(reason, f"undo #{decision_id}")
    if problem:
        return _project_view(request, checked, project, status=400, error=problem)
    return _decided(request, checked, project, lambda session: actions.undo(
        session, decision_id=decision_id, actor=checked.principal.name, reason=reason.strip(),
        now=services.clock(), request=request_record(request, "web"),
    ), "undone")


@router.post("/projects/{name}/releases/decide")
async def decide_releases_form(request: Request, name: str) -> Response:
    """Allow or deny the releases ticked on the project page, with one reason."""
    # A few more fields than the limit, so one too many is refused in words, not by the form parser.
    form = await request.form(max_fields=_settings(request).max_bulk_releases + 10)
    versions = [v for v in form.getlist("version") if isinstance(v, str)]
    action, reason = str(form.get("action", "")), str(form.get("reason", ""))
    return await run_in_threadpool(
        _decide_releases, request, name, str(form.get("csrf_token", "")), versions, action, reason
    )


def _decide_releases(
    request: Request, name: str, csrf_token: str, versions: list[str], action: str, reason: str
) -> Response:
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    checked, canonical = found
    problem = _decision_problem(action, reason, f"{action} the selected releases")
    if problem:
        return _project_view(request, checked, canonical, status=400, error=problem)
    now = _services(request).clock()
    return _decided(request, checked, canonical, lambda session: bulk.decide_releases(
        session, project=canonical, versions=versions, action=action, actor=checked.principal.name,
        reason=reason.strip(), now=now, limit=_settings(request).max_bulk_releases,
        request=request_record(request, "web"),
    ), "releases-allowed" if action == "allow" else "releases-denied")


@router.post("/projects/{name}/files/{filename}/unblock")
def unblock_file_form(
    request: Request, name: str, filename: str, csrf_token: str = Form(""), reason: str = Form("")
) -> Response:
    """Serve a file's pinned bytes again after upstream changed or removed it (a reviewer looked)."""
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    checked, canonical = found
    problem = _reason_problem(reason, f"serve {filename} again")
    if problem:
        return _project_view(request, checked, canonical, status=400, error=problem)
    services = _services(request)
    listed = services.pages.listed_sha256(canonical, filename)
    return _decided(request, checked, canonical, lambda session: actions.unblock_file(
        session, project=canonical, filename=filename, actor=checked.principal.name, reason=reason.strip(),
        now=services.clock(), listed_sha256=listed, request=request_record(request, "web"),
    ), "unblocked")


@router.post("/projects/{name}/releases/approve-held")
def approve_held_form(
    request: Request, name: str, csrf_token: str = Form(""), up_to: str = Form(""), reason: str = Form("")
) -> Response:
    """Allow every held release of a project up to one version: one decision for a cooldown backlog."""
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    checked, canonical = found
    if not up_to.strip():
        return _project_view(request, checked, canonical, status=400, error="Give the highest version to approve.")
    problem = _reason_problem(reason, f"approve held releases up to {up_to}")
    if problem:
        return _project_view(request, checked, canonical, status=400, error=problem)
    now = _services(request).clock()
    return _decided(request, checked, canonical, lambda session: bulk.approve_held_up_to(
        session, project=canonical, version=up_to.strip(), actor=checked.principal.name,
        reason=reason.strip(), now=now, limit=_settings(request).max_bulk_releases,
        request=request_record(request, "web"),
    ), "held-approved")


@router.post("/projects/{name}/upstream/refresh")
def refresh_upstream_form(request: Request, name: str, csrf_token: str = Form("")) -> Response:
    """Ask upstream's JSON API again, past the cache, and show its answer beside the stored one."""
    found = _checked_project(request, csrf_token, name)
    if isinstance(found, Response):
        return found
    _, canonical = found
    _upstream_info(request).forget(canonical)
    return RedirectResponse(f"/admin/projects/{canonical}?upstream=live&done=refreshed", status_code=303)
