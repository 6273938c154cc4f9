"""A lock per project shared by every process using one database, that never waits on the request pool.

Two workers (or replicas) seeing a new project at once would both ask
upstream for its facts; the lock makes the second wait for the first's
decision.  The work done under the lock needs database connections of its
own, so the lock must not hold one from the same pool: with PostgreSQL
the old lock held a pooled connection (a transaction-scoped advisory lock)
per screening, and enough concurrent first screenings took every pooled
connection as locks and then waited for the pool for ever (until its 30 s
timeout, as 500s).

PostgreSQL: session-level advisory locks, all of a process's held on ONE
connection of their own, outside the request pool, opened when the first
lock is taken and closed when the last is released (no idle connection
stays behind).  Locks are taken with ``pg_try_advisory_lock`` and a short
poll, so no thread ever blocks that shared connection; a thread that
cannot get a lock within ``wait`` seconds goes ahead without it (the work
is then done twice, never wrongly: the project's primary key still admits
one first decision) and says so in the log.

SQLite (one machine by nature): an flock beside the database file, since
holding SQLite's write lock while this thread writes through another
connection would deadlock.  Other single-process databases need no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Longest a screening waits for another's lock on the same project before going ahead.
LOCK_WAIT_SECONDS = 60.0
# How often a waiter asks PostgreSQL again.
POLL_SECONDS = 0.05


@contextmanager
def cross_process_lock(sessions: sessionmaker[Session], project: str, *, wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold a lock on ``project`` shared by every process using this database (see the module docstring)."""
    engine: Engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        with advisory_locks(engine).held(f"screen:{project}", wait):
            yield
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield  # one process only: the per-process lock is enough
        return
    with _flock(Path(database), project):
        yield


@contextmanager
def _flock(database: Path, project: str) -> Iterator[None]:
    locks = database.parent / (database.name + ".locks")
    locks.mkdir(exist_ok=True)
    name = hashlib.sha256(project.encode()).hexdigest()[:32]
    fd = os.open(locks / f"screen-{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class AdvisoryLocks:
    """A process's PostgreSQL advisory locks on one dedicated connection.

    A session-level advisory lock is re-entrant for its session, so two
    threads of this process asking for the same key would both get it on
    the shared connection: ``_busy`` makes the second wait here first.
    """

    def __init__(self, connect: Callable[[], Connection], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._busy: set[str] = set()  # keys a thread of this process holds or is acquiring
        self._db_mutex = threading.Lock()  # one statement at a time on the shared connection
        self._connection: Connection | None = None
        self._users = 0  # threads holding or waiting for a lock in PostgreSQL

    @contextmanager
    def held(self, key: str, wait: float) -> Iterator[None]:
        deadline = self._monotonic() + wait
        if not self._claim_locally(key, deadline):
            log.warning("lock %r busy in this process for %.0f s: going ahead without it", key, wait)
            yield
            return
        try:
            locked = self._lock_in_database(key, deadline)
            if not locked:
                log.warning("lock %r held by another process for %.0f s: going ahead without it", key, wait)
            try:
                yield
            finally:
                if locked:
                    self._unlock_in_database(key)
        finally:
            with self._cond:
                self._busy.discard(key)
                self._cond.notify_all()

    def _claim_locally(self, key: str, deadline: float) -> bool:
        with self._cond:
            while key in self._busy:
                remaining = deadline - self._monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 1.0))
            self._busy.add(key)
            return True

    def _lock_in_database(self, key: str, deadline: float) -> bool:
        with self._db_mutex:
            self._users += 1
        locked = False
        try:
            while True:
                with self._db_mutex:
                    locked = self._try_lock(key)
                if locked or self._monotonic() >= deadline:
                    return locked
                time.sleep(POLL_SECONDS)
        finally:
            if not locked:
                self._leave()

    def _try_lock(self, key: str) -> bool:
        if self._connection is None:
            self._connection = self._connect()
        try:
            return bool(self._connection.execute(select(func.pg_try_advisory_lock(func.hashtext(key)))).scalar())
        except DBAPIError:
            # A broken connection took its locks with it; the next statement opens another.
            self._disconnect()
            raise

    def _unlock_in_database(self, key: str) -> None:
        with self._db_mutex:
            try:
                if self._connection is not None:
                    self._connection.execute(select(func.pg_advisory_unlock(func.hashtext(key))))
            except DBAPIError as exc:
                log.warning("could not release lock %r (%s): closing its connection releases it", key, type(exc).__name__)
                self._disconnect()
        self._leave()

    def _leave(self) -> None:
        """One thread fewer holds or waits; the last one closes the connection."""
        with self._db_mutex:
            self._users -= 1
            if self._users == 0:
                self._disconnect()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except DBAPIError:
                pass


_registry: "weakref.WeakKeyDictionary[Engine, AdvisoryLocks]" = weakref.WeakKeyDictionary()
_registry_guard = threading.Lock()


def advisory_locks(engine: Engine) -> AdvisoryLocks:
    """The lock holder for ``engine``'s database: one per engine, its connection outside ``engine``'s pool."""
    with _registry_guard:
        locks = _registry.get(engine)
        if locks is None:
            # No transaction: session-level locks outlive statements, and nothing sits "idle in transaction".
            lock_engine = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            locks = _registry[engine] = AdvisoryLocks(lock_engine.connect)
        return locks
