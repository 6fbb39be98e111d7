"""Prices in other currencies than CLP are read into integer minor units (cents), exactly or
not at all; rows land only in a market of their currency, and CLP stays as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.config import Thresholds, coerce_setting
from arbx_dagster.domain.money import max_plausible_price
from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.ingestion.prices import (
    PriceParseError,
    parse_clp,
    parse_price,
    price_error_expr,
    price_expr,
)
from arbx_dagster.ingestion.records import RecordContext, items_frame, normalize
from arbx_dagster.ingestion.sources_file import SourcesError, parse_sources

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

READABLE = {
    "USD": [
        ("$1,299.00", 129_900),
        ("1299.99", 129_999),
        ("59.0", 5_900),
        ("59", 5_900),
        ("$0.99", 99),
        ("US$ 12.5", 1_250),
        ("USD 1,234,567.89", 123_456_789),
        ("1,299", 129_900),  # commas before three digits group thousands
        ("Sale: $249.95", 24_995),
        ("-$5.00", -500),  # read as shown; the validator quarantines non-positive prices
    ],
    "EUR": [
        ("1.299,00 €", 129_900),  # comma decimals
        ("€1,299.00", 129_900),
        ("12,5 €", 1_250),
        ("1.299.000 €", 129_900_000),  # several dot groups cannot be decimals
        ("EUR 49", 4_900),
    ],
    "GBP": [("£12.99", 1_299), ("12.99 GBP", 1_299)],
}
UNREADABLE = {
    "USD": [
        ("Call for price", "no USD amount"),
        ("2 for $30", "several amounts in USD price text"),
        ("$9.99 - $19.99", "several amounts in USD price text"),
        ("EUR 12", "USD price names another currency"),
        ("12,00 €", "USD price names another currency"),
        ("CLP 12.990", "USD price names another currency"),
        ("1299.999", "not a USD amount"),  # three decimals
        ("12.999", "not a USD amount"),  # 12,999.00, or a float with three decimals?
        ("1,299,00", "not a USD amount"),
        ("12.345.6", "not a USD amount"),
        (".99", "not a USD amount"),
    ],
    "EUR": [
        ("$12", "EUR price names another currency"),
        ("1.299.00", "not a EUR amount"),
        ("2.500 €", "not a EUR amount"),  # 2500.00 with dot grouping, or 2.5?
    ],
    "GBP": [("US$1", "GBP price names another currency")],
}


@pytest.mark.parametrize(
    ("currency", "text", "cents"), [(c, t, v) for c, rows in READABLE.items() for t, v in rows]
)
def test_two_decimal_prices_are_read_into_cents(currency: str, text: str, cents: int) -> None:
    assert parse_price(text, currency) == cents


@pytest.mark.parametrize(
    ("currency", "text", "reason"),
    [(c, t, r) for c, rows in UNREADABLE.items() for t, r in rows],
)
def test_an_unreadable_price_names_the_currency_and_the_value(
    currency: str, text: str, reason: str
) -> None:
    with pytest.raises(PriceParseError) as error:
        parse_price(text, currency)
    assert str(error.value) == f"{reason}: {text!r}"


def test_numbers_are_whole_units_and_none_is_no_price() -> None:
    assert parse_price(1299, "USD") == 129_900
    assert parse_price(59.0, "USD") == 5_900
    assert parse_price(12.99, "USD") == 1_299
    assert parse_price(None, "USD") is None
    assert parse_price("  ", "USD") is None
    for bad in (12.999, float("nan"), True):
        with pytest.raises(PriceParseError, match="USD"):
            parse_price(bad, "USD")


def test_clp_is_read_exactly_as_before() -> None:
    for value in ("$1.299.990", "Normal: $49.990", 1_299_990, "$12.990,00", None):
        assert parse_price(value, "CLP") == parse_clp(value)
    for bad in ("12.99", "US$ 1.299", "1,299,990"):
        with pytest.raises(PriceParseError):
            parse_price(bad, "CLP")
    frame = pl.DataFrame({"p": ["$1.299.990", "12.99", None]}).select(
        value=price_expr(pl.col("p"), "CLP"), bad=price_error_expr(pl.col("p"), "CLP")
    )
    assert frame.rows() == [(1_299_990, False), (None, True), (None, False)]


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="currency must be one of CLP, USD"):
        parse_price("12", "XYZ")


@pytest.mark.parametrize("currency", list(READABLE))
def test_vectorised_parser_agrees_with_the_scalar_one(currency: str) -> None:
    texts = [t for t, _ in READABLE[currency]] + [t for t, _ in UNREADABLE[currency]] + [None]
    frame = pl.DataFrame({"p": texts}, schema={"p": pl.String}).select(
        value=price_expr(pl.col("p"), currency), bad=price_error_expr(pl.col("p"), currency)
    )
    for text, value, bad in zip(texts, frame["value"], frame["bad"], strict=True):
        try:
            expected, expected_bad = parse_price(text, currency), False
        except PriceParseError:
            expected, expected_bad = None, True
        assert (value, bad) == (expected, expected_bad), text


def _usd_rows(*items: dict) -> pl.DataFrame:
    located = [{"source_location": f"file.csv:{i + 2}", **item} for i, item in enumerate(items)]
    context = RecordContext(source="test", observed_at=NOW, retailer="ripley", currency="USD")
    return normalize(items_frame(located), context)


def test_a_usd_source_lands_cents_and_says_which_currency_a_bad_price_was_not() -> None:
    rows = _usd_rows(
        {"sku": "1", "name": "Headphones", "price_list": "$349.99", "price_offer": "299.5"},
        {"sku": "2", "name": "Camera", "price_offer": "$1,299.00", "currency": "$"},
        {"sku": "3", "name": "Lens", "price_offer": "12,00 €"},
        {"sku": "4", "name": "Tripod", "price_offer": "45.00", "currency": "EUR"},
    )
    assert rows.select("sku", "price_list", "price_offer", "currency").rows() == [
        ("1", 34_999, 29_950, "USD"),
        ("2", None, 129_900, "USD"),  # '$' is the source's own currency
        ("3", None, None, "USD"),
        ("4", None, None, "EUR"),  # a row in another currency is never priced
    ]
    assert rows["parse_error"].to_list() == [
        None,
        None,
        "unparsable price_offer: '12,00 €' (not a USD amount)",
        "currency 'EUR' is not the source's (USD)",
    ]


def _observations(currency: str, offers: list[int]) -> pl.DataFrame:
    n = len(offers)
    return conform(
        pl.DataFrame(
            {
                "retailer": ["ripley"] * n,
                "sku": [str(i) for i in range(n)],
                "name": ["Headphones"] * n,
                "price_offer": offers,
                "currency": [currency] * n,
                "observed_at": [NOW - timedelta(minutes=5)] * n,
                "fetch_status": ["ok"] * n,
                "source": ["test"] * n,
            }
        ),
        RAW_PRICE_SCHEMA,
    )


def test_rows_land_only_in_a_market_of_their_currency() -> None:
    usd = _observations("USD", [29_950, 1_299_900])
    assert validate_observations(usd, now=NOW, currency="USD").quarantined.is_empty()
    in_clp_market = validate_observations(usd, now=NOW)  # the default market: CLP
    assert set(in_clp_market.quarantined["reason"]) == {"unsupported currency (expected CLP)"}
    clp = validate_observations(_observations("CLP", [399_990]), now=NOW, currency="USD")
    assert clp.quarantined["reason"].to_list() == ["unsupported currency (expected USD)"]


def test_the_plausible_ceiling_follows_the_currency() -> None:
    # USD 100,000.00 is the ceiling; a normal USD price in cents is far below it, while
    # CLP keeps its 50 million pesos
    assert max_plausible_price("USD") == 10_000_000
    assert max_plausible_price("CLP") == 50_000_000
    rows = _observations("USD", [max_plausible_price("USD"), max_plausible_price("USD") + 1])
    result = validate_observations(rows, now=NOW, currency="USD")
    assert result.accepted["sku"].to_list() == ["0"]
    assert result.quarantined["reason"].to_list() == ["implausible price"]


def test_the_market_currency_is_a_validated_setting() -> None:
    assert Thresholds().currency == "CLP"
    assert coerce_setting("currency", "usd") == "USD"
    with pytest.raises(ValueError, match="currency must be one of"):
        coerce_setting("currency", "pesos")
    assert Thresholds.from_rows(Thresholds(currency="EUR").to_rows()).currency == "EUR"


def test_a_source_currency_is_checked_when_sources_yaml_is_loaded() -> None:
    text = """
retailers:
  - name: exports
    connector: file_drop
    path: /tmp/landing
    currency: {currency}
"""
    assert parse_sources(text.format(currency="usd")).retailers[0].currency == "USD"
    with pytest.raises(SourcesError, match=r"sources.yaml:6: .*currency must be one of CLP"):
        parse_sources(text.format(currency="dollars"))
