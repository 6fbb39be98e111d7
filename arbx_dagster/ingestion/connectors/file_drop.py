"""Exports dropped in a landing folder: CSV, JSONL, Parquet — one batch per file.

Layout: ``<path>/<retailer>/<file>`` (the folder names the retailer) or files anywhere with a
``retailer`` column; a fixed ``retailer`` in the source wins over both. Columns are record
fields (``columns:`` renames others); prices may be integers or Chilean price text.

A bad file never loses its good rows: unreadable lines become rows with a ``parse_error``
and their ``file:line`` (the validator quarantines them), a file cut mid-row has its last
row flagged (``$129.990`` cut to ``$129`` must not become a price), and a file that cannot
be read at all (a truncated Parquet footer) yields an empty batch whose stats say so.

:meth:`FileDropConnector.ready_files` is what a sensor polls: complete files not yet
ingested, and a cursor to store, so each file is ingested once even across restarts.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.domain.schema import RETAILER_NAME
from arbx_dagster.ingestion.archive import Archive, ArchivedRun, ArchiveRun, PayloadRef
from arbx_dagster.ingestion.columns import guess_columns
from arbx_dagster.ingestion.connectors.base import (
    FetchBatch,
    FetchRequest,
    IngestionError,
)
from arbx_dagster.ingestion.records import (
    TEXT_INPUTS,
    RecordContext,
    count_items,
    empty_batch_frame,
    items_frame,
    normalize,
)
from arbx_dagster.ingestion.sources import FileDropSource
from arbx_dagster.ingestion.stats import FetchStats
from arbx_dagster.ingestion.webhook_files import landed_by_webhook

log = logging.getLogger(__name__)


SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
_MARKERS = (".done", ".ok", ".md5", ".sha256")
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_TRUNCATED = "truncated: the file ends in the middle of this row"


@dataclass(frozen=True)
class DroppedFile:
    path: str  # absolute
    relpath: str  # under the landing folder, '/'-separated
    size: int
    mtime_ns: int
    format: str
    retailer: str | None

    @property
    def fingerprint(self) -> str:
        return f"{self.size}:{self.mtime_ns}"

    @property
    def key(self) -> str:
        """Stable identity of this version of the file (a Dagster ``run_key``)."""
        return f"{self.relpath}@{self.fingerprint}"

    @property
    def modified_at(self) -> datetime | None:
        """When the file was last written (unknown for an archived copy of an old run)."""
        return datetime.fromtimestamp(self.mtime_ns / 1e9, UTC) if self.mtime_ns else None

    @property
    def day(self) -> date | None:
        """The market day the file's prices are of: the date in its name, else the day it
        was written (``exports/walmart.csv`` dropped today is today's)."""
        named = date_in_name(self.relpath)
        if named is not None or self.modified_at is None:
            return named
        return self.modified_at.astimezone(ZoneInfo(MARKET_TZ)).date()


@dataclass
class ReadyFiles:
    """Files complete and not yet ingested, plus the cursor that marks them ingested."""

    files: list[DroppedFile]
    waiting: list[str] = field(default_factory=list)  # present but maybe still being written
    cursor: str = ""


def date_in_name(name: str) -> date | None:
    """``falabella/2026-11-17.csv`` / ``export_20261117.jsonl`` -> 2026-11-17."""
    for match in _DATE_IN_NAME.finditer(Path(name).name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


class FileDropConnector:
    def __init__(
        self,
        source: FileDropSource,
        archive: Archive | None = None,
        *,
        clock: Any = time.time,
    ) -> None:
        self.source = source
        self.name = source.name
        self.archive = archive
        self.root = Path(source.path).expanduser().resolve()
        self._clock = clock

    def close(self) -> None:
        """Nothing to release."""

    # --- discovery ---

    def files(self) -> list[DroppedFile]:
        """Every data file in the landing folder (complete or not), oldest first."""
        if not self.root.exists():
            return []
        found = []
        for path in self.root.rglob("*"):
            if not path.is_file() or self._ignored(path):
                continue
            fmt = SUFFIXES.get(path.suffix.lower())
            if fmt is None or fmt not in self.source.formats:
                continue
            stat = path.stat()
            rel = path.relative_to(self.root).as_posix()
            found.append(
                DroppedFile(
                    str(path), rel, stat.st_size, stat.st_mtime_ns, fmt, self._retailer_of(rel)
                )
            )
        return sorted(found, key=lambda f: (f.mtime_ns, f.relpath))

    def ready_files(
        self, since_cursor: str | None = None, *, now: float | None = None
    ) -> ReadyFiles:
        """Complete files not in ``since_cursor``; the returned cursor marks them ingested.

        Complete means: no partial suffix (``.part``…), unchanged for ``settle_seconds``, and
        (``require_stable_size``) the same size as at the previous look — so a file is
        picked up on the second poll that finds it unchanged, never half-written — or a
        file the price webhook landed (renamed into place whole: ready at once). Files that
        left the folder are forgotten, so the cursor stays small.
        """
        state = _Cursor.load(since_cursor)
        now = self._clock() if now is None else now
        files = self.files()
        ready, waiting, sizes = [], [], {}
        for f in files:
            if state.done.get(f.relpath) == f.fingerprint:
                continue
            settled = now - f.mtime_ns / 1e9 >= self.source.settle_seconds
            stable = not self.source.require_stable_size or state.sizes.get(f.relpath) == f.size
            if (settled and stable) or landed_by_webhook(f.relpath):
                ready.append(f)
            else:
                waiting.append(f.relpath)
                sizes[f.relpath] = f.size
        present = {f.relpath for f in files}
        done = {k: v for k, v in state.done.items() if k in present}
        done.update({f.relpath: f.fingerprint for f in ready})
        return ReadyFiles(ready, waiting, _Cursor(done, sizes).dump())

    def _ignored(self, path: Path) -> bool:
        name = path.name
        if name.startswith((".", "~", "_")):
            return True
        lower = name.lower()
        return lower.endswith(self.source.partial_suffixes) or lower.endswith(_MARKERS)

    def _retailer_of(self, relpath: str) -> str | None:
        if self.source.retailer:
            return self.source.retailer
        parts = relpath.split("/")
        folder = parts[0].lower() if len(parts) > 1 else None
        if folder is None or not RETAILER_NAME.match(folder):
            return None
        known = self.source.known_retailers
        return folder if known is None or folder in known else None

    # --- fetching ---

    def fetch(self, request: FetchRequest) -> Iterator[FetchBatch]:
        """One batch per file: ``request.paths``, else files dated ``request.day``, else
        every settled file. ``request.retailer`` keeps that retailer's files and rows."""
        files = self._select(request)
        run = self._start_run(request)
        try:
            if not files:
                stats = FetchStats()
                what = f"of {request.day}" if request.day else "ready"
                stats.error(f"{self.name}: no files {what} in {self.root}")
                yield FetchBatch(self.name, empty_batch_frame(), stats, retailer=request.retailer)
                return
            for f in files:
                started = time.monotonic()
                content = Path(f.path).read_bytes()
                ref = self._store(run, content, f)
                batch = self._parse(content, f, ref, request.at(), request.retailer)
                batch.stats.duration_seconds = time.monotonic() - started
                batch.run_id = run.run_id if run is not None else None
                yield batch
        finally:
            if run is not None:
                run.close()

    def read(self, path: str | Path, observed_at: datetime | None = None) -> FetchBatch:
        """Parse one file without archiving it (previews, tests)."""
        f = self._describe(Path(path))
        content = Path(f.path).read_bytes()
        return self._parse(content, f, None, observed_at or datetime.now(UTC), None)

    def _select(self, request: FetchRequest) -> list[DroppedFile]:
        if request.paths is not None:
            chosen = [self._describe(Path(p)) for p in request.paths]
        else:
            chosen = [f for f in self.files() if not self._ignored(Path(f.path))]
            if request.day is not None:
                chosen = [f for f in chosen if f.day == request.day]
            else:
                now = self._clock()
                chosen = [f for f in chosen if now - f.mtime_ns / 1e9 >= self.source.settle_seconds]
        if request.retailer is not None:
            chosen = [f for f in chosen if f.retailer in (None, request.retailer)]
        return chosen

    def _describe(self, path: Path) -> DroppedFile:
        path = path if path.is_absolute() else self.root / path
        if not path.is_file():
            raise IngestionError(f"{self.name}: no such file {path}")
        fmt = SUFFIXES.get(path.suffix.lower())
        if fmt is None:
            raise IngestionError(f"{path}: unknown format (expected {sorted(SUFFIXES)})")
        try:
            rel = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            rel = path.name
        stat = path.stat()
        return DroppedFile(
            str(path), rel, stat.st_size, stat.st_mtime_ns, fmt, self._retailer_of(rel)
        )

    def _start_run(self, request: FetchRequest) -> ArchiveRun | None:
        if self.archive is None:
            return None
        header = {
            "connector": "file_drop",
            "observed_at": request.at().isoformat(),
            "config": self.source.model_dump(mode="json", by_alias=True),
        }
        return self.archive.start_run(self.name, request.archive_day(), header, request.run_id)

    def _store(self, run: ArchiveRun | None, content: bytes, f: DroppedFile) -> PayloadRef | None:
        if run is None:
            return None
        meta = {"url": f.relpath, "fetched_at": datetime.now(UTC).isoformat()}
        return run.store(
            content, "file", **meta, format=f.format, retailer=f.retailer, mtime_ns=f.mtime_ns
        )

    # --- parsing (shared with replay) ---

    def _parse(
        self,
        content: bytes,
        f: DroppedFile,
        ref: PayloadRef | None,
        observed_at: datetime,
        retailer: str | None,
    ) -> FetchBatch:
        stats = FetchStats(pages=1, bytes=len(content))
        sha = ref.sha256 if ref is not None else _sha256(content)
        try:
            raw = self._read(content, f)
        except Exception as exc:
            stats.pages_failed = 1
            stats.error(f"{f.relpath}: unreadable {f.format} file ({type(exc).__name__}: {exc})")
            log.error("%s", stats.errors[-1])
            return self._batch(empty_batch_frame(), stats, ref, f, retailer)
        raw = self.as_fields(raw)
        context = RecordContext(
            source=f"file_drop:{self.name}",
            observed_at=_default_observed_at(f, observed_at),
            retailer=f.retailer,
            currency=self.source.currency,
            card_program=self.source.card_program,
            first_party=self.source.first_party,
            payload_sha256=sha,
            constants=self.source.fill_values,
        )
        frame = normalize(raw, context)
        stats.items_seen = frame.height
        count_items(frame, stats)
        if retailer is not None:
            frame = frame.filter(pl.col("retailer").is_null() | (pl.col("retailer") == retailer))
        return self._batch(frame, stats, ref, f, retailer)

    def column_mapping(self, header: list[str]) -> dict[str, str]:
        """Record field -> column of a file with this ``header``: the source's ``columns:``,
        and (``infer_columns``) the columns named like a field or a common name of one."""
        if not self.source.infer_columns:
            return {f: c for f, c in self.source.columns.items() if c in header}
        return guess_columns(header, self.source.columns)

    def as_fields(self, raw: pl.DataFrame) -> pl.DataFrame:
        """The file's columns renamed to the record fields they hold; a column named like a
        field that another column was mapped to is left out (the mapping wins)."""
        mapping = self.column_mapping(raw.columns)
        used = set(mapping.values())
        shadowed = [c for c in raw.columns if c in mapping and c not in used]
        renames = {column: field for field, column in mapping.items() if column != field}
        return raw.drop(shadowed).rename(renames)

    def _batch(
        self,
        frame: pl.DataFrame,
        stats: FetchStats,
        ref: PayloadRef | None,
        f: DroppedFile,
        retailer: str | None,
    ) -> FetchBatch:
        stats.rows = frame.height
        return FetchBatch(
            source=self.name,
            frame=frame,
            stats=stats,
            payloads=[ref] if ref is not None else [],
            location=f.relpath,
            retailer=retailer or f.retailer,
        )

    def _read(self, content: bytes, f: DroppedFile) -> pl.DataFrame:
        """The file as a frame (+ ``source_location``, ``parse_error``), keeping good rows."""
        if f.format == "parquet":
            frame = pl.read_parquet(io.BytesIO(content))
            return frame.with_columns(
                source_location=pl.format(f"{f.relpath}:row {{}}", pl.int_range(1, pl.len() + 1))
            )
        encoding = self.source.encoding
        if f.format == "jsonl":
            frame = _read_jsonl(content, f.relpath, encoding)
        else:
            separator = "\t" if f.path.lower().endswith(".tsv") else self.source.csv_separator
            frame = _read_csv(content, f.relpath, separator, encoding)
        return _flag_undecodable(frame, content, f.relpath, encoding, self.name)

    # --- replay ---

    def replay(
        self, run: ArchivedRun, archive: Archive, retailer: str | None = None
    ) -> Iterator[FetchBatch]:
        observed_at = datetime.fromisoformat(run.header["observed_at"])
        for entry in run.entries:
            if entry.get("type") != "payload" or entry.get("kind") != "file":
                continue
            content = archive.get(entry["sha256"])
            relpath = str(entry.get("url"))
            f = DroppedFile(
                path=relpath,
                relpath=relpath,
                size=len(content),
                mtime_ns=int(entry.get("mtime_ns") or 0),
                format=str(
                    entry.get("format") or SUFFIXES.get(Path(relpath).suffix.lower(), "csv")
                ),
                retailer=entry.get("retailer"),
            )
            ref = PayloadRef(
                **{k: v for k, v in entry.items() if k in PayloadRef.__dataclass_fields__}
            )
            batch = self._parse(content, f, ref, observed_at, retailer)
            batch.run_id = run.run_id
            yield batch


def _default_observed_at(f: DroppedFile, fetched: datetime) -> datetime:
    """For rows without ``observed_at``: when the file was written — the same instant on
    every re-read, so re-ingesting a file never adds observations — unless its name dates
    it to another day (then noon, Chile, of that day); the fetch time only when neither is
    known (an archived copy of a run that kept no file time)."""
    written, named = f.modified_at, date_in_name(f.relpath)
    if named is None:
        return written or fetched
    if written is not None and written.astimezone(ZoneInfo(MARKET_TZ)).date() == named:
        return written
    return datetime.combine(named, dtime(12), tzinfo=ZoneInfo(MARKET_TZ)).astimezone(UTC)


def _undecodable_lines(content: bytes, encoding: str) -> list[int]:
    """Line numbers (1-based) whose bytes are not text in ``encoding``."""
    bad = []
    for number, line in enumerate(content.splitlines(), 1):
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            bad.append(number)
    return bad


def _flag_undecodable(
    frame: pl.DataFrame, content: bytes, relpath: str, encoding: str, source: str
) -> pl.DataFrame:
    """Rows read from lines that are not ``encoding`` text are quarantined with why (a
    'Televisi\ufffdn' must never be stored); the file's other rows still land."""
    try:
        content.decode(encoding)
        return frame
    except UnicodeDecodeError:
        pass
    bad = [f"{relpath}:{n}" for n in _undecodable_lines(content, encoding)]
    reason = (
        f"not {encoding} text (a Latin-1 / Windows export? set encoding: latin-1 on source "
        f"{source})"
    )
    return frame.with_columns(
        parse_error=pl.when(pl.col("source_location").is_in(bad) & pl.col("parse_error").is_null())
        .then(pl.lit(reason))
        .otherwise(pl.col("parse_error"))
    )


def _read_csv(content: bytes, relpath: str, separator: str, encoding: str) -> pl.DataFrame:
    """Every data line becomes a row located by its line number. A line with a different
    number of fields than the header is flagged (a shifted column would misprice it), and
    so is a last line cut mid-row. Unquoted files are split with Polars; quoted ones go
    through the csv module, which understands quoting."""
    text = content.decode(encoding, errors="replace").removeprefix("\ufeff")
    if '"' in text:
        frame = _read_quoted_csv(text, relpath, separator)
    else:
        frame = _read_plain_csv(text, relpath, separator)
    if content and not content.endswith((b"\n", b"\r")) and frame.height:
        last = frame.height - 1
        frame = frame.with_columns(
            parse_error=pl.when(pl.int_range(pl.len()) == last)
            .then(pl.lit(_TRUNCATED))
            .otherwise(pl.col("parse_error"))
        )
    return frame


_SEPARATORS = (",", ";", "\t", "|")


def _field_count_error(line: pl.Expr, count: pl.Expr, separator: str, expected: int) -> pl.Expr:
    """Why a row has the wrong number of fields: written with another separator than the
    file's (a row pasted from another export), else just the counts."""
    reason = pl.when(count == expected).then(pl.lit(None, dtype=pl.String()))
    for other in _SEPARATORS:
        if other != separator:
            reason = reason.when(line.str.count_matches(other, literal=True) + 1 == expected).then(
                pl.lit(f"fields separated by {other!r} where the file uses {separator!r}")
            )
    return reason.otherwise(pl.format(f"{{}} fields where the header has {expected}", count))


def _read_plain_csv(text: str, relpath: str, separator: str) -> pl.DataFrame:
    lines = (
        pl.DataFrame({"line": text.splitlines()}, schema={"line": pl.String()})
        .with_row_index("number", offset=1)
        .filter(pl.col("line").str.strip_chars() != "")
    )
    if lines.is_empty():
        return pl.DataFrame(schema={"source_location": pl.String(), "parse_error": pl.String()})
    header = [h.strip() for h in lines["line"][0].split(separator)]
    fields = pl.col("line").str.split(separator)
    count = fields.list.len()
    return lines.slice(1).select(
        *(fields.list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(header)),
        source_location=pl.format(f"{relpath}:{{}}", pl.col("number")),
        parse_error=_field_count_error(pl.col("line"), count, separator, len(header)),
    )


def _read_quoted_csv(text: str, relpath: str, separator: str) -> pl.DataFrame:
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    header = [h.strip() for h in next(reader, None) or []]
    columns: dict[str, list[str | None]] = {name: [] for name in header}
    locations: list[str] = []
    errors: list[str | None] = []
    lines: list[str] = []  # the fields joined back: where a wrong separator shows
    counts: list[int] = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            values, error = [], f"bad CSV: {exc}"
        else:
            if not values:
                continue
            error = None
        for i, name in enumerate(header):
            columns[name].append(values[i] if i < len(values) else None)
        locations.append(f"{relpath}:{reader.line_num}")
        errors.append(error)
        lines.append(separator.join(values))
        counts.append(len(values) if error is None else len(header))
    schema = dict.fromkeys([*header, "source_location", "parse_error"], pl.String())
    data = {**columns, "source_location": locations, "parse_error": errors}
    frame = pl.DataFrame(data, schema=schema).with_columns(
        _line=pl.Series(lines, dtype=pl.String()), _count=pl.Series(counts, dtype=pl.Int64())
    )
    wrong_count = _field_count_error(pl.col("_line"), pl.col("_count"), separator, len(header))
    return frame.with_columns(parse_error=pl.coalesce("parse_error", wrong_count)).drop(
        "_line", "_count"
    )


def _read_jsonl(content: bytes, relpath: str, encoding: str) -> pl.DataFrame:
    lines = content.decode(encoding, errors="replace").removeprefix("\ufeff").splitlines()
    truncated = bool(content) and not content.endswith((b"\n", b"\r"))
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        location = f"{relpath}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            cut = truncated and number == len(lines)
            reason = _TRUNCATED if cut else f"invalid JSON: {exc.msg}"
            rows.append({"source_location": location, "parse_error": reason})
            continue
        except RecursionError:  # one absurdly nested line must not cost the file's good rows
            rows.append({"source_location": location, "parse_error": "JSON nested too deeply"})
            continue
        if not isinstance(record, dict):
            rows.append({"source_location": location, "parse_error": "line is not a JSON object"})
            continue
        rows.append({**record, "source_location": location})
    frame = items_frame(rows)
    # items_frame keeps only record fields; renamed columns must survive too
    extra = {k for r in rows for k in r} - set(TEXT_INPUTS)
    if extra:
        from arbx_dagster.ingestion.records import to_text

        more = pl.DataFrame(
            [{k: to_text(k, r.get(k)) for k in extra} for r in rows],
            schema=dict.fromkeys(sorted(extra), pl.String()),
        )
        frame = pl.concat([frame, more], how="horizontal")
    return frame


def _sha256(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


@dataclass
class _Cursor:
    done: dict[str, str] = field(default_factory=dict)  # relpath -> fingerprint ingested
    sizes: dict[str, int] = field(default_factory=dict)  # relpath -> size at the last look

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(
                dict(data.get("done", {})), {k: int(v) for k, v in data.get("sizes", {}).items()}
            )
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            raise IngestionError(f"file-drop cursor is not valid: {text[:80]!r}") from None

    def dump(self) -> str:
        return json.dumps({"v": 1, "done": self.done, "sizes": self.sizes}, sort_keys=True)
