"""One crawl run: what it has seen and why its gaps cannot be trusted, and its record in
the archive (the manifest a replay reads back)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from arbx_dagster.ingestion.archive import Archive, ArchiveRun, PayloadRef
from arbx_dagster.ingestion.circuit import CircuitOpenError
from arbx_dagster.ingestion.connectors.base import FetchRequest
from arbx_dagster.ingestion.http import HttpResponse
from arbx_dagster.ingestion.sources import HttpSource


@dataclass
class RunState:
    request: FetchRequest
    run: ArchiveRun | None
    observed_at: datetime
    seen: set[str] = field(default_factory=set)
    incomplete: list[str] = field(default_factory=list)  # why missing rows cannot be trusted
    circuit: CircuitOpenError | None = None  # opened while fetching product pages


def start_archive_run(
    archive: Archive | None, source: HttpSource, request: FetchRequest
) -> ArchiveRun | None:
    """The archive manifest of a live run (None without an archive): its header says how to
    replay it."""
    if archive is None:
        return None
    header = {
        "connector": source.connector,
        "mode": str(request.mode),
        "observed_at": request.at().isoformat(),
        "listings": None if request.listings is None else [vars(k) for k in request.listings],
        "config": source.model_dump(mode="json", by_alias=True),
    }
    return archive.start_run(source.name, request.archive_day(), header, request.run_id)


def store_payload(
    run: ArchiveRun | None, response: HttpResponse, kind: str, **extra: Any
) -> tuple[PayloadRef, int | None]:
    """A fetched page's reference and its seq in the manifest (archived when there is a run)."""
    meta = {
        "url": response.url,
        "status": response.status,
        "content_type": response.content_type,
        "fetched_at": response.fetched_at.isoformat(),
    }
    if run is None:
        sha = hashlib.sha256(response.content).hexdigest()
        return PayloadRef(sha256=sha, key="", kind=kind, size=len(response.content), **meta), None
    ref = run.store(response.content, kind, **meta, **extra)
    return ref, run.entries[-1]["seq"]


def note(run: ArchiveRun | None, entry: dict[str, Any]) -> None:
    """Record a manifest entry (a failure, missing listings) when there is a run."""
    if run is not None:
        run.add(entry)


def payload_ref(entry: Mapping[str, Any]) -> PayloadRef:
    """The payload reference a manifest entry records."""
    names = PayloadRef.__dataclass_fields__
    return PayloadRef(**{k: v for k, v in entry.items() if k in names})
