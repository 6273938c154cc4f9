"""Run a job once per interval across every replica, by holding a database lease.

Replicas share nothing but the database, so the database decides who runs:
the lease row is taken with one conditional UPDATE (or the first INSERT),
which both SQLite and PostgreSQL apply atomically.  The winner keeps the
lease for the whole interval; the others find it unexpired and skip.  A
replica that dies mid-run costs one interval, never a double run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mirror.clock import Clock
from mirror.db.models import Lease

log = logging.getLogger("indexguard.scheduler")


def holder_id() -> str:
    """Who holds a lease: host and process, plus a nonce so two servers in one process differ."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(
    sessions: sessionmaker[Session],
    name: str,
    holder: str,
    now: datetime,
    duration: timedelta,
    *,
    first_due: datetime | None = None,
) -> bool:
    """Take the lease ``name`` until ``now + duration`` if it has expired; True when taken.

    A lease seen for the first time is created expiring at ``first_due``
    (default ``now + duration``) and not taken, so a fresh install does not
    start its first long job the moment it boots.
    """
    with sessions.begin() as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.expires_at <= now)
            .values(holder=holder, acquired_at=now, expires_at=now + duration)
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken == 1:
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with sessions.begin() as session:
            session.add(Lease(name=name, holder="", acquired_at=now, expires_at=first_due or now + duration))
    except IntegrityError:
        pass  # another replica created it first
    return False


class IntervalScheduler:
    """A daemon thread that tries the lease every ``poll_seconds`` and runs ``job`` when it wins."""

    def __init__(
        self,
        *,
        name: str,
        sessions: sessionmaker[Session],
        clock: Clock,
        interval: timedelta,
        job: Callable[[], Any],
        poll_seconds: float = 60.0,
        holder: str | None = None,
    ) -> None:
        self.name = name
        self.sessions = sessions
        self.clock = clock
        self.interval = interval
        self.job = job
        self.poll_seconds = poll_seconds
        self.holder = holder or holder_id()
        self.runs = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()

    def tick(self) -> bool:
        """Run the job now if this replica wins the lease; True when it ran."""
        with self._busy:
            self.polls += 1
            if not acquire_lease(self.sessions, self.name, self.holder, self.clock(), self.interval):
                return False
            log.info("%s: lease taken by %s; running", self.name, self.holder)
            self.runs += 1
            self.job()
            return True

    def start(self) -> None:
        if self._thread is not None or self.interval <= timedelta(0):
            return
        self._thread = threading.Thread(target=self._loop, name=f"scheduler-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a failed run must not kill the schedule
                log.exception("%s: scheduled run failed", self.name)
            if self._stop.wait(self.poll_seconds):
                return
