"""The admin REST API under ``/api/v1``: the review queue, project histories, decisions, tokens.

Routes stay thin: they authenticate, call ``queries`` or ``actions`` in one
transaction, and tell the rest of the process (``after_decision``) so the
decision shows on the very next page request.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from packaging.utils import InvalidName, canonicalize_name

from mirror.review import actions, queries, tokens
from mirror.review.auth import client_cache, require
from mirror.review.policyview import effective_policy
from mirror.review.refusals import flush_waiting
from mirror.review.schemas import (
    AllowIn,
    AuditPage,
    BlockedFileOut,
    DecisionIn,
    DecisionOut,
    History,
    Principal as PrincipalOut,
    ProjectList,
    Queue,
    TokenCreated,
    TokenIn,
    TokenOut,
    UndoIn,
)
from mirror.review.tokens import Principal
from mirror.web.client_info import request_info

router = APIRouter(prefix="/api/v1", tags=["review"])
reviewer = require("reviewer")
admin = require("admin")


def _services(request: Request) -> Any:
    return request.app.state.services


def project_name(name: str) -> str:
    """The normal form of a project name from a URL, or a 422 that says what is wrong."""
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise HTTPException(422, f"{name[:100]!r} is not a valid project name") from None


def request_record(request: Request, via: str) -> dict[str, Any]:
    """What the audit keeps about the request that carried a decision."""
    return {**request_info(request, _services(request).clock()), "via": via}


@contextmanager
def _as_http() -> Iterator[None]:
    try:
        yield
    except actions.ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except tokens.DuplicateName as exc:
        raise HTTPException(409, str(exc)) from None
    except tokens.TokenError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/whoami", response_model=PrincipalOut, summary="The token's name and role")
def whoami(principal: Principal = Depends(require("client"))) -> PrincipalOut:
    return PrincipalOut(name=principal.name, role=principal.role)


@router.get("/projects", response_model=ProjectList, summary="List or search screened projects")
def list_projects(
    request: Request,
    q: str = Query("", max_length=200, description="part of the name (any spelling)"),
    state: str | None = Query(None, pattern="^(allowed|quarantined|denied)$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    principal: Principal = Depends(reviewer),
) -> ProjectList:
    services = _services(request)
    flush_waiting(request.app.state)
    with services.sessions() as session:
        return queries.list_projects(session, services.clock(), query=q, state=state, limit=limit, offset=offset)


@router.get("/queue", response_model=Queue, summary="What waits for review, oldest first")
def queue(request: Request, principal: Principal = Depends(reviewer)) -> Queue:
    services = _services(request)
    flush_waiting(request.app.state)
    with services.sessions() as session:
        return queries.review_queue(session, services.clock())


@router.get("/projects/{name}", response_model=History, summary="A project's findings, decisions and releases")
def project(name: str, request: Request, principal: Principal = Depends(reviewer)) -> History:
    services = _services(request)
    canonical = project_name(name)
    flush_waiting(request.app.state)
    with services.sessions() as session:
        history = queries.project_history(session, canonical, services.clock())
    if history is None:
        raise HTTPException(404, f"no screened project named '{canonical}'")
    return history


def _decide_project(request: Request, name: str, action: str, body: DecisionIn, principal: Principal) -> DecisionOut:
    services = _services(request)
    canonical = project_name(name)
    now = services.clock()
    with _as_http():
        expires_at = None
        if isinstance(body, AllowIn):
            expires_at = body.expires_at or (actions.break_glass_expiry(now, body.hours) if body.hours else None)
    with _as_http(), services.sessions.begin() as session:
        decision = actions.decide_on_project(
            session,
            project=canonical,
            action=action,
            actor=principal.name,
            reason=body.reason,
            now=now,
            expires_at=expires_at,
            request=request_record(request, "api"),
        )
        out = DecisionOut.model_validate(decision)
    services.after_decision(canonical)
    return out


@router.post("/projects/{name}/allow", response_model=DecisionOut, summary="Allow a project (break-glass with an expiry)")
def allow_project(
    name: str, body: AllowIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    return _decide_project(request, name, "allow", body, principal)


@router.post("/projects/{name}/deny", response_model=DecisionOut, summary="Deny a project")
def deny_project(
    name: str, body: DecisionIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    return _decide_project(request, name, "deny", body, principal)


def _decide_release(
    request: Request, name: str, version: str, action: str, body: DecisionIn, principal: Principal
) -> DecisionOut:
    services = _services(request)
    canonical = project_name(name)
    with _as_http(), services.sessions.begin() as session:
        decision = actions.decide_on_release(
            session,
            project=canonical,
            version=version,
            action=action,
            actor=principal.name,
            reason=body.reason,
            now=services.clock(),
            request=request_record(request, "api"),
        )
        out = DecisionOut.model_validate(decision)
    services.after_decision(canonical)
    return out


@router.post("/projects/{name}/releases/{version}/allow", response_model=DecisionOut, summary="Allow one release")
def allow_release(
    name: str, version: str, body: DecisionIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    return _decide_release(request, name, version, "allow", body, principal)


@router.post("/projects/{name}/releases/{version}/deny", response_model=DecisionOut, summary="Deny one release")
def deny_release(
    name: str, version: str, body: DecisionIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    return _decide_release(request, name, version, "deny", body, principal)


@router.get("/projects/{name}/files/blocked", response_model=list[BlockedFileOut],
            summary="Pinned files not served (re-uploads and other blocks)")
def blocked_files(name: str, request: Request, principal: Principal = Depends(reviewer)) -> list[BlockedFileOut]:
    services = _services(request)
    canonical = project_name(name)
    with services.sessions() as session:
        pins = actions.blocked_files(session, canonical)
        out = [BlockedFileOut.model_validate(pin) for pin in pins]
    return [f.model_copy(update={"listed_sha256": services.pages.listed_sha256(canonical, f.filename)}) for f in out]


@router.post("/projects/{name}/files/{filename}/unblock", response_model=DecisionOut,
             summary="Serve a blocked file's pinned bytes again")
def unblock_file(
    name: str, filename: str, body: DecisionIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    services = _services(request)
    canonical = project_name(name)
    listed = services.pages.listed_sha256(canonical, filename)
    with _as_http(), services.sessions.begin() as session:
        decision = actions.unblock_file(
            session,
            project=canonical,
            filename=filename,
            actor=principal.name,
            reason=body.reason,
            now=services.clock(),
            listed_sha256=listed,
            request=request_record(request, "api"),
        )
        out = DecisionOut.model_validate(decision)
    services.after_decision(canonical)
    return out


@router.post("/decisions/{decision_id}/undo", response_model=DecisionOut, summary="Undo the latest decision")
def undo_decision(
    decision_id: int, body: UndoIn, request: Request, principal: Principal = Depends(reviewer)
) -> DecisionOut:
    services = _services(request)
    with _as_http(), services.sessions.begin() as session:
        decision = actions.undo(
            session,
            decision_id=decision_id,
            actor=principal.name,
            reason=body.reason,
            now=services.clock(),
            request=request_record(request, "api"),
        )
        out = DecisionOut.model_validate(decision)
    services.after_decision(out.project)
    return out


@router.get("/audit", response_model=AuditPage, summary="Decisions and critical events, newest first")
def audit(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
    project: str | None = Query(None, max_length=200),
    principal: Principal = Depends(reviewer),
) -> AuditPage:
    services = _services(request)
    with services.sessions() as session:
        return queries.audit_log(
            session, limit=limit, offset=offset, project=project_name(project) if project else None
        )


@router.get("/policy", summary="The policy in force")
def policy(request: Request, principal: Principal = Depends(reviewer)) -> dict[str, Any]:
    return effective_policy(_services(request))


# -- tokens (admin only) ---------------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut], summary="List tokens (never their secrets)")
def list_tokens(request: Request, principal: Principal = Depends(admin)) -> list[TokenOut]:
    with _services(request).sessions() as session:
        return [TokenOut.model_validate(t) for t in tokens.list_tokens(session)]


@router.post("/tokens", response_model=TokenCreated, status_code=201, summary="Create a token")
def create_token(body: TokenIn, request: Request, principal: Principal = Depends(admin)) -> TokenCreated:
    services = _services(request)
    with _as_http(), services.sessions.begin() as session:
        row, secret = tokens.create_token(
            session, name=body.name, role=body.role, created_by=principal.name, now=services.clock()
        )
        return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=secret)


@router.delete("/tokens/{name}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(name: str, request: Request, principal: Principal = Depends(admin)) -> TokenOut:
    services = _services(request)
    try:
        with services.sessions.begin() as session:
            row = tokens.revoke_token(session, name, services.clock())
            out = TokenOut.model_validate(row)
    except tokens.TokenError as exc:
        raise HTTPException(404, str(exc)) from None
    client_cache(request.app).clear()
    return out
