"""Chilean price text is read exactly, or not at all (a wrong price is worse than none)."""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.ingestion.prices import PriceParseError, clp_error_expr, clp_expr, parse_clp

READABLE = [
    ("$1.299.990", 1_299_990),
    ("$ 1.299.990", 1_299_990),
    ("1.299.990", 1_299_990),
    ("1299990", 1_299_990),
    ("$999", 999),
    ("$4", 4),
    ("Normal: $1.499.990", 1_499_990),
    ("Tarjeta Cencosud $849.990", 849_990),
    ("$1.299.990 CLP", 1_299_990),
    ("CLP 12.990", 12_990),
    ("$12.990,00", 12_990),
    ("  $29.990\n", 29_990),
    ("-$1.000", -1_000),  # read as shown; the validator quarantines non-positive prices
    ("$0", 0),
]
UNREADABLE = [
    "Consultar precio",  # no amount
    "2x $9.990",  # several amounts
    "$9.990 - $19.990",  # a range
    "US$ 1.299",  # another currency
    "USD 499",
    "€ 49",
    "12.99",  # a decimal point is not a thousands separator
    "1,299,990",  # US grouping
    "$1.29",
    "$12.990,50",  # fractional pesos
]


@pytest.mark.parametrize(("text", "expected"), READABLE)
def test_chilean_price_text_is_read_exactly(text: str, expected: int) -> None:
    assert parse_clp(text) == expected


@pytest.mark.parametrize("text", UNREADABLE)
def test_ambiguous_or_foreign_price_text_is_an_error(text: str) -> None:
    with pytest.raises(PriceParseError):
        parse_clp(text)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_price_shown_is_none_never_zero(value: object) -> None:
    assert parse_clp(value) is None


def test_numbers_from_json() -> None:
    assert parse_clp(1_299_990) == 1_299_990
    assert parse_clp(1_299_990.0) == 1_299_990
    for bad in (1299.5, float("nan"), True):
        with pytest.raises(PriceParseError):
            parse_clp(bad)


def test_vectorised_parser_agrees_with_the_scalar_one() -> None:
    texts = [t for t, _ in READABLE] + UNREADABLE + [None, ""]
    frame = pl.DataFrame({"p": texts}, schema={"p": pl.String}).select(
        value=clp_expr(pl.col("p")), bad=clp_error_expr(pl.col("p"))
    )
    for text, value, bad in zip(texts, frame["value"], frame["bad"], strict=True):
        try:
            expected, expected_bad = parse_clp(text), False
        except PriceParseError:
            expected, expected_bad = None, True
        assert (value, bad) == (expected, expected_bad), text
