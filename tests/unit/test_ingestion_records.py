"""Extracted values become typed rows; malformed items become quarantinable rows, never
half-priced ones, and card-only prices never leak into the offer."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl

from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.ingestion.records import (
    BATCH_SCHEMA,
    RecordContext,
    count_items,
    items_frame,
    missing_frame,
    normalize,
    to_text,
)
from arbx_dagster.ingestion.sources import FirstParty
from arbx_dagster.ingestion.stats import FetchStats

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def _context(**kwargs: object) -> RecordContext:
    values: dict = {"source": "test", "observed_at": NOW, "retailer": "falabella"}
    values.update(kwargs)
    return RecordContext(**values)


def _rows(*items: dict, **kwargs: object) -> pl.DataFrame:
    located = [{"source_location": f"page#item-{i}", **item} for i, item in enumerate(items)]
    return normalize(items_frame(located), _context(**kwargs))


def test_three_prices_stay_separate_and_card_only_is_never_the_offer() -> None:
    rows = _rows(
        {"sku": "1", "name": "TV", "price_list": "$599.990", "price_offer": "449.990",
         "price_card": "$429.990"},
        {"sku": "2", "name": "TV", "price_list": "$599.990", "price_card": "$429.990"},
        card_program="CMR",
    )  # fmt: skip
    assert rows.schema == pl.Schema(BATCH_SCHEMA)
    assert rows.select("price_list", "price_offer", "price_card", "card_program").rows() == [
        (599_990, 449_990, 429_990, "CMR"),
        (599_990, None, 429_990, "CMR"),
    ]
    assert rows["observed_at"].to_list() == [NOW, NOW]
    assert rows["currency"].to_list() == ["CLP", "CLP"]
    assert rows["fetch_status"].to_list() == ["ok", "ok"]


def test_an_unreadable_price_nulls_every_price_of_the_row_and_says_why() -> None:
    rows = _rows(
        {"sku": "1", "name": "TV", "price_list": "$599.990", "price_offer": "Consultar precio"},
        {"sku": "2", "name": "TV", "price_list": "$599.990", "price_offer": "$449.990"},
    )
    first = rows.row(0, named=True)
    assert (first["price_list"], first["price_offer"], first["price_card"]) == (None, None, None)
    unreadable = "unparsable price_offer: 'Consultar precio' (not a CLP amount)"
    assert first["parse_error"] == unreadable
    assert rows.row(1, named=True)["parse_error"] is None
    stats = FetchStats()
    count_items(rows, stats)
    assert (stats.items_unparsable, stats.items_unpriced) == (1, 0)

    result = validate_observations(rows, now=NOW)
    assert result.accepted["sku"].to_list() == ["2"]
    quarantined = result.quarantined.row(0, named=True)
    assert quarantined["source_location"] == "page#item-0"
    assert quarantined["reason"] == unreadable


def test_malformed_items_still_become_rows_with_their_location() -> None:
    rows = _rows(
        {"name": "Sin SKU", "price_offer": "$9.990"},
        {"sku": "2", "price_offer": "$9.990"},
        {"sku": "3", "name": "Ok", "price_offer": "$9.990"},
    )
    assert rows.height == 3
    result = validate_observations(rows, now=NOW)
    assert result.accepted["sku"].to_list() == ["3"]
    assert dict(result.quarantined.select("source_location", "reason").iter_rows()) == {
        "page#item-0": "missing sku",
        "page#item-1": "missing name",
    }


def test_first_party_rules_per_store() -> None:
    falabella = _rows(
        {"sku": "1", "seller_id": "FALABELLA", "seller": "Falabella"},
        {"sku": "2", "seller_id": "SC123", "seller": "Outlet SpA"},
        {"sku": "3"},
        first_party=FirstParty(seller_ids=("FALABELLA",)),
    )
    assert falabella["is_first_party"].to_list() == [True, False, None]
    ripley = _rows(
        {"sku": "2000390012345P"},
        {"sku": "MPM00012345678", "seller": "CellStore SpA"},
        first_party=FirstParty(marketplace_sku_prefixes=("MPM",), default_seller="Ripley"),
    )
    assert ripley.select("is_first_party", "seller").rows() == [
        (True, "Ripley"),
        (False, "CellStore SpA"),
    ]
    paris = _rows(
        {"sku": "1", "seller": "Paris.cl"},
        {"sku": "2", "seller": "Tecno Market"},
        {"sku": "3", "seller": "Tecno Market", "is_first_party": True},  # explicit flag wins
        first_party=FirstParty(seller_names=("paris.cl",)),
    )
    assert paris["is_first_party"].to_list() == [True, False, True]


def test_stock_condition_and_text_values() -> None:
    rows = _rows(
        {"sku": "1", "in_stock": "https://schema.org/InStock", "condition": "NewCondition"},
        {"sku": "2", "in_stock": "Agotado", "condition": "Reacondicionado"},
        {"sku": "3", "stock_qty": "Quedan 1.234 unidades"},
        {"sku": "4", "stock_qty": "0"},
        {"sku": "5", "in_stock": "maybe", "condition": "usado"},
    )
    assert rows.select("in_stock", "stock_qty", "condition").rows() == [
        (True, None, "new"),
        (False, None, "refurbished"),
        (True, 1234, None),
        (False, 0, None),
        (None, None, "used"),
    ]
    assert to_text("category", ["Tecnología", {"name": "TV"}, "OLED"]) == "Tecnología > TV > OLED"
    assert to_text("image_urls", ["a.jpg", "b.jpg"]) == '["a.jpg", "b.jpg"]'
    assert to_text("price_offer", ["1.299.990"]) == "1.299.990"
    assert to_text("price_offer", ["1", "2"]) == "1 / 2"  # ambiguous: will not parse
    assert to_text("brand", {"@type": "Brand", "name": "LG"}) == "LG"
    assert to_text("in_stock", False) == "false"
    assert to_text("price_list", 599990.0) == "599990"


def test_image_galleries_land_as_one_json_array_whatever_the_source_shape() -> None:
    rows = _rows(
        {"sku": "list", "image_urls": ["https://cdn.cl/1.jpg", "2.jpg", "2.jpg"]},
        {"sku": "json text", "image_urls": r'["https:\/\/cdn.cl\/1.jpg", "3.jpg"]'},
        {"sku": "csv", "image_urls": "https://m.cl/a/w=800,h=800 | https://m.cl/b.jpg"},
        {"sku": "one", "image_urls": "https://m.cl/only.jpg"},
        {"sku": "none"},
    )
    galleries = [json.loads(v) if v else v for v in rows["image_urls"].to_list()]
    assert galleries == [
        ["https://cdn.cl/1.jpg", "2.jpg"],  # repeats dropped
        ["https://cdn.cl/1.jpg", "3.jpg"],
        ["https://m.cl/a/w=800,h=800", "https://m.cl/b.jpg"],  # commas belong to the URL
        ["https://m.cl/only.jpg"],
        None,
    ]
    parquet_lists = pl.DataFrame({"sku": ["p"], "image_urls": [["x.jpg", "y.jpg"]]})
    typed = normalize(parquet_lists, _context())
    assert json.loads(typed["image_urls"][0]) == ["x.jpg", "y.jpg"]


def test_observed_at_text_and_typed_columns() -> None:
    raw = pl.DataFrame(
        {
            "sku": ["1", "2", "3", "4"],
            "observed_at": [
                "2026-11-20T12:00:00Z",
                "2026-11-20T09:00:00-03:00",
                "2026-11-20 12:00:00",
                "yesterday",
            ],
        }
    )
    rows = normalize(raw, _context())
    noon = datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert rows["observed_at"].to_list() == [noon, noon, noon, None]
    assert rows["parse_error"].to_list()[3] == "unparsable observed_at: 'yesterday'"
    typed = pl.DataFrame({"sku": ["1"], "observed_at": [datetime(2026, 11, 20, 12)]})
    assert normalize(typed, _context())["observed_at"].to_list() == [noon]


def test_missing_listings_are_never_priced() -> None:
    rows = missing_frame(
        [{"sku": "1", "name": "TV", "url": "https://x/1"}], _context(), "falabella:tracked"
    )
    row = rows.row(0, named=True)
    assert row["fetch_status"] == "missing"
    assert (row["price_list"], row["price_offer"], row["price_card"], row["in_stock"]) == (
        None, None, None, None,
    )  # fmt: skip
    result = validate_observations(rows, now=NOW)
    assert result.accepted.height == 1  # recorded as missing, without a price


def test_stats_call_out_a_layout_change() -> None:
    from arbx_dagster.ingestion.stats import FetchStats

    assert FetchStats(pages=3, items_seen=60, items_unparsable=2).layout_problem() is None
    assert FetchStats(pages=3, items_seen=0).layout_problem() == (
        "3 page(s) fetched but no items found"
    )
    mostly_bad = FetchStats(pages=2, items_seen=40, items_unparsable=30)
    assert mostly_bad.layout_problem() == "30 of 40 items unparsable (75% > 50%)"
    total = FetchStats.total([mostly_bad, FetchStats(pages=1, items_seen=40)])
    assert (total.pages, total.items_seen, total.layout_problem()) == (3, 80, None)
    assert total.as_metadata()["items_unparsable"] == 30


def test_a_price_beyond_any_price_is_unparsable_not_missing() -> None:
    rows = _rows({"sku": "1", "name": "TV", "price_offer": 1e23})
    [row] = rows.select("price_offer", "parse_error").rows()
    assert row[0] is None and row[1].startswith("unparsable price_offer: '9999")
    [reason] = validate_observations(rows, now=NOW).quarantined["reason"].to_list()
    assert reason != "no price on a successful fetch"
