"""The admin API: every endpoint, every role, and what each decision does to clients."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from mirror.db.models import Event
from mirror.review.actions import MAX_BREAK_GLASS_HOURS
from mirror.screening.decisions import decide_release
from mirror.screening.events import record_event
from tests.review.support import TYPOSQUAT, Api, allowed, get, make_token, quarantine

REASON = {"reason": "checked by hand"}
# (method, OpenAPI path, concrete path, body, role needed)
ENDPOINTS = [
    ("GET", "/api/v1/whoami", "whoami", None, "client"),
    ("GET", "/api/v1/projects", "projects", None, "reviewer"),
    ("GET", "/api/v1/queue", "queue", None, "reviewer"),
    ("GET", "/api/v1/projects/{name}", f"projects/{TYPOSQUAT}", None, "reviewer"),
    ("POST", "/api/v1/projects/{name}/allow", f"projects/{TYPOSQUAT}/allow", REASON, "reviewer"),
    ("POST", "/api/v1/projects/{name}/deny", f"projects/{TYPOSQUAT}/deny", REASON, "reviewer"),
    ("POST", "/api/v1/projects/{name}/releases/{version}/allow", f"projects/{TYPOSQUAT}/releases/1.0/allow", REASON, "reviewer"),
    ("POST", "/api/v1/projects/{name}/releases/{version}/deny", f"projects/{TYPOSQUAT}/releases/1.0/deny", REASON, "reviewer"),
    ("GET", "/api/v1/projects/{name}/files/blocked", f"projects/{TYPOSQUAT}/files/blocked", None, "reviewer"),
    ("POST", "/api/v1/projects/{name}/files/{filename}/unblock", f"projects/{TYPOSQUAT}/files/reqeusts-1.0.tar.gz/unblock",
     REASON, "reviewer"),
    ("POST", "/api/v1/decisions/{decision_id}/undo", "decisions/1/undo", REASON, "reviewer"),
    ("GET", "/api/v1/audit", "audit", None, "reviewer"),
    ("GET", "/api/v1/policy", "policy", None, "reviewer"),
    ("GET", "/api/v1/tokens", "tokens", None, "admin"),
    ("POST", "/api/v1/tokens", "tokens", {"name": "new-one", "role": "client"}, "admin"),
    ("DELETE", "/api/v1/tokens/{name}", "tokens/rita", None, "admin"),
]
RANK = {"client": 0, "reviewer": 1, "admin": 2}


def _state(api: Api, name: str) -> str:
    return api.ok("GET", f"projects/{name}")["project"]["effective_state"]


def test_the_endpoint_table_covers_every_review_route_and_all_are_documented(mirror) -> None:
    from mirror.review.api import router

    table = {(m, p) for m, p, *_ in ENDPOINTS}
    assert {(method, route.path) for route in router.routes for method in route.methods} == table
    spec = get(mirror, "/api/openapi.json").json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert table <= documented
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_missing_wrong_or_revoked_tokens_get_401_everywhere(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    revoked = make_token(mirror, "admin", "gone")
    Api(mirror, make_token(mirror, "admin", "boss")).ok("DELETE", "tokens/gone")
    callers = {
        "none": Api(mirror, None),
        "wrong": Api(mirror, "igt_" + "x" * 43),
        "revoked": Api(mirror, revoked),
    }
    for method, _, path, body, _ in ENDPOINTS:
        for label, api in callers.items():
            response = api.request(method, path, json=body)
            assert response.status_code == 401, (label, method, path, response.text)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    basic = requests.get(mirror.url + "api/v1/queue", auth=("rita", "whatever"), timeout=30)
    assert basic.status_code == 401
    assert _state(reviewer, TYPOSQUAT) == "quarantined"


def test_a_role_too_small_gets_403_and_changes_nothing(mirror, index_server, tmp_path, reviewer, client_token) -> None:
    quarantine(mirror, index_server, tmp_path)
    callers = {"client": Api(mirror, client_token), "reviewer": reviewer}
    refused = 0
    for method, _, path, body, needed in ENDPOINTS:
        for role, api in callers.items():
            if RANK[role] >= RANK[needed]:
                continue
            response = api.request(method, path, json=body)
            assert response.status_code == 403, (role, method, path, response.text)
            assert needed in response.json()["detail"]
            refused += 1
    assert refused == 15 + 3  # the client on every reviewer and admin endpoint, the reviewer on the token ones
    assert _state(reviewer, TYPOSQUAT) == "quarantined"
    assert reviewer.ok("GET", "whoami") == {"name": "rita", "role": "reviewer"}
    assert Api(mirror, client_token).ok("GET", "whoami")["role"] == "client"


def test_queue_is_oldest_first_with_counts(mirror, index_server, tmp_path, reviewer, clock) -> None:
    quarantine(mirror, index_server, tmp_path, "djnago")
    clock.advance(minutes=5)
    quarantine(mirror, index_server, tmp_path, TYPOSQUAT)
    allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "2.0")
    with mirror.services.sessions.begin() as session:
        decide_release(session, project="quiet-otter", version="2.0", action="hold", actor="policy",
                       reason="new owner", now=clock())
    queue = reviewer.ok("GET", "queue")
    assert queue["counts"] == {"projects": 2, "releases": 1}
    assert [p["name"] for p in queue["projects"]] == ["djnago", TYPOSQUAT]
    first = queue["projects"][0]
    finding = reviewer.ok("GET", "projects/djnago")["findings"][0]
    assert first["state"] == "quarantined" and first["findings"] == {finding["severity"]: 1}
    assert "django" in first["top_findings"][0]
    assert [(r["project"], r["version"], r["reason"]) for r in queue["releases"]] == [("quiet-otter", "2.0", "new owner")]


def test_history_has_findings_decisions_releases_and_the_request(mirror, index_server, tmp_path, reviewer) -> None:
    publish_name = quarantine(mirror, index_server, tmp_path)
    reviewer.ok("POST", f"projects/{publish_name}/deny", {"reason": "typosquat of requests"})
    history = reviewer.ok("GET", f"projects/{publish_name.upper()}")  # any spelling finds it
    assert history["project"]["name"] == TYPOSQUAT
    assert history["project"]["state"] == "denied"
    assert history["requested"]["path"] == f"/simple/{TYPOSQUAT}/"
    assert history["requested"]["user_agent"].startswith("python-requests")
    finding = history["findings"][0]
    assert finding["detector"] == "typosquat" and finding["target"] == "requests"
    assert finding["evidence"]["target_downloads"] > 1_000_000
    assert [(d["action"], d["actor"]) for d in history["decisions"]] == [("deny", "rita"), ("review", "policy")]
    assert history["decisions"][0]["request"]["via"] == "api"
    assert history["decisions"][0]["request"]["previous"]["state"] == "quarantined"
    assert [r["version"] for r in history["releases"]] == ["1.0"]
    assert reviewer.get("projects/never-seen").status_code == 404
    assert reviewer.get("projects/-bad-").status_code == 422


def test_deny_blocks_clients_and_records_who(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    decision = reviewer.ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": "  typosquat of requests  "})
    assert (decision["action"], decision["actor"], decision["reason"]) == ("deny", "rita", "typosquat of requests")
    refused = get(mirror, f"/simple/{TYPOSQUAT}/")
    assert refused.status_code == 403 and "is denied: typosquat of requests" in refused.text


def test_allow_serves_the_project_and_its_files(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "our own fork, reviewed"})
    page = get(mirror, f"/simple/{TYPOSQUAT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200
    (entry,) = page.json()["files"]
    wheel = get(mirror, f"/simple/{TYPOSQUAT}/" + entry["url"])
    assert wheel.status_code == 200 and wheel.content[:2] == b"PK"


def test_a_reason_is_required(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    allowed(mirror, index_server, tmp_path)
    for path in (f"projects/{TYPOSQUAT}/allow", f"projects/{TYPOSQUAT}/deny",
                 "projects/quiet-otter/releases/1.0/deny", "decisions/1/undo"):
        for body in (None, {}, {"reason": ""}, {"reason": " \n\t "}, {"reason": "x" * 2001}):
            response = reviewer.post(path, body)
            assert response.status_code == 422, (path, body, response.text)
    assert _state(reviewer, TYPOSQUAT) == "quarantined"
    assert reviewer.ok("GET", "audit")["total"] == 2  # the two policy decisions only


def test_break_glass_allow_expires(mirror, index_server, tmp_path, reviewer, clock) -> None:
    quarantine(mirror, index_server, tmp_path)
    decision = reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "incident 42", "hours": 2})
    assert decision["action"] == "break-glass"
    assert get(mirror, f"/simple/{TYPOSQUAT}/").status_code == 200
    project = reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]
    assert (project["state"], project["effective_state"]) == ("quarantined", "allowed")
    clock.advance(hours=2, seconds=5)
    assert get(mirror, f"/simple/{TYPOSQUAT}/").status_code == 403
    until = (clock() + timedelta(minutes=30)).isoformat()
    assert reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "again", "expires_at": until})["expires_at"]
    assert get(mirror, f"/simple/{TYPOSQUAT}/").status_code == 200
    past = (clock() - timedelta(minutes=1)).isoformat()
    assert reviewer.post(f"projects/{TYPOSQUAT}/allow", {"reason": "x", "expires_at": past}).status_code == 400
    both = {"reason": "x", "hours": 1, "expires_at": until}
    assert reviewer.post(f"projects/{TYPOSQUAT}/allow", both).status_code == 422
    assert reviewer.post(f"projects/{TYPOSQUAT}/deny", {"reason": "x", "hours": 1}).status_code == 422
    naive = {"reason": "x", "expires_at": "2099-01-01T00:00:00"}
    assert reviewer.post(f"projects/{TYPOSQUAT}/allow", naive).status_code == 422


def test_break_glass_has_one_upper_bound_for_hours_and_expires_at(mirror, index_server, tmp_path, reviewer, clock) -> None:
    quarantine(mirror, index_server, tmp_path)
    far = {"reason": "x", "expires_at": "9999-12-31T00:00:00Z"}
    for body in (far, {"reason": "x", "hours": MAX_BREAK_GLASS_HOURS + 1}, {"reason": "x", "hours": 1e300}):
        response = reviewer.post(f"projects/{TYPOSQUAT}/allow", body)
        assert response.status_code == 400, (body, response.text)
        assert f"at most {MAX_BREAK_GLASS_HOURS} hours" in response.json()["detail"]
    assert _state(reviewer, TYPOSQUAT) == "quarantined"
    at_limit = (clock() + timedelta(hours=MAX_BREAK_GLASS_HOURS)).isoformat()
    assert reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "x", "expires_at": at_limit})["expires_at"]


def test_release_decisions(mirror, index_server, tmp_path, reviewer) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0", "2.0")
    json_type = {"Accept": "application/vnd.pypi.simple.v1+json"}
    files = {f["filename"]: f["url"] for f in get(mirror, "/simple/quiet-otter/", headers=json_type).json()["files"]}
    denied = reviewer.ok("POST", "projects/quiet-otter/releases/2.0/deny", {"reason": "bad release"})
    assert (denied["version"], denied["action"]) == ("2.0", "deny")
    listed = get(mirror, "/simple/quiet-otter/", headers=json_type).json()
    assert listed["versions"] == ["1.0"]
    url = next(u for name, u in files.items() if "2.0" in name)
    assert get(mirror, "/simple/quiet-otter/" + url).status_code == 403
    reviewer.ok("POST", "projects/quiet-otter/releases/2.0/allow", {"reason": "false alarm"})
    assert get(mirror, "/simple/quiet-otter/" + url).status_code == 200
    assert reviewer.post("projects/quiet-otter/releases/9.9/allow", REASON).status_code == 404
    assert reviewer.post("projects/quiet-otter/releases/not-a-version/deny", REASON).status_code == 400
    assert reviewer.post("projects/never-seen/releases/1.0/deny", REASON).status_code == 404


def test_undo_restores_the_previous_state(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    policy_decision = reviewer.ok("GET", f"projects/{TYPOSQUAT}")["decisions"][0]["id"]
    assert reviewer.post(f"decisions/{policy_decision}/undo", REASON).status_code == 409  # nothing before it
    deny = reviewer.ok("POST", f"projects/{TYPOSQUAT}/deny", {"reason": "typosquat"})
    allow = reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "oops"})
    assert reviewer.post(f"decisions/{deny['id']}/undo", REASON).status_code == 409  # a later one exists
    undo = reviewer.ok("POST", f"decisions/{allow['id']}/undo", {"reason": "allowed by mistake"})
    assert (undo["action"], undo["actor"]) == ("deny", "rita")
    assert undo["reason"] == f"undo #{allow['id']}: allowed by mistake"
    assert undo["request"]["undo_of"] == allow["id"]
    assert _state(reviewer, TYPOSQUAT) == "denied"
    assert get(mirror, f"/simple/{TYPOSQUAT}/").status_code == 403
    decisions = {d["id"]: d for d in reviewer.ok("GET", f"projects/{TYPOSQUAT}")["decisions"]}
    assert decisions[allow["id"]]["undone_by"] == undo["id"]
    assert reviewer.post(f"decisions/{allow['id']}/undo", REASON).status_code == 409  # already undone
    reviewer.ok("POST", f"decisions/{undo['id']}/undo", {"reason": "undo the undo"})
    assert _state(reviewer, TYPOSQUAT) == "allowed"
    assert reviewer.post("decisions/999999/undo", REASON).status_code == 404


def test_undo_of_a_release_decision_and_of_a_break_glass(mirror, index_server, tmp_path, reviewer, clock) -> None:
    allowed(mirror, index_server, tmp_path, "quiet-otter", "1.0")
    deny = reviewer.ok("POST", "projects/quiet-otter/releases/1.0/deny", REASON)
    reviewer.ok("POST", f"decisions/{deny['id']}/undo", REASON)
    release = reviewer.ok("GET", "projects/quiet-otter")["releases"][0]
    assert (release["state"], release["blocked"]) == ("allowed", False)
    quarantine(mirror, index_server, tmp_path)
    glass = reviewer.ok("POST", f"projects/{TYPOSQUAT}/allow", {"reason": "incident", "hours": 1})
    reviewer.ok("POST", f"decisions/{glass['id']}/undo", REASON)
    project = reviewer.ok("GET", f"projects/{TYPOSQUAT}")["project"]
    assert (project["effective_state"], project["allow_until"]) == ("quarantined", None)


def test_audit_log_is_newest_first_paginated_with_critical_events(mirror, index_server, tmp_path, reviewer, clock) -> None:
    quarantine(mirror, index_server, tmp_path)
    for n in range(3):
        clock.advance(minutes=1)
        reviewer.ok("POST", f"projects/{TYPOSQUAT}/{'deny' if n % 2 == 0 else 'allow'}", {"reason": f"step {n}"})
    clock.advance(minutes=1)
    with mirror.services.sessions.begin() as session:
        record_event(session, severity="critical", kind="hash-mismatch", project=TYPOSQUAT,
                     message="bytes changed", at=clock())
        record_event(session, severity="warning", kind="slow-upstream", message="not for the audit", at=clock())
    first = reviewer.ok("GET", "audit", limit=2)
    assert [(e["type"], e["action"]) for e in first["entries"]] == [("event", "hash-mismatch"), ("decision", "deny")]
    assert first["total"] == 5 and first["next_offset"] == 2
    rest = reviewer.ok("GET", "audit", limit=2, offset=2)
    assert [e["reason"] for e in rest["entries"]] == ["step 1", "step 0"]
    last = reviewer.ok("GET", "audit", limit=2, offset=4)
    assert [e["actor"] for e in last["entries"]] == ["policy"] and last["next_offset"] is None
    assert "not for the audit" not in str(first) + str(rest) + str(last)
    only = reviewer.ok("GET", "audit", project="quiet-otter")
    assert only["entries"] == []
    with mirror.services.sessions() as session:
        assert session.query(Event).count() == 2


def test_list_and_search_projects(mirror, index_server, tmp_path, reviewer) -> None:
    quarantine(mirror, index_server, tmp_path)
    quarantine(mirror, index_server, tmp_path, "djnago")
    allowed(mirror, index_server, tmp_path, "quiet-otter")
    reviewer.ok("POST", "projects/djnago/deny", REASON)
    everything = reviewer.ok("GET", "projects")
    assert everything["total"] == 3
    assert {p["name"]: p["state"] for p in everything["items"]} == {
        TYPOSQUAT: "quarantined", "djnago": "denied", "quiet-otter": "allowed"}
    assert [p["name"] for p in reviewer.ok("GET", "projects", q="Quiet_Ott")["items"]] == ["quiet-otter"]
    assert [p["name"] for p in reviewer.ok("GET", "projects", state="denied")["items"]] == ["djnago"]
    assert reviewer.ok("GET", "projects", q="%")["total"] == 0
    paged = reviewer.ok("GET", "projects", limit=2, offset=2)
    assert len(paged["items"]) == 1 and paged["total"] == 3
    assert reviewer.get("projects", state="weird").status_code == 422


def test_deny_in_advance_but_never_allow_unscreened(mirror, reviewer) -> None:
    assert reviewer.post("projects/evil-thing/allow", REASON).status_code == 404
    reviewer.ok("POST", "projects/Evil.Thing/deny", {"reason": "known malware"})
    assert _state(reviewer, "evil-thing") == "denied"


def test_policy_shows_what_is_in_force(start_mirror, tmp_path) -> None:
    mirror = start_mirror(policy={"deny": ["evil-*"], "cooldown_hours": 24})
    policy = Api(mirror, make_token(mirror, "reviewer")).ok("GET", "policy")
    assert policy["settings"] == {"deny": ["evil-*"], "cooldown_hours": 24}
    assert "evil-*" in str(policy["policy"])
    assert policy["source"] in ("running", "settings")


def test_tokens_over_the_api(mirror, admin, reviewer) -> None:
    created = admin.request("POST", "tokens", json={"name": "pipeline", "role": "client"})
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert body["created_by"] == "ada" and secret.startswith("igt_") and len(secret) > 40
    assert Api(mirror, secret).ok("GET", "whoami") == {"name": "pipeline", "role": "client"}
    listed = admin.ok("GET", "tokens")
    assert {t["name"] for t in listed} == {"rita", "ada", "pipeline"}
    assert secret not in str(listed) and all("token" not in t for t in listed)
    assert admin.request("POST", "tokens", json={"name": "pipeline", "role": "client"}).status_code == 409
    assert admin.request("POST", "tokens", json={"name": "x", "role": "root"}).status_code == 422
    assert admin.request("POST", "tokens", json={"name": "has space", "role": "client"}).status_code == 422
    revoked = admin.ok("DELETE", "tokens/pipeline")
    assert revoked["revoked_at"] is not None
    assert Api(mirror, secret).get("whoami").status_code == 401
    assert admin.request("DELETE", "tokens/nobody").status_code == 404


def test_tokens_are_stored_hashed(mirror, admin) -> None:
    secret = admin.request("POST", "tokens", json={"name": "hashed", "role": "reviewer"}).json()["token"]
    from mirror.db.models import ApiToken

    with mirror.services.sessions() as session:
        stored = [(t.name, t.token_hash) for t in session.query(ApiToken)]
    assert all(secret not in h and len(h) == 64 for _, h in stored)


@pytest.mark.parametrize("path", ["projects/reqeusts", "queue"])
def test_responses_are_json_documented_in_openapi(mirror, index_server, tmp_path, reviewer, path) -> None:
    quarantine(mirror, index_server, tmp_path)
    response = reviewer.get(path)
    assert response.headers["Content-Type"] == "application/json"
    spec = get(mirror, "/api/openapi.json").json()
    assert "History" in spec["components"]["schemas"] and "Queue" in spec["components"]["schemas"]
