"""A market, not a country: money settings and amounts follow the market's currency."""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.config import Thresholds, money_defaults, rebased_money, setting_key
from arbx_dagster.domain.glitch_kinds import glitch_type, severity
from arbx_dagster.ingestion.columns import guess_columns
from arbx_dagster.reporting.format import money


def test_amounts_are_shown_in_the_markets_currency() -> None:
    assert money(1_299_990) == "$1.299.990"
    assert money(184_977, "USD") == "USD 1,849.77"
    assert money(None, "EUR") == "—"


def test_default_money_thresholds_move_with_the_currency_and_choices_stay() -> None:
    assert money_defaults("CLP") == {"min_margin_clp": 10_000, "high_margin_clp": 50_000}
    assert money_defaults("USD") == {"min_margin_clp": 1_000, "high_margin_clp": 5_000}
    assert rebased_money(Thresholds(), "USD") == {"min_margin_clp": 1_000, "high_margin_clp": 5_000}
    chosen = Thresholds(min_margin_clp=25_000)
    assert rebased_money(chosen, "USD") == {"high_margin_clp": 5_000}
    assert rebased_money(Thresholds(), "CLP") == {}


def test_export_columns_are_read_by_their_usual_names_and_the_mapping_wins() -> None:
    header = ["ID", "Product Title", "sale-price", "MSRP", "UPC", "description", "stock"]
    assert guess_columns(header, {}) == {
        "sku": "ID",
        "name": "Product Title",
        "ean": "UPC",
        "price_offer": "sale-price",
        "price_list": "MSRP",
    }
    # what the source maps explicitly wins, and a column serves one field
    assert guess_columns(["id", "codigo", "title"], {"sku": "codigo"}) == {
        "sku": "codigo",
        "name": "title",
    }


def test_glitch_kinds_and_floors_follow_the_markets_currency() -> None:
    frame = pl.DataFrame({"price": [100, 5], "ref": [90_000, 90_000], "pack": [None, None]})
    kinds = [
        glitch_type(pl.col("price"), pl.col("ref"), pl.col("pack").cast(pl.Int32), code)
        for code in ("CLP", "USD")
    ]
    clp_kinds, usd_kinds = (frame.select(k.alias("kind"))["kind"].to_list() for k in kinds)
    # 100 against 90.000 pesos is a price typed in dollars; in a dollar market it is not
    assert clp_kinds == ["currency", "implausible"]
    assert usd_kinds == ["deep_discount", "implausible"]  # USD 1.00 may be real; 0.05 not
    below = pl.select(
        clp=severity(pl.lit(50), pl.lit(100), Thresholds()),  # under CLP 100: a mistake
        usd=severity(pl.lit(50), pl.lit(100), Thresholds(currency="USD")),  # USD 0.50: no
    ).row(0)
    assert below == ("high", "low")


def test_money_settings_answer_to_their_currency_neutral_names() -> None:
    assert setting_key("min_margin") == "min_margin_clp"
    assert setting_key("shipping_cost") == "shipping_cost_clp"
    assert setting_key("min_roi_pct") == "min_roi_pct"
