"""Live events: what the dashboard and API clients hear about, with ids they can resume from.

Events are appended to an ordered log that any worker can read:

* with Redis, a stream (``<prefix>events``, trimmed to about ``STREAM_MAXLEN`` entries):
  every API worker tails it, so any worker can serve any SSE client, and a reconnecting
  client sends the last id it saw (``Last-Event-ID``) to get what it missed;
* without Redis, a JSON-lines file under ``$ARBX_HOME/events/`` that the pipeline appends
  to and the (single) embedded API process tails — same ids, same resume.

Event ids look like Redis stream ids (``<unix ms>-<sequence>``) and increase strictly.

What goes on the log is decided by the pipeline (``pipeline.announcements``); the API
serves it to SSE clients.
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

from arbx_dagster.storage.cache import Cache, RedisCache

log = logging.getLogger(__name__)

STREAM_MAXLEN = 10_000
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


def event_log_for(cache: Cache, home: Path) -> EventLog:
    """The Redis stream when the cache is Redis, else the file log under ``home``."""
    if isinstance(cache, RedisCache):
        return RedisEventLog(cache)
    return FileEventLog(home / "events")
