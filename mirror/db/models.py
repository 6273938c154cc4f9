"""Database models (SQLAlchemy 2.0).

Every schema change comes with an alembic migration; ``tests/test_migrations``
fails when the two drift.  Times are stored as UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Page(Base):
    """A project's index page as last fetched, and as the mirror serves it.

    ``upstream_gz`` is the unfiltered upstream page (as upstream sent it,
    gzipped), so the served bodies can be rebuilt when a decision changes
    without asking upstream again.  ``json_gz``/``html_gz`` are the served bodies,
    pre-rendered and pre-compressed so that a warm request renders nothing;
    ``html_gz`` stays empty until an HTML client first asks for the page.
    """

    __tablename__ = "pages"

    project: Mapped[str] = mapped_column(String(255), primary_key=True)
    upstream_etag: Mapped[str | None] = mapped_column(String(255))
    upstream_serial: Mapped[int | None] = mapped_column(BigInteger)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    upstream_gz: Mapped[bytes] = mapped_column(LargeBinary)
    # The Content-Type and URL of upstream_gz as upstream sent it; None: the mirror's own JSON
    # form (pages stored before migration 0007).
    upstream_type: Mapped[str | None] = mapped_column(String(255))
    upstream_base: Mapped[str | None] = mapped_column(Text)
    json_gz: Mapped[bytes] = mapped_column(LargeBinary)
    html_gz: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(64))
    # The [server] public_url the file links were written under (None: relative links).
    public_url: Mapped[str | None] = mapped_column(Text)


class PinnedFile(Base):
    """The first (project, filename, sha256) the mirror saw, kept for ever.

    A later upstream listing of the same filename with another hash means a
    published file changed; ``blocked_reason`` then stops it being served.
    """

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("project", "filename"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255), index=True)
    filename: Mapped[str] = mapped_column(String(512))
    version: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    upstream_url: Mapped[str] = mapped_column(Text)
    # Indexed: a blob's first owner is looked up by any of the three hashes on every file request.
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # PEP 740: where upstream publishes the file's provenance, and the stored copy once fetched.
    provenance_url: Mapped[str | None] = mapped_column(Text)
    provenance_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    requires_python: Mapped[str | None] = mapped_column(String(255))
    upload_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    # When upstream stopped listing the file (what the index does to malware); None while listed.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Event(Base):
    """Something an operator must be able to find later (hash mismatches, ...)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    severity: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(255), index=True)
    filename: Mapped[str | None] = mapped_column(String(512))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class Project(Base):
    """A project the mirror has screened, with its current state.

    ``state`` is what the policy (or a reviewer) decided: allowed,
    quarantined (waiting for review) or denied.  ``source`` says where its
    files come from: the public upstream or an internal source.
    """

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default="public")
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(255), default="policy")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    # A break-glass allow lets a blocked project through until this time.
    allow_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Release(Base):
    """Per-release screening: a held release is hidden and its files refused."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255), ForeignKey("projects.name"), index=True)
    version: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # allowed | held | denied
    reason: Mapped[str] = mapped_column(Text, default="")
    upload_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A hold lifts by itself at this time (cooldown); None means it waits for a reviewer.
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str] = mapped_column(String(255), default="policy")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FindingRow(Base):
    """A detector finding, kept with its evidence so a reviewer can ask "why"."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str | None] = mapped_column(String(255))
    detector: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(String(255))
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Decision(Base):
    """Every decision, by the policy or a person, with what triggered it."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_project_at", "project", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The request that caused it: time, client address, user agent, referrer project.
    request: Mapped[dict] = mapped_column(JSON, default=dict)
    # Set when a later decision undoes this one.
    undone_by: Mapped[int | None] = mapped_column(Integer)


class Snapshot(Base):
    """Upstream ownership facts at an audit, for maintainer-change detection."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_project_taken_at", "project", "taken_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    facts: Mapped[dict] = mapped_column(JSON, default=dict)


class ApiToken(Base):
    """A credential for the admin API, the admin pages or package clients.

    Only the sha256 of the secret is kept, so a copy of the database hands
    out no working credential.  Names are unique for ever (a revoked name is
    not reused) because decisions record the token name as their actor.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # client | reviewer | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(255))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AdminSession(Base):
    """A signed-in browser on the admin pages.

    The cookie carries a random session id, never the API token; only its
    sha256 is stored.  ``csrf_token`` is the synchronizer token every form
    of this session must send back.
    """

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(Integer, ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditRun(Base):
    """One re-audit of everything cached, with its counts, so "what changed when" has an answer."""

    __tablename__ = "audit_runs"
    __table_args__ = (Index("ix_audit_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(32))  # scheduled | command | api
    holder: Mapped[str] = mapped_column(String(255), default="")
    projects: Mapped[int] = mapped_column(Integer, default=0)
    new_findings: Mapped[int] = mapped_column(Integer, default=0)
    resolved_findings: Mapped[int] = mapped_column(Integer, default=0)
    new_critical: Mapped[int] = mapped_column(Integer, default=0)
    new_vulnerabilities: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    # A bounded sample of error messages and the actions the run took.
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditChange(Base):
    """A finding an audit run added or resolved (the run's diff, one row per finding)."""

    __tablename__ = "audit_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("audit_runs.id", ondelete="CASCADE"), index=True)
    finding_id: Mapped[int] = mapped_column(Integer, ForeignKey("findings.id", ondelete="CASCADE"), index=True)
    change: Mapped[str] = mapped_column(String(16))  # added | resolved


class Vulnerability(Base):
    """A known vulnerability of one cached release, as a vulnerability service reported it."""

    __tablename__ = "vulnerabilities"
    __table_args__ = (UniqueConstraint("project", "version", "vuln_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(255))
    vuln_id: Mapped[str] = mapped_column(String(255))
    aliases: Mapped[list] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    fix_versions: Mapped[list] = mapped_column(JSON, default=list)
    severity: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))  # osv | pypi | offline
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when the services stop reporting it (advisory withdrawn or corrected).
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Lease(Base):
    """A named job lease shared by replicas: whoever holds an unexpired lease runs the job."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArtifactScan(Base):
    """What content screening found in one distribution file, under one rule set.

    ``report`` is the scanner's JSON (findings, inventory, what was scanned);
    the inventory of a release's scans is the baseline its successor is
    compared with.  A new rule set means a new row, so the re-audit can
    tell which files were not yet looked at with today's rules.
    """

    __tablename__ = "artifact_scans"
    __table_args__ = (
        UniqueConstraint("sha256", "ruleset"),
        Index("ix_artifact_scans_project_version", "project", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    ruleset: Mapped[str] = mapped_column(String(64))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    # The worst finding's severity (None: no finding) and the action the policy took.
    worst: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16), default="allow")
    report: Mapped[dict] = mapped_column(JSON, default=dict)


class RefusedClient(Base):
    """A client the mirror refused a project to: one row per (project, client address), counted.

    "Who is affected" by a blocked project is the number of these rows, not
    just the client whose request triggered the first screening.  One row
    per pair (not per request) keeps the table the size of the audience, not
    of the traffic; ``mirror.review.refusals`` writes them in batches and
    prunes rows not seen for ``[review] refusals_retention_days``.  The
    user-agent facts are the parsed, length-bounded ones of the last request.
    """

    __tablename__ = "refused_clients"
    __table_args__ = (
        UniqueConstraint("project", "client"),
        Index("ix_refused_clients_last_seen", "last_seen"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(255))
    # An IP address, or the overflow marker for clients past the per-project cap.
    client: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the last refused request asked for: a release or a file (None: the index page).
    version: Mapped[str | None] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(512))
    installer: Mapped[str | None] = mapped_column(String(80))
    python: Mapped[str | None] = mapped_column(String(80))
    system: Mapped[str | None] = mapped_column(String(80))
    ci: Mapped[bool | None] = mapped_column(Boolean)
