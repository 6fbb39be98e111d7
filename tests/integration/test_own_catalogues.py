"""Bring your own catalogues: each failure a new user met loading two retailers' exports
(issue 16), reproduced through the pipeline's ingestion on small catalogues written here,
against the embedded warehouse and PostgreSQL alike."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import day_of
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.ingestion.sources_file import parse_sources
from arbx_dagster.pipeline.ingest import (
    IngestionFailed,
    PartitionRequest,
    fetch_partition,
    ingest_partition,
    open_connectors,
)
from arbx_dagster.pipeline.quality_checks import quarantine_rate
from arbx_dagster.pipeline.source_check import check_sources
from arbx_dagster.storage.cache import MemoryCache
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.settings_store import set_setting
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 15:00 in Santiago
TODAY = day_of(NOW)
USD_CATALOGUE = "id,title,price\nW-1,Sony Turntable PSLX350H,58.45\nW-2,Bose Speaker,59.0\n"


def _sources(root: Path, **options: object) -> SourcesConfig:
    """One file-drop source over ``root/landing`` (retailers from its folders)."""
    extra = "".join(f"    {key}: {value}\n" for key, value in options.items())
    text = (
        f"version: 1\narchive: {{root: {root / 'archive'}}}\nretailers:\n"
        f"  - name: exports\n    connector: file_drop\n    path: {root / 'landing'}\n"
        f"    settle_seconds: 0\n{extra}"
    )
    return parse_sources(text)


def _drop(root: Path, relpath: str, text: str, written: datetime = NOW) -> Path:
    path = root / "landing" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    stamp = (written - timedelta(minutes=5)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _ingest(warehouse: Warehouse, sources: SourcesConfig, retailer: str, day: date) -> dict:
    """One partition through fetch + ingest, as a raw_prices run does; its report's counts."""
    archive = Archive(sources.archive.root)
    request = PartitionRequest(day=day, retailer=retailer)
    with open_connectors(sources, MemoryCache(), archive, now=NOW) as connectors:
        fetched = fetch_partition(sources, connectors, archive, request, now=NOW, run_id="run")
        return ingest_partition(warehouse, fetched, request, now=NOW, run_id="run").counts


@pytest.fixture
def market(warehouse: Warehouse) -> Warehouse:
    migrate(warehouse)
    return warehouse


def test_a_file_dropped_today_is_todays_partition_and_a_rerun_adds_nothing(
    market: Warehouse, tmp_path: Path
) -> None:
    """Failure 1: a run for today skipped today's files and stored 0 rows, exit 0."""
    sources = _sources(tmp_path)
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer,in_stock\nA,TV,199990,true\n")
    first = _ingest(market, sources, "walmart", TODAY)
    again = _ingest(market, sources, "walmart", TODAY)
    assert (first["stored"], first["nothing_stored"]) == (1, "")
    assert again["stored"] == 1
    observed = market.query("SELECT observed_at FROM raw_prices")["observed_at"].to_list()
    assert len(observed) == 1  # the file's rows keep the moment it was written
    assert observed[0] == NOW - timedelta(minutes=5)


def test_a_partition_that_stores_nothing_says_why(market: Warehouse, tmp_path: Path) -> None:
    """Failure 1: zero rows raised no warning and passed every check."""
    sources = _sources(tmp_path)
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer\nA,TV,199990\n")
    past = TODAY - timedelta(days=3)
    counts = _ingest(market, sources, "walmart", past)
    assert counts["stored"] == 0
    assert "no source had rows for it" in counts["nothing_stored"]
    assert "the day its name dates" in counts["nothing_stored"]


def test_a_retailer_is_whatever_its_landing_folder_is_called(tmp_path: Path) -> None:
    """Failure 2: landing/walmart/ got no retailer and no error."""
    (tmp_path / "landing" / "walmart").mkdir(parents=True)
    (tmp_path / "landing" / "target").mkdir()
    (tmp_path / "landing" / "Old Exports").mkdir()  # cannot name a retailer
    sources = _sources(tmp_path)
    assert sources.provided_retailers() == ["target", "walmart"]
    assert [s.name for s in sources.sources_for("walmart")] == ["exports"]


def test_prices_in_the_wrong_currency_fail_with_the_reason_and_a_sample_row(
    market: Warehouse, tmp_path: Path
) -> None:
    """Failure 3: '58.45' was refused as 'layout change suspected' with no reason or row."""
    sources = _sources(tmp_path)
    _drop(tmp_path, "walmart/catalogue.csv", USD_CATALOGUE)
    with pytest.raises(IngestionFailed) as failed:
        _ingest(market, sources, "walmart", TODAY)
    message = str(failed.value)
    assert "unparsable price_offer: '58.45' (not a CLP amount)" in message
    assert "walmart/catalogue.csv:2" in message
    assert "a re-run parses again with the current sources.yaml" in message


def test_a_rerun_reparses_the_archive_with_the_corrected_configuration(
    market: Warehouse, tmp_path: Path
) -> None:
    """Failure 4: a past day replayed its archive with the configuration it was archived
    with, so an edited sources.yaml never took effect."""
    yesterday = TODAY - timedelta(days=1)
    written = NOW - timedelta(days=1)
    path = _drop(tmp_path, "walmart/catalogue.csv", USD_CATALOGUE, written=written)
    with pytest.raises(IngestionFailed):
        _ingest(market, _sources(tmp_path), "walmart", yesterday)  # archived, then refused
    path.unlink()  # only the archive holds the file now
    set_setting(market, "currency", "USD", actor="test")
    fixed = _sources(tmp_path, currency="USD")
    counts = _ingest(market, fixed, "walmart", yesterday)
    assert counts["stored"] == 2
    prices = market.query("SELECT sku, price_offer FROM raw_prices ORDER BY sku").rows()
    assert prices == [("W-1", 5845), ("W-2", 5900)]


def test_a_corrected_file_dropped_again_replaces_the_earlier_copy(
    market: Warehouse, tmp_path: Path
) -> None:
    """Failure 4: a corrected file was ignored in favour of what the failed run archived."""
    yesterday = TODAY - timedelta(days=1)
    sources = _sources(tmp_path)
    written = NOW - timedelta(days=1)
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer\nA,TV,999\n", written)
    _ingest(market, sources, "walmart", yesterday)
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer\nA,TV,199990\n", written)
    _ingest(market, sources, "walmart", yesterday)
    assert market.query("SELECT sku, price_offer FROM raw_prices").rows() == [("A", 199_990)]


def test_a_source_without_stock_says_what_is_assumed_and_how_to_change_it(
    tmp_path: Path,
) -> None:
    """Failure 5: no stock column meant 0 spreads, with no hint."""
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer\nA,TV,199990\n")
    [check] = check_sources(_sources(tmp_path), Thresholds(), now=NOW)
    assert check.stored["in_stock"].to_list() == [None]
    assert any("assume_in_stock: true" in note for note in check.notes)
    [assumed] = check_sources(_sources(tmp_path, assume_in_stock="true"), Thresholds(), now=NOW)
    assert assumed.stored["in_stock"].to_list() == [True]
    assert not any("in stock" in note for note in assumed.notes)


def test_a_catalogue_mostly_unpriced_lands_its_priced_rows(
    market: Warehouse, tmp_path: Path
) -> None:
    """Failure 6: most rows without a price failed the whole partition as a layout change."""
    rows = "\n".join(f"U-{i},Unpriced item {i}," for i in range(8))
    _drop(tmp_path, "walmart/catalogue.csv", f"sku,name,price_offer\n{rows}\nP-1,TV,199990\n")
    counts = _ingest(market, _sources(tmp_path), "walmart", TODAY)
    assert (counts["stored"], counts["quarantined"]) == (1, 8)
    assert counts["quarantine_reasons"] == {"no price on a successful fetch": 8}
    outcome = quarantine_rate(market, "run", NOW)
    assert outcome.passed and outcome.metadata["unpriced"] == 8


def test_no_price_at_all_is_still_a_broken_mapping(market: Warehouse, tmp_path: Path) -> None:
    rows = "\n".join(f"U-{i},Item {i},{i}" for i in range(4))
    _drop(tmp_path, "walmart/catalogue.csv", f"sku,name,cost\n{rows}\n")
    with pytest.raises(IngestionFailed, match="none of the 4 items shows a price"):
        _ingest(market, _sources(tmp_path), "walmart", TODAY)


def test_an_old_export_is_said_to_be_too_old_for_opportunities(tmp_path: Path) -> None:
    """Failure 7: a day's file went stale within a day and opportunities silently expired."""
    _drop(tmp_path, "walmart/catalogue.csv", "sku,name,price_offer\nA,TV,199990\n")
    later = NOW + timedelta(hours=30)
    [check] = check_sources(_sources(tmp_path), Thresholds(), now=later)
    assert any("older than max_price_age_hours (26 h)" in note for note in check.notes)


def test_columns_named_the_usual_ways_are_read_and_shown(tmp_path: Path) -> None:
    _drop(
        tmp_path,
        "walmart/catalogue.csv",
        "Item ID,Title,Sale Price,List Price,Manufacturer,Description\n"
        "A,Sony TV,199990,249990,Sony,a big TV\n",
    )
    [check] = check_sources(_sources(tmp_path), Thresholds(), now=NOW)
    assert check.mapping["walmart/catalogue.csv"] == {
        "sku": "Item ID",
        "name": "Title",
        "brand": "Manufacturer",
        "price_offer": "Sale Price",
        "price_list": "List Price",
    }
    assert check.ignored["walmart/catalogue.csv"] == ["Description"]
    stored = check.stored.select("sku", "name", "brand", "price_list", "price_offer")
    assert stored.rows() == [("A", "Sony TV", "Sony", 249_990, 199_990)]
    assert isinstance(check.stored, pl.DataFrame) and not (tmp_path / "archive").exists()
