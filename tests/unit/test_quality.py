"""Malformed observations are quarantined with a reason; good rows still land."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _observations(**overrides: list) -> pl.DataFrame:
    n = len(next(iter(overrides.values()))) if overrides else 1
    base = {
        "retailer": ["falabella"] * n,
        "sku": [f"{i}" for i in range(n)],
        "name": ["Smart TV 55"] * n,
        "price_list": [499_990] * n,
        "price_offer": [399_990] * n,
        "price_card": [None] * n,
        "currency": ["CLP"] * n,
        "observed_at": [NOW - timedelta(hours=1)] * n,
        "fetch_status": ["ok"] * n,
        "source": ["test"] * n,
    }
    base.update(overrides)
    return conform(pl.DataFrame(base, strict=False), RAW_PRICE_SCHEMA)


def test_good_rows_are_accepted_untouched() -> None:
    rows = _observations()
    result = validate_observations(rows, now=NOW)
    assert result.quarantined.is_empty()
    assert result.accepted.equals(rows)


def test_each_kind_of_bad_row_gets_its_reason_and_counts_add_up() -> None:
    rows = _observations(
        sku=["ok", None, "usd", "neg", "huge", "none", "inverted", "future"],
        currency=["CLP", "CLP", "USD", "CLP", "CLP", "CLP", "CLP", "CLP"],
        price_offer=[399_990, 399_990, 399_990, -5, 900_000_000, None, 2_000_000, 399_990],
        price_list=[499_990, 499_990, 499_990, 499_990, 499_990, None, 499_990, 499_990],
        observed_at=[NOW] * 7 + [NOW + timedelta(days=2)],
    )
    result = validate_observations(rows, now=NOW, source_location="fixture.csv")
    assert result.accepted["sku"].to_list() == ["ok"]
    assert result.accepted.height + result.quarantined.height == rows.height
    reasons = dict(
        zip(result.quarantined["source_location"], result.quarantined["reason"], strict=True)
    )
    assert reasons == {
        "fixture.csv:1": "missing sku",
        "fixture.csv:2": "unsupported currency (expected CLP)",
        "fixture.csv:3": "non-positive price",
        "fixture.csv:4": "implausible price",
        "fixture.csv:5": "no price on a successful fetch",
        "fixture.csv:6": "offer price far above list price",
        "fixture.csv:7": "observed_at in the future",
    }


def test_quarantined_rows_keep_the_original_record_and_a_stable_hash() -> None:
    rows = _observations(price_offer=[0])
    first = validate_observations(rows, now=NOW).quarantined
    again = validate_observations(rows, now=NOW).quarantined
    assert '"price_offer":0' in first["raw_record"].item()
    assert first["record_hash"].item() == again["record_hash"].item()
    assert validate_observations(rows, now=NOW).reasons == {"non-positive price": 1}


def test_a_repeated_observation_keeps_its_last_copy_and_quarantines_the_rest() -> None:
    rows = _observations(sku=["a", "a", "b"], price_offer=[399_990, 389_990, 399_990])
    result = validate_observations(rows, now=NOW)
    assert result.accepted.select("sku", "price_offer").rows() == [("a", 389_990), ("b", 399_990)]
    assert result.quarantined["reason"].to_list() == [
        "conflicting duplicate (a later row has the same key, other values)"
    ]


def test_an_exact_duplicate_at_another_line_is_called_what_it_is() -> None:
    rows = _observations(sku=["a", "a"], price_offer=[399_990, 399_990]).with_columns(
        source_location=pl.Series(["feed.csv:2", "feed.csv:3"])
    )
    result = validate_observations(rows, now=NOW)
    assert result.accepted.select("sku", "price_offer").rows() == [("a", 399_990)]
    assert result.quarantined.select("source_location", "reason").rows() == [
        ("feed.csv:2", "exact duplicate (the same row appears again later)")
    ]


def test_an_invalid_row_does_not_shadow_a_valid_duplicate() -> None:
    rows = _observations(sku=["a", "a"], price_offer=[399_990, -1])
    result = validate_observations(rows, now=NOW)
    assert result.accepted["price_offer"].to_list() == [399_990]
    assert result.quarantined["reason"].to_list() == ["non-positive price"]


def test_an_identical_observation_delivered_twice_is_collapsed_not_quarantined() -> None:
    rows = pl.concat([_observations(sku=["a", "b"]), _observations(sku=["a"])])
    result = validate_observations(rows, now=NOW)
    assert result.accepted["sku"].sort().to_list() == ["a", "b"]
    assert result.quarantined.is_empty()
    assert result.repeated == 1
    assert rows.height == result.accepted.height + result.quarantined.height + result.repeated


def test_a_parse_error_from_the_connector_is_the_reason() -> None:
    rows = _observations(price_offer=[None], price_list=[None]).with_columns(
        parse_error=pl.lit("unparsable price_offer: 'Consultar precio' (not a CLP amount)")
    )
    result = validate_observations(rows, now=NOW)
    assert result.quarantined["reason"].to_list() == [
        "unparsable price_offer: 'Consultar precio' (not a CLP amount)"
    ]


def test_a_listing_reported_missing_lands_without_a_price_or_a_name() -> None:
    missing = _observations(
        fetch_status=["missing"], name=[None], price_offer=[None], price_list=[None]
    )
    priced_missing = _observations(fetch_status=["missing"], sku=["x"])
    result = validate_observations(pl.concat([missing, priced_missing]), now=NOW)
    assert result.accepted.select("fetch_status", "price_offer").rows() == [("missing", None)]
    assert result.quarantined["reason"].to_list() == ["price on a listing reported missing"]
