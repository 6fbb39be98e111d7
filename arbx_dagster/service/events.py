"""Live events: what the dashboard and API clients hear about, with ids they can resume from.

Events are appended to an ordered log that any worker can read:

* with Redis, a stream (``<prefix>events``, trimmed to about ``STREAM_MAXLEN`` entries):
  every API worker tails it, so any worker can serve any SSE client, and a reconnecting
  client sends the last id it saw (``Last-Event-ID``) to get what it missed;
* without Redis, a JSON-lines file under ``$ARBX_HOME/events/`` that the pipeline appends
  to and the (single) embedded API process tails — same ids, same resume.

Event ids look like Redis stream ids (``<unix ms>-<sequence>``) and increase strictly.

The pipeline calls :func:`publish_opportunity_events` after each opportunities run and may
call :func:`publish_run_event` on run status changes; neither ever raises (an event bus
outage must not fail a run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.settings import Settings
from arbx_dagster.storage.cache import Cache, CacheError, RedisCache

log = logging.getLogger(__name__)

STREAM_MAXLEN = 10_000
OPPORTUNITIES_VERSION_KEY = "opportunities:version"
# Fields whose change makes an open opportunity worth re-announcing.
TRACKED_FIELDS = (
    "buy_price",
    "buy_price_type",
    "ref_retailer",
    "ref_price",
    "margin_clp",
    "severity",
)
OPEN_STATUSES = ("new", "active")
_EVENT_ID = re.compile(r"^\d{1,16}-\d{1,10}$")


@dataclass(frozen=True)
class Event:
    id: str
    type: str  # opportunity.new / opportunity.changed / opportunity.expired / ...
    data: dict[str, Any]


def parse_event_id(text: str | None) -> tuple[int, int] | None:
    """``'1700000000000-3'`` -> ``(1700000000000, 3)``; None for anything else."""
    if not text or not _EVENT_ID.match(text.strip()):
        return None
    ms, seq = text.strip().split("-")
    return int(ms), int(seq)


def jsonable(value: Any) -> Any:
    """Datetimes and dates as ISO 8601 text, recursively (what JSON clients expect)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# --- the log ---------------------------------------------------------------------------


class EventLog(ABC):
    @abstractmethod
    def append_many(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        """Append ``(type, data)`` pairs in order; return their ids."""

    def append(self, type_: str, data: dict[str, Any]) -> str:
        return self.append_many([(type_, data)])[0]

    @abstractmethod
    def after(self, last_id: str, limit: int = 1000) -> tuple[list[Event], bool]:
        """Events strictly after ``last_id`` (oldest first) and whether some were already
        trimmed away (the client missed events it can no longer get: refetch a snapshot)."""

    @abstractmethod
    def latest_id(self) -> str | None: ...

    @abstractmethod
    def wait(self, last_id: str | None, timeout_seconds: float) -> list[Event]:
        """Block up to ``timeout_seconds`` for events after ``last_id`` (None: the latest)."""


class RedisEventLog(EventLog):
    def __init__(self, cache: RedisCache, name: str = "events") -> None:
        self.client = cache.client
        self.key = cache.key(name)

    def append_many(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        pipe = self.client.pipeline(transaction=False)
        for type_, data in events:
            fields = {"type": type_, "data": json.dumps(jsonable(data), separators=(",", ":"))}
            pipe.xadd(self.key, fields, maxlen=STREAM_MAXLEN, approximate=True)
        return [str(i) for i in pipe.execute()]

    @staticmethod
    def _events(entries: Iterable[tuple[str, dict[str, str]]]) -> list[Event]:
        return [Event(str(i), f["type"], json.loads(f["data"])) for i, f in entries]

    def after(self, last_id: str, limit: int = 1000) -> tuple[list[Event], bool]:
        entries = self.client.xrange(self.key, min=f"({last_id}", max="+", count=limit)
        gap = False
        with contextlib.suppress(Exception):  # XINFO fails on a stream never written
            info = self.client.xinfo_stream(self.key)
            deleted = parse_event_id(str(info.get("max-deleted-entry-id") or "0-0"))
            gap = deleted is not None and deleted > (parse_event_id(last_id) or (0, 0))
        return self._events(entries), gap

    def latest_id(self) -> str | None:
        entries = self.client.xrevrange(self.key, count=1)
        return str(entries[0][0]) if entries else None

    def wait(self, last_id: str | None, timeout_seconds: float) -> list[Event]:
        start = last_id or self.latest_id() or "0-0"
        reply = self.client.xread({self.key: start}, block=int(timeout_seconds * 1000), count=500)
        return self._events(reply[0][1]) if reply else []


class FileEventLog(EventLog):
    """The embedded bus: JSON lines appended under an exclusive ``flock``, kept small by
    rewriting the newest half when it grows past ``max_bytes``."""

    def __init__(self, folder: Path, max_bytes: int = 4_000_000) -> None:
        self.folder = folder
        self.path = folder / "events.jsonl"
        self._state = folder / "events.state.json"
        self._lockfile = folder / "events.lock"
        self.max_bytes = max_bytes
        self._seen: tuple[int, int] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Any:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self._lockfile, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> dict[str, str]:
        try:
            return json.loads(self._state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def append_many(self, events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
        with self._locked():
            state = self._read_state()
            last = parse_event_id(state.get("last")) or (0, 0)
            ids, lines = [], []
            for type_, data in events:
                ms = int(time.time() * 1000)
                last = (ms, 0) if ms > last[0] else (last[0], last[1] + 1)
                event_id = f"{last[0]}-{last[1]}"
                ids.append(event_id)
                record = {"id": event_id, "type": type_, "data": jsonable(data)}
                lines.append(json.dumps(record, separators=(",", ":")) + "\n")
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("".join(lines))
                out.flush()
                os.fsync(out.fileno())
            state["last"] = ids[-1] if ids else state.get("last", "0-0")
            if self.path.stat().st_size > self.max_bytes:
                state["trimmed_through"] = self._trim()
            _atomic_write(self._state, json.dumps(state))
        return ids

    def _trim(self) -> str:
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = lines[len(lines) // 2 :]
        dropped = json.loads(lines[len(lines) // 2 - 1])["id"] if len(lines) > 1 else "0-0"
        _atomic_write(self.path, "".join(keep))
        return dropped

    def _all(self) -> list[Event]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written right now; it is read on the next look
            events.append(Event(record["id"], record["type"], record["data"]))
        return events

    def after(self, last_id: str, limit: int = 1000) -> tuple[list[Event], bool]:
        bound = parse_event_id(last_id) or (0, 0)
        events = [e for e in self._all() if (parse_event_id(e.id) or (0, 0)) > bound]
        trimmed = parse_event_id(self._read_state().get("trimmed_through")) or (0, 0)
        return events[:limit], trimmed > bound

    def latest_id(self) -> str | None:
        return self._read_state().get("last")

    def wait(self, last_id: str | None, timeout_seconds: float) -> list[Event]:
        start = last_id or self.latest_id() or "0-0"
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                stat = self.path.stat()
                seen = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:
                seen = (0, 0)
            if seen != self._seen:
                self._seen = seen
                events, _ = self.after(start, limit=500)
                if events:
                    return events
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.1)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def event_log_for(cache: Cache, home: Path | None = None) -> EventLog:
    """The Redis stream when the cache is Redis, else the file log under ``ARBX_HOME``."""
    if isinstance(cache, RedisCache):
        return RedisEventLog(cache)
    return FileEventLog((home or Settings.from_env().home) / "events")


# --- opportunity changes ------------------------------------------------------------------


def _open(status: str = "status") -> pl.Expr:
    return pl.col(status).is_in(list(OPEN_STATUSES)).fill_null(False)


def opportunity_events(
    previous_state: pl.DataFrame, new_state: pl.DataFrame
) -> list[tuple[str, dict[str, Any]]]:
    """What changed between two states of the ``opportunities`` table, as events.

    * ``opportunity.new``: open now, and unknown or expired before (``reactivated`` says
      which);
    * ``opportunity.changed``: open before and now, with a different price, reference or
      margin (``changes`` lists ``field: [before, after]``);
    * ``opportunity.expired``: open before, expired now.
    """
    if new_state.is_empty():
        return []
    columns = ["opportunity_id", "status", *TRACKED_FIELDS]
    before = (
        previous_state.select([c for c in columns if c in previous_state.columns])
        if not previous_state.is_empty()
        else pl.DataFrame(schema={"opportunity_id": pl.String, "status": pl.String})
    )
    before = before.rename({c: f"{c}__before" for c in before.columns if c != "opportunity_id"})
    joined = new_state.join(before, on="opportunity_id", how="left")
    open_now = _open()
    open_before = _open("status__before")
    events: list[tuple[str, dict[str, Any]]] = []
    for row in joined.filter(open_now | open_before).iter_rows(named=True):
        was_open = row["status__before"] in OPEN_STATUSES
        is_open = row["status"] in OPEN_STATUSES
        data = {k: v for k, v in row.items() if "__before" not in k}
        if is_open and not was_open:
            data["reactivated"] = row["status__before"] == "expired"
            events.append(("opportunity.new", data))
        elif was_open and not is_open:
            events.append(("opportunity.expired", data))
        else:
            changes = {
                f: [row.get(f"{f}__before"), row.get(f)]
                for f in TRACKED_FIELDS
                if f"{f}__before" in row and row.get(f"{f}__before") != row.get(f)
            }
            if changes:
                events.append(("opportunity.changed", {**data, "changes": changes}))
    return events


def publish_opportunity_events(
    cache: Cache,
    previous_state: pl.DataFrame,
    new_state: pl.DataFrame,
    *,
    run_id: str | None = None,
    max_events: int = 500,
    log_: EventLog | None = None,
) -> int:
    """Announce what an opportunities run changed and invalidate cached API pages.

    ``previous_state`` / ``new_state`` are the ``opportunities`` rows before and after the
    run (``refresh_opportunities``' ``previous`` and ``state``). More than ``max_events``
    changes (a first run, a threshold change) are announced as one
    ``opportunities.refreshed`` event with counts, telling clients to refetch the list.
    Returns the number of events published; never raises.
    """
    try:
        events = opportunity_events(previous_state, new_state)
        if not events:
            return 0
        if len(events) > max_events:
            counts: dict[str, int] = {}
            for type_, _ in events:
                counts[type_] = counts.get(type_, 0) + 1
            events = [("opportunities.refreshed", {"counts": counts, "run_id": run_id})]
        elif run_id is not None:
            events = [(t, {**d, "run_id": run_id}) for t, d in events]
        (log_ or event_log_for(cache)).append_many(events)
        invalidate_opportunities(cache)
        return len(events)
    except Exception as exc:  # never fail the run over an announcement
        log.warning("could not publish opportunity events: %s", exc)
        return 0


def publish_run_event(
    cache: Cache,
    run_id: str,
    job_name: str,
    status: str,
    *,
    log_: EventLog | None = None,
    **details: Any,
) -> str | None:
    """Announce a run's status (QUEUED, STARTED, SUCCESS, FAILURE, CANCELED…); never raises.

    Returns the event id, or None when the event could not be published.
    """
    data = {"run_id": run_id, "job_name": job_name, "status": status, **details}
    try:
        return (log_ or event_log_for(cache)).append("run.status", data)
    except Exception as exc:
        log.warning("could not publish run event for %s: %s", run_id, exc)
        return None


def invalidate_opportunities(cache: Cache) -> None:
    """Move every cached ``/api/opportunities`` page out of reach (their keys carry the
    version) — cheaper and safer than scanning for keys."""
    with contextlib.suppress(CacheError):
        cache.incr(OPPORTUNITIES_VERSION_KEY)
