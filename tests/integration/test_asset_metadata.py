"""What a materialization tells Dagster's catalogue: where its table lives, its columns as
the engine has them, its rows, and previews as typed tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from arbx_dagster.assets.metadata import stage_metadata, table_metadata, table_preview
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _listing(sku: str) -> dict[str, object]:
    return {
        "retailer": "ripley",
        "sku": sku,
        "name": f"TV {sku}",
        "name_norm": f"tv {sku}",
        **dict.fromkeys(("first_seen", "last_seen", "updated_at"), NOW),
    }


def test_table_metadata_names_the_table_its_engine_columns_and_rows(warehouse: Warehouse) -> None:
    warehouse.upsert("listings", pl.DataFrame([_listing("a"), _listing("b")]), ["retailer", "sku"])
    meta = table_metadata(warehouse, "listings")

    database, schema, table = meta["dagster/table_name"].split(".")
    assert table == "listings" and schema == ("main" if warehouse.engine == "duckdb" else "public")
    assert database  # the DuckDB file's name, or the PostgreSQL database
    assert meta["dagster/storage_kind"] == warehouse.engine
    assert meta["dagster/row_count"] == 2
    # a partitioned table counts each partition's rows instead
    assert "dagster/row_count" not in table_metadata(warehouse, "listings", count_rows=False)

    columns = {c.name: c for c in meta["dagster/column_schema"].columns}
    assert list(columns)[:2] == ["retailer", "sku"]  # in the table's order
    text = "varchar" if warehouse.engine == "duckdb" else "text"
    assert (columns["sku"].type, columns["price_offer"].type) == (text, "bigint")
    assert columns["sku"].constraints.nullable is False  # part of the key
    assert columns["price_offer"].constraints.nullable is True


def test_a_preview_is_a_typed_table_of_plain_values() -> None:
    frame = pl.DataFrame(
        {
            "sku": ["a", "b", "c"],
            "price": [1_000, None, 3_000],
            "roi_pct": [12.34567, 8.0, 9.5],
            "day": [date(2026, 11, 20)] * 3,
            "seen": [NOW] * 3,
            "in_stock": [True, False, True],
        }
    )
    preview = table_preview(frame, max_rows=2)
    assert isinstance(preview, dg.TableMetadataValue)
    assert [(c.name, c.type) for c in preview.schema.columns] == [
        ("sku", "string"),
        ("price", "int"),
        ("roi_pct", "float"),
        ("day", "date"),
        ("seen", "datetime"),
        ("in_stock", "bool"),
    ]
    assert [r.data for r in preview.records] == [
        {
            "sku": "a",
            "price": 1_000,
            "roi_pct": 12.346,
            "day": "2026-11-20",
            "seen": "2026-11-23T12:00:00+00:00",
            "in_stock": True,
        },
        {
            "sku": "b",
            "price": None,
            "roi_pct": 8.0,
            "day": "2026-11-20",
            "seen": "2026-11-23T12:00:00+00:00",
            "in_stock": False,
        },
    ]


def test_stage_metadata_counts_the_table_and_keeps_what_the_stage_wrote(
    warehouse: Warehouse,
) -> None:
    rows = pl.DataFrame([_listing(sku) for sku in "abcde"])
    warehouse.upsert("listings", rows, ["retailer", "sku"])
    report = StageReport(rows=2, counts={"listings": 5}, preview=rows.head(2))
    meta = stage_metadata(report, table_metadata(warehouse, "listings"))
    assert (meta["dagster/row_count"], meta["rows_written"]) == (5, 2)
    assert isinstance(meta["dagster/column_schema"], dg.TableSchema)
    assert isinstance(meta["preview"], dg.TableMetadataValue)
    assert [r.data["sku"] for r in meta["preview"].records] == ["a", "b"]
