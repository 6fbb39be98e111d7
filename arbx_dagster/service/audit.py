"""Audit trail of the API's mutating calls (who, what, when, outcome) in ``audit_log``.

A pipeline run holding the embedded DuckDB file must not lose an audit record, nor block
the call it describes: records that cannot be written at once wait in memory, stamped
with the moment they happened, and are written on the next opportunity (``flush``, run
periodically by the app).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from arbx_dagster.service.db import Database, WarehouseBusy

log = logging.getLogger(__name__)


@dataclass
class AuditRecord:
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _outcome(exc: Exception) -> str:
    """``rejected <status>: why`` for a refusal (4xx), ``failed: …`` for anything else."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 500:
        detail = exc.detail if isinstance(exc, HTTPException) else exc
        return f"rejected {status}: {detail}"[:500]
    return f"failed: {type(exc).__name__}: {exc}"[:500]


class Auditor:
    def __init__(self, db: Database, max_pending: int = 10_000) -> None:
        self.db = db
        self._pending: deque[AuditRecord] = deque(maxlen=max_pending)
        self._mutex = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, entry: AuditRecord) -> None:
        with self._mutex:
            self._pending.append(entry)
        self.flush()

    def record_rejection(
        self, actor: str, action: str, details: dict[str, Any], reason: str
    ) -> None:
        self.record(AuditRecord(actor, action, None, details, outcome=f"rejected: {reason}"))

    def flush(self) -> int:
        """Write waiting records; returns how many were written (0 if still blocked)."""
        with self._mutex:
            batch = list(self._pending)
            if not batch:
                return 0
            try:
                with self.db.write() as warehouse, warehouse.transaction():
                    for r in batch:
                        warehouse.execute(
                            "INSERT INTO audit_log (occurred_at, actor, action, target, "
                            "details, outcome) VALUES ($1, $2, $3, $4, $5, $6)",
                            [
                                r.occurred_at,
                                r.actor,
                                r.action,
                                r.target,
                                json.dumps(r.details, default=str),
                                r.outcome,
                            ],
                        )
            except WarehouseBusy:
                log.info("%d audit record(s) waiting for the warehouse", len(batch))
                return 0
            except Exception as exc:
                log.warning("%d audit record(s) waiting: %s", len(batch), exc)
                return 0
            for _ in batch:
                self._pending.popleft()
            return len(batch)

    @contextmanager
    def action(
        self, actor: str, action: str, target: str | None, **details: Any
    ) -> Iterator[AuditRecord]:
        """Audit the enclosed work: the outcome is ``ok``, or the error the caller got."""
        entry = AuditRecord(actor, action, target, dict(details))
        try:
            yield entry
        except Exception as exc:
            entry.outcome = _outcome(exc)
            raise
        finally:
            self.record(entry)
