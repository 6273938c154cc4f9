"""``indexguard admin token ...`` and ``indexguard review ...``.

Token commands work on the server's own database, so the first admin token
can be made before anything is running (and without one).  Review commands
talk to a running server's API, like any other client, so they see and do
exactly what the API allows the token to.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import quote

import requests
import requests.auth

from mirror.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, mirror_base, settings_from_args
from mirror.db.session import make_engine, make_session_factory
from mirror.review.tokens import TokenError, create_token, list_tokens, revoke_token
from mirror.states import ROLES

URL_ENV = "INDEXGUARD_URL"
TOKEN_ENV = "INDEXGUARD_TOKEN"
DEFAULT_URL = "http://127.0.0.1:8080/"


def add_parsers(commands: Any) -> None:
    """Register ``admin`` and ``review`` on the main parser's sub-commands."""
    _add_admin(commands)
    _add_review(commands)


# -- admin token -----------------------------------------------------------------


def _storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="the server's TOML configuration (default: $INDEXGUARD_CONFIG)")
    parser.add_argument("--storage", metavar="DIR", help="the server's data directory (overrides storage.path)")


def _add_admin(commands: Any) -> None:
    admin = commands.add_parser(
        "admin", help="manage API tokens", description="Manage the tokens of the admin API, admin pages and package clients."
    )
    admin_commands = admin.add_subparsers(title="admin commands", metavar="COMMAND")
    admin.set_defaults(handler=lambda args: admin.print_help() or EXIT_USAGE)
    token = admin_commands.add_parser(
        "token", help="create, list or revoke tokens",
        description="Tokens are stored hashed in the server's database; a secret is shown once, when created.",
    )
    token_commands = token.add_subparsers(title="token commands", metavar="COMMAND")
    token.set_defaults(handler=lambda args: token.print_help() or EXIT_USAGE)

    create = token_commands.add_parser(
        "create", help="create a token and print it",
        description="Create a token. The secret is printed alone on the last line of output, once.",
    )
    create.add_argument("--role", required=True, choices=ROLES,
                        help="client: package downloads; reviewer: decide; admin: also manage tokens")
    create.add_argument("--name", required=True, help="who holds it; recorded as the actor of their decisions")
    _storage_options(create)
    create.set_defaults(handler=cmd_token_create)

    listing = token_commands.add_parser("list", help="list tokens", description="List tokens (never their secrets).")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _storage_options(listing)
    listing.set_defaults(handler=cmd_token_list)

    revoke = token_commands.add_parser("revoke", help="revoke a token", description="Revoke a token by name.")
    revoke.add_argument("name", help="the token's name")
    _storage_options(revoke)
    revoke.set_defaults(handler=cmd_token_revoke)


def _open_database(args: argparse.Namespace) -> Any:
    from mirror.db import migrate  # alembic costs memory: only the commands that open the database load it

    settings = settings_from_args(args)
    settings.storage.path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return engine, make_session_factory(engine)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def cmd_token_create(args: argparse.Namespace) -> int:
    engine, sessions = _open_database(args)
    try:
        with sessions.begin() as session:
            row, secret = create_token(session, name=args.name, role=args.role, created_by=_operator(), now=_now())
    except TokenError as exc:
        print(f"indexguard: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    print(f"created {row.role} token {row.name!r}; it is shown only now, store it safely:", file=sys.stderr)
    sys.stderr.flush()
    print(secret)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    engine, sessions = _open_database(args)
    try:
        with sessions() as session:
            rows = [
                {
                    "name": t.name,
                    "role": t.role,
                    "created_at": t.created_at.isoformat(),
                    "created_by": t.created_by,
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in list_tokens(session)
            ]
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print_table(
        ["NAME", "ROLE", "CREATED", "BY", "LAST USED", "STATUS"],
        [
            [r["name"], r["role"], _short(r["created_at"]), r["created_by"], _short(r["last_used_at"]),
             "revoked " + _short(r["revoked_at"]) if r["revoked_at"] else "active"]
            for r in rows
        ],
    )
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    engine, sessions = _open_database(args)
    try:
        with sessions.begin() as session:
            row = revoke_token(session, args.name, _now())
    except TokenError as exc:
        print(f"indexguard: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    print(f"revoked token {row.name!r}; its browser sessions ended with it (package clients within seconds)")
    return EXIT_OK


# -- review ----------------------------------------------------------------------------


def _add_review(commands: Any) -> None:
    review = commands.add_parser(
        "review", help="work the review queue of a running mirror",
        description=f"Review quarantined projects through a running mirror's API. "
        f"URL and token come from --url/--token or ${URL_ENV}/${TOKEN_ENV}.",
    )
    review_commands = review.add_subparsers(title="review commands", metavar="COMMAND")
    review.set_defaults(handler=lambda args: review.print_help() or EXIT_USAGE)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--url", default=os.environ.get(URL_ENV) or DEFAULT_URL,
                            help=f"the mirror's base URL (default: ${URL_ENV}, else {DEFAULT_URL})")
        parser.add_argument("--token", default=None,
                            help=f"an API token (default: ${TOKEN_ENV}; prefer the variable, arguments show in ps)")
        parser.add_argument("--json", action="store_true", help="print the API's JSON")

    listing = review_commands.add_parser("list", help="the review queue, or projects by state or name",
                                         description="Without options: the review queue, oldest first.")
    listing.add_argument("--state", choices=("allowed", "quarantined", "denied"), help="list projects in this state")
    listing.add_argument("--search", metavar="TEXT", help="list projects whose name contains TEXT")
    common(listing)
    listing.set_defaults(handler=cmd_review_list)

    show = review_commands.add_parser("show", help="a project's findings, releases and decisions")
    show.add_argument("project")
    common(show)
    show.set_defaults(handler=cmd_review_show)

    for verb in ("allow", "deny"):
        sub = review_commands.add_parser(verb, help=f"{verb} a project or one release",
                                         description=f"{verb.capitalize()} a project, or one release with --version.")
        sub.add_argument("project")
        sub.add_argument("--version", help="decide on this release only")
        sub.add_argument("--reason", required=True, help="why (required; recorded in the audit log)")
        if verb == "allow":
            sub.add_argument("--hours", type=float, help="break-glass: allow only for this many hours")
        common(sub)
        sub.set_defaults(handler=cmd_review_decide, verb=verb)

    undo = review_commands.add_parser("undo", help="undo the latest decision on a project or release")
    undo.add_argument("decision", help="the decision's number (see 'review show')")
    undo.add_argument("--reason", required=True, help="why (required)")
    common(undo)
    undo.set_defaults(handler=cmd_review_undo)


class ApiError(Exception):
    pass


class Api:
    """A thin client of ``/api/v1``; errors carry the server's own explanation."""

    def __init__(self, url: str, token: str) -> None:
        self.base = mirror_base(url) + "api/v1/"
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "indexguard-cli"
        self.session.auth = _Bearer(token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        try:
            response = self.session.request(
                method, self.base + path, json=body, params={k: v for k, v in params.items() if v is not None},
                timeout=60, allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {self.base}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise ApiError(f"{response.status_code}: {_detail(response)}")
        return response.json()


class _Bearer(requests.auth.AuthBase):
    """Sets the bearer header itself, so that a ~/.netrc entry cannot replace it."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _detail(response: Any) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(detail, list):  # validation errors
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    return str(detail)


def _api(args: argparse.Namespace) -> Api | None:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(f"indexguard: no token: pass --token or set ${TOKEN_ENV}", file=sys.stderr)
        return None
    return Api(args.url, token)


def _run(args: argparse.Namespace, action: Any) -> int:
    api = _api(args)
    if api is None:
        return EXIT_USAGE
    try:
        result = action(api)
    except ApiError as exc:
        print(f"indexguard: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result, indent=2))
    return EXIT_OK


def cmd_review_list(args: argparse.Namespace) -> int:
    def action(api: Api) -> Any:
        if args.state or args.search:
            result = api.call("GET", "projects", state=args.state, q=args.search, limit=500)
            if not args.json:
                print_table(
                    ["PROJECT", "STATE", "DECIDED", "BY", "REASON"],
                    [[p["name"], _state(p), _short(p["decided_at"]), p["decided_by"], p["reason"]] for p in result["items"]],
                )
                print(f"{result['total']} project(s)")
            return result
        result = api.call("GET", "queue")
        if not args.json:
            print(f"Quarantined projects: {result['counts']['projects']}")
            print_table(
                ["PROJECT", "WAITING SINCE", "FINDINGS", "REASON"],
                [[p["name"], _short(p["decided_at"]), _counts(p["findings"]), p["reason"]] for p in result["projects"]],
            )
            print(f"\nHeld releases: {result['counts']['releases']}")
            print_table(
                ["PROJECT", "VERSION", "HELD SINCE", "UNTIL", "REASON"],
                [[r["project"], r["version"], _short(r["decided_at"]), _short(r["held_until"]) or "review", r["reason"]]
                 for r in result["releases"]],
            )
        return result

    return _run(args, action)


def cmd_review_show(args: argparse.Namespace) -> int:
    def action(api: Api) -> Any:
        result = api.call("GET", f"projects/{quote(args.project, safe='')}")
        if not args.json:
            p = result["project"]
            print(f"{p['name']}: {_state(p)}")
            print(f"  reason:     {p['reason']}")
            print(f"  decided:    {_short(p['decided_at'])} by {p['decided_by']}")
            print(f"  first seen: {_short(p['first_seen'])}")
            if result.get("requested"):
                r = result["requested"]
                print(f"  requested:  {r.get('time', '')} from {r.get('client', '?')} ({r.get('user_agent', '')})")
            print("\nFindings")
            print_table(
                ["SEVERITY", "DETECTOR", "TITLE", "TARGET", "RELEASE"],
                [[f["severity"], f["detector"], f["title"], f["target"] or "", f["version"] or ""] for f in result["findings"]],
            )
            print("\nReleases")
            print_table(
                ["VERSION", "STATE", "UPLOADED", "REASON"],
                [[r["version"], r["state"] + ("" if r["blocked"] or r["state"] == "allowed" else " (lifted)"),
                  _short(r["upload_time"]), r["reason"]] for r in result["releases"]],
            )
            print("\nDecisions")
            print_table(
                ["#", "WHEN", "ACTION", "VERSION", "BY", "REASON"],
                [[str(d["id"]), _short(d["at"]), d["action"] + (f" (undone by #{d['undone_by']})" if d["undone_by"] else ""),
                  d["version"] or "", d["actor"], d["reason"]] for d in result["decisions"]],
            )
        return result

    return _run(args, action)


def cmd_review_decide(args: argparse.Namespace) -> int:
    def action(api: Api) -> Any:
        body: dict[str, Any] = {"reason": args.reason}
        project = quote(args.project, safe="")
        if args.version:
            if getattr(args, "hours", None):
                raise ApiError("--hours applies to a whole project, not to one release")
            path = f"projects/{project}/releases/{quote(args.version, safe='')}/{args.verb}"
        else:
            if getattr(args, "hours", None):
                body["hours"] = args.hours
            path = f"projects/{project}/{args.verb}"
        result = api.call("POST", path, body)
        if not args.json:
            what = f"{result['project']} {result['version']}" if result["version"] else result["project"]
            until = f" until {_short(result['expires_at'])}" if result.get("expires_at") else ""
            print(f"decision #{result['id']}: {result['action']} {what}{until} by {result['actor']}")
        return result

    return _run(args, action)


def cmd_review_undo(args: argparse.Namespace) -> int:
    if not str(args.decision).isdigit():
        print(f"indexguard: review undo takes a decision's number, not {args.decision!r}; "
              f"'indexguard review show {args.decision}' lists a project's decisions with their numbers",
              file=sys.stderr)
        return EXIT_USAGE

    def action(api: Api) -> Any:
        result = api.call("POST", f"decisions/{args.decision}/undo", {"reason": args.reason})
        if not args.json:
            what = f"{result['project']} {result['version']}" if result["version"] else result["project"]
            print(f"decision #{result['id']}: {what} is back to '{result['action']}' (undid #{args.decision})")
        return result

    return _run(args, action)


# -- output ----------------------------------------------------------------------------


def _state(project: dict[str, Any]) -> str:
    if project["effective_state"] != project["state"]:
        return f"{project['effective_state']} (break-glass until {_short(project['allow_until'])}, then {project['state']})"
    return project["state"]


def _short(value: str | None) -> str:
    """'2026-11-25T22:01:04.153679+00:00' -> '2026-11-25 22:01'."""
    if not value:
        return ""
    return value[:16].replace("T", " ")


def _counts(findings: dict[str, int]) -> str:
    order = ("critical", "high", "medium", "low", "info")
    return ", ".join(f"{findings[s]} {s}" for s in order if findings.get(s)) or "none"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: Any = None) -> None:
    """Aligned columns; the last column is cut to the terminal's width."""
    out = out or sys.stdout
    if not rows:
        print("  (none)", file=out)
        return
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    widths = [min(w, 40) for w in widths[:-1]] + [widths[-1]]
    room = shutil.get_terminal_size((120, 24)).columns - sum(widths[:-1]) - 2 * (len(widths) - 1)
    widths[-1] = max(len(headers[-1]), min(widths[-1], room))

    def fit(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    for row in [list(headers), *cells]:
        print("  ".join(fit(c, w).ljust(w) for c, w in zip(row, widths)).rstrip(), file=out)
