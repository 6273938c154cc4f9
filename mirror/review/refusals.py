"""Who was refused a blocked project: counted per (project, client), written in batches.

Why this shape.  A refusal is the cheapest answer the mirror gives, and a
refused name is exactly what a misconfigured CI farm (or an attacker) asks
for in a loop, so recording one must cost less than answering it:

* ``record`` runs on the event loop, in the error handler: it only updates
  an in-memory table keyed by (project, client) under a lock.  No database,
  no thread hop, no parsing.  The table holds at most ``MAX_PENDING`` keys;
  a request for a key already there only bumps its count, and a new key
  past the cap is dropped and counted (logged at the next flush).  Memory
  is bounded whatever the traffic.
* A background thread flushes every ``FLUSH_SECONDS`` (sooner once
  ``FLUSH_AT`` keys wait): one upsert per key, in one transaction, however
  many requests the key saw.  A million refused requests from one client
  are one row update.
* The database keeps one row per (project, client) with a count and the
  last time and request seen, so its size follows the audience, not the
  traffic.  Past ``MAX_CLIENTS_PER_PROJECT`` distinct clients a project's
  new clients share one overflow row (the page says "N or more"), so many
  addresses (an IPv6 range) cannot grow the table without bound either.
* Rows not seen for ``[review] refusals_retention_days`` are pruned by the
  flush thread, at most once per ``PRUNE_SECONDS``.

Counts lag by at most one flush interval; the review pages flush this
process's buffer before they read, so a single-process mirror is exact.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mirror.db.models import RefusedClient
from mirror.review.useragent import parse_user_agent

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
FLUSH_AT = 1_000
FLUSH_SECONDS = 2.0
PRUNE_SECONDS = 600.0
MAX_CLIENTS_PER_PROJECT = 1_000
# The client of the overflow row: clients past the cap (not an address, so it never collides with one).
OVERFLOW = "*"
MAX_USER_AGENT = 500


@dataclass
class _Pending:
    count: int
    first_seen: datetime
    last_seen: datetime
    version: str | None
    filename: str | None
    user_agent: str


class RefusalRecorder:
    """Counts refused requests in memory and writes them to ``refused_clients`` in batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        retention: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
        max_pending: int = MAX_PENDING,
        max_clients: int = MAX_CLIENTS_PER_PROJECT,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.retention = retention
        self.monotonic = monotonic
        self.max_pending = max_pending
        self.max_clients = max_clients
        self.dropped = 0
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The first prune comes PRUNE_SECONDS after start: a starting server touches the database for nothing else.
        self._pruned_at = monotonic()

    # -- the request path -----------------------------------------------------------

    def record(
        self,
        *,
        project: str,
        client: str | None,
        user_agent: str = "",
        version: str | None = None,
        filename: str | None = None,
    ) -> None:
        """Count one refused request; never blocks on anything but a short in-memory lock."""
        if not client or client == OVERFLOW:
            return
        now = self.clock()
        key = (project, client[:64])
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                if len(self._pending) >= self.max_pending:
                    self.dropped += 1
                    return
                self._pending[key] = _Pending(1, now, now, version, filename, user_agent[:MAX_USER_AGENT])
                if len(self._pending) >= FLUSH_AT:
                    self._wake.set()
                return
            entry.count += 1
            entry.last_seen = max(entry.last_seen, now)
            entry.version, entry.filename, entry.user_agent = version, filename, user_agent[:MAX_USER_AGENT]

    # -- the background writer ------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="refusal-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write what is still waiting."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._flush_logged()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - a failed write must not stop the thread; the batch is lost, said once
            log.exception("could not record refused requests")

    def flush(self) -> int:
        """Write the waiting counts (and prune when due); returns how many keys were written."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
                dropped, self.dropped = self.dropped, 0
            if dropped:
                log.warning("refused-request buffer full: %d new clients not recorded", dropped)
            due = self.monotonic() - self._pruned_at >= PRUNE_SECONDS
            if not batch and not due:
                return 0
            with self.sessions.begin() as session:
                if batch:
                    _write(session, batch, self.max_clients)
                if due:
                    prune(session, self.clock() - self.retention)
            if due:
                self._pruned_at = self.monotonic()
            return len(batch)


def flush_waiting(app_state: Any) -> None:
    """Write this process's waiting counts (``app.state.refusals``): a page about to read them is current."""
    recorder = getattr(app_state, "refusals", None)
    if recorder is not None:
        recorder.flush()


def prune(session: Session, before: datetime) -> int:
    """Forget clients last refused before ``before``; returns how many rows went."""
    result = session.execute(delete(RefusedClient).where(RefusedClient.last_seen < before))
    return int(getattr(result, "rowcount", 0) or 0)


def _write(session: Session, batch: dict[tuple[str, str], _Pending], max_clients: int) -> None:
    rows = [_row(project, client, entry) for (project, client), entry in batch.items()]
    rows = _cap(session, rows, max_clients)
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(RefusedClient)
    table = RefusedClient.__table__.c
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[table.project, table.client],
        set_={
            "count": table.count + new.count,
            "last_seen": case((new.last_seen > table.last_seen, new.last_seen), else_=table.last_seen),
            "first_seen": case((new.first_seen < table.first_seen, new.first_seen), else_=table.first_seen),
            **{name: new[name] for name in ("version", "filename", "installer", "python", "system", "ci")},
        },
    )
    session.execute(statement, rows)


def _row(project: str, client: str, entry: _Pending) -> dict[str, Any]:
    info = parse_user_agent(entry.user_agent)
    return {
        "project": project,
        "client": client,
        "count": entry.count,
        "first_seen": entry.first_seen,
        "last_seen": entry.last_seen,
        "version": entry.version[:255] if entry.version else None,
        "filename": entry.filename[:512] if entry.filename else None,
        "installer": info.installer if info else None,
        "python": info.python if info else None,
        "system": info.system if info else None,
        "ci": info.ci if info else None,
    }


def _cap(session: Session, rows: list[dict[str, Any]], max_clients: int) -> list[dict[str, Any]]:
    """Fold the new clients of a project past ``max_clients`` into its overflow row.

    One grouped count for the batch's projects; only a project near its cap
    costs a second query (which of its batch clients it already has).
    """
    by_project: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_project.setdefault(row["project"], []).append(row)
    stored = dict(
        session.execute(
            select(RefusedClient.project, func.count())
            .where(RefusedClient.project.in_(list(by_project)), RefusedClient.client != OVERFLOW)
            .group_by(RefusedClient.project)
        ).all()
    )
    kept: list[dict[str, Any]] = []
    for project, project_rows in by_project.items():
        have = stored.get(project, 0)
        if have + len(project_rows) <= max_clients:
            kept.extend(project_rows)
            continue
        known = set(
            session.scalars(
                select(RefusedClient.client).where(
                    RefusedClient.project == project,
                    RefusedClient.client.in_([r["client"] for r in project_rows]),
                )
            )
        )
        room = max(0, max_clients - have)
        overflow: dict[str, Any] | None = None
        for row in project_rows:
            if row["client"] in known or row["client"] == OVERFLOW:
                kept.append(row)
            elif room > 0:
                room -= 1
                kept.append(row)
            elif overflow is None:
                overflow = {**row, "client": OVERFLOW}
            else:
                overflow["count"] += row["count"]
                overflow["first_seen"] = min(overflow["first_seen"], row["first_seen"])
                if row["last_seen"] >= overflow["last_seen"]:
                    overflow.update({k: v for k, v in row.items() if k not in ("client", "count", "first_seen")})
        if overflow is not None:
            kept.append(overflow)
    return kept
