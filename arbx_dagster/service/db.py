"""Warehouse access for request handlers: pooled on PostgreSQL, short-lived on DuckDB.

DuckDB admits one writing process per file, and a pipeline run holds the file for its whole
duration. The service therefore never keeps the DuckDB file open: each request opens it
(read-only for reads), does its work and closes it, and when the file is locked by a run it
reports :class:`WarehouseBusy` (the API answers 503 with ``Retry-After``) instead of
failing. Inside one process DuckDB cannot mix read-only and read-write connections to a
file, so a small readers-writer gate orders them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from arbx_dagster.settings import Settings
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
    WarehouseError,
    redact,
)

log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """The warehouse is locked by another process (a pipeline run on DuckDB); retry later."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached at all."""


class _Gate:
    """Readers share, a writer is alone (DuckDB: one connection configuration at a time)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in ("lock", "different configuration", "conflicting"))


def _alive(conn: Warehouse) -> bool:
    try:
        conn.scalar("SELECT 1")
        return True
    except Exception:
        return False


def _discard(conn: Warehouse) -> None:
    """Close a connection that may already be dead (closing it then raises)."""
    try:
        conn.close()
    except Exception:
        log.debug("closing a dead warehouse connection", exc_info=True)


class Database:
    """``read()`` / ``write()`` hand out a :class:`Warehouse` for the length of a block."""

    def __init__(self, settings: Settings, pool_size: int = 8, busy_wait_seconds: float = 0.5):
        self.engine = settings.warehouse_engine
        self._url = settings.postgres_url
        self._path = Path(settings.duckdb_path)
        self._busy_wait = busy_wait_seconds
        self._gate = _Gate()
        self._pool: queue.LifoQueue[PostgresWarehouse] = queue.LifoQueue(maxsize=pool_size)
        self._slots = threading.BoundedSemaphore(pool_size)
        self.migrated = False

    def describe(self) -> str:
        if self.engine == "postgres":
            return f"postgres:{redact(self._url or '')}"
        return f"duckdb:{self._path}"

    # -- DuckDB ---------------------------------------------------------------------------
    def _open_duckdb(self, read_only: bool) -> DuckDBWarehouse:
        deadline = time.monotonic() + self._busy_wait
        while True:
            try:
                return DuckDBWarehouse(self._path, read_only=read_only)
            except Exception as exc:  # duckdb raises IOException / ConnectionException
                if not _is_lock_conflict(exc):
                    raise WarehouseUnavailable(f"cannot open {self._path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        "the DuckDB warehouse is locked by a running pipeline; retry shortly"
                    ) from exc
                time.sleep(0.05)

    # -- PostgreSQL -----------------------------------------------------------------------
    @contextmanager
    def _pooled(self) -> Iterator[Warehouse]:
        if not self._slots.acquire(timeout=10):
            raise WarehouseBusy("every warehouse connection is in use; retry shortly", 1)
        try:
            conn = self._checkout()
            try:
                yield conn
            except BaseException as exc:
                # A failed statement may have lost the connection: keep it only if it
                # still answers, and call a lost one what it is (503), not a bug (500).
                if _alive(conn):
                    self._pool.put_nowait(conn)
                    raise
                _discard(conn)
                if isinstance(exc, Exception) and not isinstance(exc, WarehouseBusy):
                    raise WarehouseUnavailable(f"connection lost: {exc}") from exc
                raise
            self._pool.put_nowait(conn)
        finally:
            self._slots.release()

    def _checkout(self) -> PostgresWarehouse:
        """A pooled connection that answers, else a fresh one.

        A database restart or a network blip kills every pooled connection at once, so
        each is pinged before use and a dead one dropped; when none is left a new one is
        opened, and if that fails too the database is down (503, not 500).
        """
        while True:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                break
            if _alive(conn):
                return conn
            _discard(conn)
        try:
            return PostgresWarehouse(self._url or "")
        except WarehouseError as exc:
            raise WarehouseUnavailable(str(exc)) from exc

    # -- public ---------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Warehouse]:
        if self.engine == "postgres":
            with self._pooled() as conn:
                yield conn
            return
        if not self._path.exists():
            self.ensure_migrated()
        with self._gate.reading():
            conn = self._open_duckdb(read_only=True)
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def write(self) -> Iterator[Warehouse]:
        if self.engine == "postgres":
            with self._pooled() as conn:
                yield conn
            return
        with self._gate.writing():
            conn = self._open_duckdb(read_only=False)
            try:
                yield conn
            finally:
                conn.close()

    def ensure_migrated(self) -> bool:
        """Apply pending migrations once; False when the warehouse is busy (tried again later)."""
        if self.migrated:
            return True
        try:
            with self.write() as conn:
                migrate(conn)
        except WarehouseBusy:
            log.info("warehouse busy: migrations will be applied on a later request")
            return False
        except WarehouseUnavailable as exc:
            log.error("warehouse unavailable, migrations postponed: %s", exc)
            return False
        self.migrated = True
        return True

    def close(self) -> None:
        while True:
            try:
                _discard(self._pool.get_nowait())
            except queue.Empty:
                return
