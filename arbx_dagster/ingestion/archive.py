"""The raw-payload archive: what historical backfills replay.

Every payload (API response, HTML page, dropped file) is stored once, content-addressed by
the sha256 of its bytes and compressed (zstd or gzip), under a local folder or any fsspec
URL (``s3://bucket/arbx/archive``). Each fetch run writes a manifest per source and day
listing its payloads in order, with the source config it was parsed with, so a day can be
re-parsed later without the network — with today's (fixed) parser or the original one.

Layout under the root::

    blobs/ab/cd/abcd….zst                              payload bytes, compressed
    manifests/<source>/<YYYY-MM-DD>/<run_id>.jsonl     header line, then one line per payload
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import fsspec

from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.ingestion.sources import ArchiveConfig

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEFAULT_ROOT = ".arbx/archive"
_EXTENSIONS = {"zstd": "zst", "gzip": "gz"}
_FLUSH_EVERY = 50


class ArchiveError(RuntimeError):
    """A payload is missing or corrupt in the archive."""


@dataclass(frozen=True)
class PayloadRef:
    """Where one raw payload is, and what it was."""

    sha256: str
    key: str  # path under the archive root
    kind: str  # listing / product / file / frame
    url: str | None = None
    status: int | None = None
    content_type: str | None = None
    size: int = 0  # uncompressed bytes
    fetched_at: str | None = None  # ISO UTC

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArchivedRun:
    """One fetch run as its manifest recorded it."""

    header: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.header.get("run_id"))


def market_day(moment: datetime) -> date:
    """The Chilean calendar day of an instant (partitions and manifests are per market day)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(MARKET_TZ)).date()


class Archive:
    """Content-addressed payload store plus per-source, per-day run manifests."""

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        *,
        codec: str = "zstd",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if codec not in _EXTENSIONS:
            raise ValueError(f"codec must be one of {sorted(_EXTENSIONS)}, got {codec!r}")
        self.url = str(root)
        self.codec = codec
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.root = self.root.rstrip("/")

    @classmethod
    def from_config(cls, config: ArchiveConfig) -> Archive:
        return cls(config.root, codec=config.codec, storage_options=dict(config.storage_options))

    def __repr__(self) -> str:
        return f"Archive({self.url!r}, codec={self.codec!r})"

    # --- blobs ---

    def put(self, content: bytes) -> tuple[str, str]:
        """Store ``content`` (once); return its sha256 and key."""
        sha = hashlib.sha256(content).hexdigest()
        existing = self._find_blob(sha)
        if existing is not None:
            return sha, existing
        key = f"blobs/{sha[:2]}/{sha[2:4]}/{sha}.{_EXTENSIONS[self.codec]}"
        self._write(key, _compress(content, self.codec))
        return sha, key

    def get(self, sha256: str) -> bytes:
        """The payload's bytes, checked against its hash."""
        key = self._find_blob(sha256)
        if key is None:
            raise ArchiveError(f"payload {sha256} is not in the archive at {self.url}")
        content = _decompress(self.fs.cat_file(self._path(key)), key)
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ArchiveError(f"payload {sha256} is corrupt in the archive at {self.url}")
        return content

    def has(self, sha256: str) -> bool:
        return self._find_blob(sha256) is not None

    def _find_blob(self, sha: str) -> str | None:
        for ext in _EXTENSIONS.values():
            key = f"blobs/{sha[:2]}/{sha[2:4]}/{sha}.{ext}"
            if self.fs.exists(self._path(key)):
                return key
        return None

    # --- manifests ---

    def start_run(
        self, source: str, day: date, header: dict[str, Any], run_id: str | None = None
    ) -> ArchiveRun:
        """A manifest being written for one fetch run of ``source`` on market ``day``.

        ``run_id`` (e.g. the orchestrator's run id) is recorded in the header; the manifest's
        own name is always new and time-ordered, so two fetches never overwrite each other.
        """
        name = new_run_id()
        return ArchiveRun(self, source, day, run_id or name, header, name)

    def days(self, source: str) -> list[date]:
        base = self._path(f"manifests/{source}")
        if not self.fs.exists(base):
            return []
        days = []
        for path in self.fs.ls(base, detail=False):
            try:
                days.append(date.fromisoformat(Path(str(path)).name))
            except ValueError:
                continue
        return sorted(days)

    def runs(self, source: str, day: date) -> list[ArchivedRun]:
        """The runs archived for ``source`` on ``day``, oldest first."""
        base = self._path(f"manifests/{source}/{day.isoformat()}")
        if not self.fs.exists(base):
            return []
        paths = sorted(str(p) for p in self.fs.ls(base, detail=False) if str(p).endswith(".jsonl"))
        return [run for run in (self._read_manifest(p) for p in paths) if run is not None]

    def _read_manifest(self, path: str) -> ArchivedRun | None:
        lines = self.fs.cat_file(path).decode("utf-8").splitlines()
        run: ArchivedRun | None = None
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: unreadable manifest line skipped", path, number)
                continue
            if record.get("type") == "run":
                run = ArchivedRun(header=record)
            elif run is not None:
                run.entries.append(record)
        return run

    # --- io ---

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if "file" in _protocols(self.fs):  # local: write then rename, never a torn file
            tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        else:
            self.fs.pipe_file(path, data)


class ArchiveRun:
    """Collects one run's payload entries and writes its manifest (periodically and on close)."""

    def __init__(
        self,
        archive: Archive,
        source: str,
        day: date,
        run_id: str,
        header: dict[str, Any],
        name: str | None = None,
    ) -> None:
        self.archive = archive
        self.source = source
        self.day = day
        self.run_id = run_id
        self.header = {
            "type": "run",
            "run_id": run_id,
            "source": source,
            "day": day.isoformat(),
            **header,
        }
        self.entries: list[dict[str, Any]] = []
        self._unflushed = 0
        self.key = f"manifests/{source}/{day.isoformat()}/{name or new_run_id()}.jsonl"

    def store(self, content: bytes, kind: str, **meta: Any) -> PayloadRef:
        """Archive one payload and record it in the manifest; returns its reference.

        ``meta`` fills :class:`PayloadRef` fields (url, status…); other keys (the listing page
        a product page belongs to, a rank offset…) go into the manifest entry only.
        """
        sha, key = self.archive.put(content)
        known = {k: v for k, v in meta.items() if k in PayloadRef.__dataclass_fields__}
        extra = {k: v for k, v in meta.items() if k not in known}
        ref = PayloadRef(sha256=sha, key=key, kind=kind, size=len(content), **known)
        self.add({"type": "payload", **ref.as_dict(), **extra})
        return ref

    def add(self, entry: dict[str, Any]) -> int:
        """Record an entry (payload, product link, missing listings…); returns its seq."""
        seq = len(self.entries)
        self.entries.append({"seq": seq, **entry})
        self._unflushed += 1
        if self._unflushed >= _FLUSH_EVERY:
            self.flush()
        return seq

    def flush(self) -> None:
        lines = [self.header, *self.entries]
        text = "\n".join(json.dumps(line, ensure_ascii=False, default=str) for line in lines)
        self.archive._write(self.key, (text + "\n").encode("utf-8"))
        self._unflushed = 0

    def close(self) -> None:
        if self.entries:
            self.flush()


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:8]}"


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _compress(content: bytes, codec: str) -> bytes:
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=10).compress(content)
    return gzip.compress(content, compresslevel=6, mtime=0)


def _decompress(data: bytes, key: str) -> bytes:
    if key.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
    return gzip.decompress(data)
