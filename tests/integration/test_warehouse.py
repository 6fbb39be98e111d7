"""The warehouse behaves the same on DuckDB and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.schema import RAW_PRICE_KEY
from arbx_dagster.storage.migrations import current_version, discover, migrate
from arbx_dagster.storage.settings_store import read_thresholds, set_setting
from arbx_dagster.storage.warehouse import (
    ANALYZE_AFTER_ROWS,
    DuckDBWarehouse,
    PostgresWarehouse,
    Warehouse,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _history(prices: list[int], day: str = "2026-11-20") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "retailer": ["ripley"] * len(prices),
            "sku": [f"sku-{i}" for i in range(len(prices))],
            "day": [datetime.fromisoformat(day).date()] * len(prices),
            "price_offer": prices,
            "observations": [1] * len(prices),
        }
    )


def test_migrations_are_recorded_and_idempotent(warehouse: Warehouse) -> None:
    assert current_version(warehouse) == discover()[-1].version
    assert migrate(warehouse) == []  # already applied by the fixture
    versions = warehouse.query("SELECT version FROM schema_migrations ORDER BY version")
    assert versions["version"].to_list() == [m.version for m in discover()]


@pytest.fixture(params=["duckdb", "postgres"])
def unmigrated_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        warehouse: Warehouse = DuckDBWarehouse(tmp_path / "old.duckdb")
    else:
        warehouse = PostgresWarehouse(request.getfixturevalue("fresh_postgres_url"))
    yield warehouse
    warehouse.close()


def _migrate_before(warehouse: Warehouse, version: str, tmp_path: Path) -> None:
    """Apply the migrations older than ``version`` only (the schema a user upgrades from)."""
    older = tmp_path / f"sql-before-{version}"
    older.mkdir()
    for m in discover():
        if m.version < version:
            (older / f"{m.version}_{m.name}.sql").write_text(m.sql, encoding="utf-8")
    migrate(warehouse, older)


def test_upgrading_turns_the_single_image_of_older_rows_into_a_gallery(
    unmigrated_warehouse: Warehouse, tmp_path: Path
) -> None:
    _migrate_before(unmigrated_warehouse, "0009", tmp_path)
    unmigrated_warehouse.execute(
        "INSERT INTO raw_prices (retailer, sku, observed_at, name, currency, fetch_status, "
        "source, ingested_at, image_url) VALUES "
        "('paris', 'a', TIMESTAMPTZ '2026-11-20 12:00:00+00', 'TV', 'CLP', 'ok', 't', "
        "TIMESTAMPTZ '2026-11-20 12:00:00+00', $1), "
        "('paris', 'b', TIMESTAMPTZ '2026-11-20 12:00:00+00', 'TV', 'CLP', 'ok', 't', "
        "TIMESTAMPTZ '2026-11-20 12:00:00+00', NULL)",
        ['https://img.paris.cl/a "quoted" \\ 1.jpg'],
    )

    assert migrate(unmigrated_warehouse)[-1] == discover()[-1].version
    images = unmigrated_warehouse.query("SELECT sku, image_urls FROM raw_prices ORDER BY sku")
    a, b = images["image_urls"].to_list()
    assert json.loads(a) == ['https://img.paris.cl/a "quoted" \\ 1.jpg']
    assert b is None


def test_upgrading_re_keys_raw_prices_by_time_and_keeps_every_row(
    unmigrated_warehouse: Warehouse, tmp_path: Path
) -> None:
    _migrate_before(unmigrated_warehouse, "0010", tmp_path)
    rows = _raw_rows(["b", "a"], price=990)
    unmigrated_warehouse.upsert("raw_prices", rows, RAW_PRICE_KEY)
    before = unmigrated_warehouse.query("SELECT * FROM raw_prices ORDER BY sku")

    migrate(unmigrated_warehouse)
    after = unmigrated_warehouse.query("SELECT * FROM raw_prices ORDER BY sku")
    assert after.equals(before)
    # the new key still makes loads idempotent, and upserts still update in place
    unmigrated_warehouse.upsert("raw_prices", _raw_rows(["a"], price=590), RAW_PRICE_KEY)
    prices = unmigrated_warehouse.query("SELECT sku, price_offer FROM raw_prices ORDER BY sku")
    assert prices.rows() == [("a", 590), ("b", 990)]
    with pytest.raises(Exception, match=r"(?i)duplicate|unique|constraint"):
        unmigrated_warehouse.append_new("raw_prices", _raw_rows(["b"], price=1), RAW_PRICE_KEY)


def _raw_rows(skus: list[str], *, price: int) -> pl.DataFrame:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    return pl.DataFrame(
        {
            "retailer": "paris",
            "sku": skus,
            "observed_at": at,
            "name": "TV",
            "price_offer": price,
            "currency": "CLP",
            "fetch_status": "ok",
            "source": "test",
            "ingested_at": at,
        }
    )


def test_upsert_is_idempotent_and_updates_in_place(warehouse: Warehouse) -> None:
    key = ["retailer", "sku", "day"]
    warehouse.upsert("price_history", _history([1990, 2990]), key)
    warehouse.upsert("price_history", _history([1990, 2990]), key)
    assert warehouse.scalar("SELECT count(*) FROM price_history") == 2

    warehouse.upsert("price_history", _history([990, 2990]), key)
    prices = warehouse.query("SELECT sku, price_offer FROM price_history ORDER BY sku")
    assert prices["price_offer"].to_list() == [990, 2990]


def test_an_upsert_of_whole_rows_replaces_them_and_one_of_some_columns_keeps_the_rest(
    warehouse: Warehouse,
) -> None:
    key = ["retailer", "sku", "day"]
    warehouse.upsert("price_history", _history([1990, 2990]), key)
    whole = warehouse.query("SELECT * FROM price_history ORDER BY sku")
    changed = whole.with_columns(price_offer=pl.Series([990, 2990]), price_card=pl.lit(890))
    for _ in range(2):  # every column given: (on DuckDB) deleted and inserted, once
        assert warehouse.upsert("price_history", changed, key) == 2
    after = warehouse.query("SELECT * FROM price_history ORDER BY sku")
    assert after.select(whole.columns).rows() == changed.rows()

    warehouse.upsert("price_history", _history([490]), key)  # some: the others keep theirs
    row = warehouse.query("SELECT price_offer, price_card FROM price_history WHERE sku = 'sku-0'")
    assert row.rows() == [(490, 890)]


def test_duplicate_keys_in_one_batch_land_once_with_the_last_value(warehouse: Warehouse) -> None:
    batch = pl.concat([_history([1990]), _history([990])])
    assert warehouse.upsert("price_history", batch, ["retailer", "sku", "day"]) == 1
    assert warehouse.query("SELECT price_offer FROM price_history")["price_offer"].to_list() == [
        990
    ]


def test_append_new_bulk_loads_keys_the_table_lacks_once_each(warehouse: Warehouse) -> None:
    key = ["retailer", "sku", "day"]
    batch = pl.concat([_history([1990, 2990]), _history([990])])  # sku-0 twice: last wins
    assert warehouse.append_new("price_history", batch, key) == 2
    prices = warehouse.query("SELECT sku, price_offer FROM price_history ORDER BY sku")
    assert prices.rows() == [("sku-0", 990), ("sku-1", 2990)]
    with pytest.raises(Exception, match=r"(?i)duplicate|unique|constraint"):
        warehouse.append_new("price_history", _history([5]), key)  # it is no upsert
    assert warehouse.scalar("SELECT count(*) FROM price_history") == 2


def test_replace_swaps_only_the_matching_rows(warehouse: Warehouse) -> None:
    key = ["retailer", "sku", "day"]
    warehouse.upsert("price_history", _history([1, 2, 3], day="2026-11-20"), key)
    warehouse.upsert("price_history", _history([4, 5], day="2026-11-21"), key)
    day = datetime(2026, 11, 20).date()
    warehouse.replace(
        "price_history", _history([7], day="2026-11-20"), where="day = $1", params=[day]
    )
    counts = warehouse.query(
        "SELECT day, count(*) AS n FROM price_history GROUP BY day ORDER BY day"
    )
    assert counts["n"].to_list() == [1, 2]


def test_replacing_a_keyed_table_gives_exactly_the_new_rows_where_it_applies(
    warehouse: Warehouse,
) -> None:
    """Rows kept, changed, dropped and added by one replace are what deleting the rows
    matching ``where`` and inserting the new ones gives (on DuckDB it never re-inserts a
    deleted key, which its index commits very slowly)."""
    columns = warehouse.query("SELECT * FROM price_history LIMIT 0").columns
    day = datetime(2026, 11, 20).date()

    def full(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            price_list=pl.lit(None, dtype=pl.Int64),
            price_card=pl.lit(None, dtype=pl.Int64),
            in_stock=pl.lit(True),
        ).select(columns)

    warehouse.upsert("price_history", full(_history([1, 2, 3])), ["retailer", "sku", "day"])
    warehouse.upsert(
        "price_history", full(_history([4], day="2026-11-21")), ["retailer", "sku", "day"]
    )
    new = full(_history([10, 20])).with_columns(sku=pl.Series(["sku-1", "sku-9"]))
    warehouse.replace("price_history", new, where="day = $1", params=[day])
    rows = warehouse.query("SELECT sku, day, price_offer FROM price_history ORDER BY day, sku")
    assert rows.rows() == [
        ("sku-1", day, 10),
        ("sku-9", day, 20),
        ("sku-0", datetime(2026, 11, 21).date(), 4),
    ]


def test_a_failed_transaction_leaves_nothing_behind(warehouse: Warehouse) -> None:
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.upsert("price_history", _history([1990]), ["retailer", "sku", "day"])
        raise RuntimeError("boom")
    assert warehouse.scalar("SELECT count(*) FROM price_history") == 0


def test_timestamps_come_back_in_utc(warehouse: Warehouse) -> None:
    warehouse.execute(
        "INSERT INTO system_config (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)",
        ["min_roi_pct", "9.0", NOW, "test"],
    )
    stored = warehouse.query("SELECT updated_at FROM system_config")
    assert stored.schema["updated_at"] == pl.Datetime("us", "UTC")
    assert stored.item() == NOW


def test_settings_default_then_change_with_an_audit_trail(warehouse: Warehouse) -> None:
    assert read_thresholds(warehouse) == Thresholds()
    updated = set_setting(warehouse, "min_margin_clp", "25000", actor="alice")
    assert updated.min_margin_clp == 25_000
    assert read_thresholds(warehouse).min_margin_clp == 25_000

    with pytest.raises(ValueError, match="expects int"):
        set_setting(warehouse, "min_margin_clp", "lots", actor="mallory")
    log = warehouse.query(
        "SELECT actor, action, target, details, outcome FROM audit_log ORDER BY id"
    )
    assert log["actor"].to_list() == ["alice", "mallory"]
    assert log["outcome"][0] == "ok" and '"to": 25000' in log["details"][0]
    assert log["outcome"][1].startswith("rejected")
    assert read_thresholds(warehouse).min_margin_clp == 25_000


def test_keyed_rows_are_the_rows_whose_key_is_staged(warehouse: Warehouse) -> None:
    key = ["retailer", "sku", "day"]
    warehouse.upsert("price_history", _history([1990, 2990, 3990]), key)
    staged = _history([0, 0]).select("retailer", "sku")
    rows = warehouse.keyed_rows_sql("price_history", "{staged}", ["retailer", "sku"])
    found = warehouse.query_with(f"SELECT sku, price_offer FROM {rows} AS h ORDER BY sku", staged)
    assert found.rows() == [("sku-0", 1990), ("sku-1", 2990)]
    # A keyed subquery is itself a staged set for another table's rows.
    again = warehouse.keyed_rows_sql("price_history", rows, ["sku"])
    assert warehouse.query_with(f"SELECT count(*) FROM {again} AS h", staged).item() == 2


@pytest.mark.services
def test_postgresql_plans_with_fresh_statistics_after_a_bulk_write(
    postgres_warehouse: Warehouse,
) -> None:
    """A table a statement just filled is planned as what it holds now, not as what it held
    before autovacuum's next look (queries over a few keys then scanned it whole)."""
    rows = ANALYZE_AFTER_ROWS
    matches = pl.DataFrame(
        {
            "retailer": ["falabella"] * rows,
            "sku": [f"s{i}" for i in range(rows)],
            "canonical_id": [f"cp_{i}" for i in range(rows)],
            "match_probability": [1.0] * rows,
            "matched_at": [datetime(2026, 12, 1, tzinfo=UTC)] * rows,
        }
    )
    postgres_warehouse.replace("product_matches", matches)
    estimated = postgres_warehouse.scalar(
        "SELECT reltuples FROM pg_class WHERE oid = 'product_matches'::regclass"
    )
    assert estimated == pytest.approx(rows, rel=0.05)
