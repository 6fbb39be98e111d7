"""The raw-payload archive: content-addressed, compressed, with per-day run manifests."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from datetime import date
from pathlib import Path

import pytest

from arbx_dagster.ingestion.archive import Archive, ArchiveError


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_payloads_round_trip_compressed_and_deduplicated(tmp_path: Path, codec: str) -> None:
    archive = Archive(tmp_path / "archive", codec=codec)
    page = b'{"data": {"results": []}}' * 200
    sha, key = archive.put(page)
    assert sha == hashlib.sha256(page).hexdigest()
    assert key.startswith(f"blobs/{sha[:2]}/{sha[2:4]}/{sha}.")
    stored = tmp_path / "archive" / key
    assert stored.stat().st_size < len(page) / 5
    assert archive.get(sha) == page
    assert archive.put(page) == (sha, key)  # stored once
    assert len(list((tmp_path / "archive" / "blobs").rglob("*.*"))) == 1


def test_a_corrupt_or_absent_payload_is_an_error(tmp_path: Path) -> None:
    archive = Archive(tmp_path, codec="gzip")
    sha, key = archive.put(b"hello")
    (tmp_path / key).write_bytes(gzip.compress(b"tampered"))
    with pytest.raises(ArchiveError, match="corrupt"):
        archive.get(sha)
    with pytest.raises(ArchiveError, match="not in the archive"):
        archive.get("0" * 64)


def test_runs_are_listed_per_source_and_day(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    day = date(2026, 11, 23)
    run = archive.start_run("falabella", day, {"connector": "http_json"})
    ref = run.store(b"page-1", "listing", url="https://x/1", status=200, page=1)
    run.add({"type": "missing", "listings": [{"sku": "9"}], "location": "x"})
    run.close()
    archive.start_run("falabella", date(2026, 11, 24), {}).close()  # empty: writes nothing
    assert archive.days("falabella") == [day]
    assert archive.days("ripley") == []
    [stored] = archive.runs("falabella", day)
    assert stored.run_id == run.run_id
    assert stored.header["connector"] == "http_json"
    assert stored.entries[0]["sha256"] == ref.sha256 and stored.entries[0]["page"] == 1
    assert stored.entries[1]["type"] == "missing"


def test_any_fsspec_location_works() -> None:
    archive = Archive(f"memory://arbx-test-{uuid.uuid4().hex[:8]}/archive")
    sha, _ = archive.put(b"payload")
    assert archive.get(sha) == b"payload"
    run = archive.start_run("paris", date(2026, 11, 23), {"connector": "html"})
    run.store(b"payload", "listing", url="https://x")
    run.close()
    assert [r.run_id for r in archive.runs("paris", date(2026, 11, 23))] == [run.run_id]
