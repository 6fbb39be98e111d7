"""Canonical ids survive re-matching while a product's membership drifts."""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.matching import MatchResult
from arbx_dagster.domain.matching.clustering import carry_over_canonical_ids
from arbx_dagster.domain.schema import CANONICAL_PRODUCT_SCHEMA, PRODUCT_MATCH_SCHEMA


def matches(groups: dict[str, list[str]]) -> pl.DataFrame:
    """Product matches from ``{canonical_id: ['falabella:1', 'paris:2', ...]}``."""
    rows = [
        (key.split(":")[0], key.split(":")[1], cid, 0.9)
        for cid, keys in groups.items()
        for key in keys
    ]
    return pl.DataFrame(rows, schema=PRODUCT_MATCH_SCHEMA, orient="row")


def ids(frame: pl.DataFrame) -> dict[str, str]:
    return {
        f"{r}:{s}": c for r, s, c in frame.select("retailer", "sku", "canonical_id").iter_rows()
    }


def test_a_product_that_gains_a_listing_keeps_its_id() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1"]})
    current = matches({"cp_new": ["falabella:1", "ripley:1", "paris:1"]})
    assert set(ids(carry_over_canonical_ids(previous, current)).values()) == {"cp_old"}


def test_a_product_that_loses_a_delisted_listing_keeps_its_id() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1", "paris:1"]})
    current = matches({"cp_new": ["falabella:1", "ripley:1"]})  # paris:1 is gone
    assert set(ids(carry_over_canonical_ids(previous, current)).values()) == {"cp_old"}


def test_a_replaced_partner_keeps_the_id_when_the_old_one_was_delisted() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1"]})
    current = matches({"cp_new": ["falabella:1", "ripley:9"]})  # ripley:1 delisted
    assert ids(carry_over_canonical_ids(previous, current))["falabella:1"] == "cp_old"


def test_a_split_product_gives_the_id_to_neither_half() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1"]})
    current = matches({"cp_a": ["falabella:1"], "cp_b": ["ripley:1"]})
    out = ids(carry_over_canonical_ids(previous, current))
    assert out == {"falabella:1": "cp_a", "ripley:1": "cp_b"}


def test_a_merge_keeps_the_id_of_the_larger_part() -> None:
    previous = matches(
        {"cp_big": ["falabella:1", "ripley:1", "paris:1"], "cp_small": ["falabella:9"]}
    )
    current = matches({"cp_new": ["falabella:1", "ripley:1", "paris:1", "falabella:9"]})
    assert set(ids(carry_over_canonical_ids(previous, current)).values()) == {"cp_big"}


def test_each_previous_id_is_carried_at_most_once() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1", "paris:1", "falabella:2"]})
    current = matches({"cp_a": ["falabella:1", "ripley:1"], "cp_b": ["paris:1", "falabella:2"]})
    out = carry_over_canonical_ids(previous, current)
    assert out.group_by("canonical_id").len()["len"].to_list() == [2, 2]
    assert "cp_old" not in out["canonical_id"].to_list()  # no strict majority either side


def test_new_products_and_unchanged_ones() -> None:
    previous = matches({"cp_1": ["falabella:1", "paris:1"]})
    current = matches({"cp_1": ["falabella:1", "paris:1"], "cp_2": ["ripley:5"]})
    out = carry_over_canonical_ids(previous, current)
    assert ids(out) == ids(current)
    assert out.schema == current.schema and out.height == current.height


def test_a_fresh_id_never_collides_with_a_carried_one() -> None:
    # cp_x (fresh hash of ripley:7) happens to equal the id carried by another product
    previous = matches({"cp_x": ["falabella:1", "paris:1"]})
    current = matches({"cp_y": ["falabella:1", "paris:1"], "cp_x": ["ripley:7"]})
    out = ids(carry_over_canonical_ids(previous, current))
    assert out["falabella:1"] == "cp_x"
    assert out["ripley:7"] not in {"cp_x", "cp_y"}


def test_a_match_result_renames_its_canonical_products_too() -> None:
    previous = matches({"cp_old": ["falabella:1", "ripley:1"]})
    current = matches({"cp_new": ["falabella:1", "ripley:1", "paris:1"], "cp_z": ["paris:2"]})
    products = pl.DataFrame(
        [("cp_new", "TV", None, None, None, 3, 3), ("cp_z", "Radio", None, None, None, 1, 1)],
        schema=CANONICAL_PRODUCT_SCHEMA,
        orient="row",
    )
    result = MatchResult(pl.DataFrame(), current, products).carry_over(previous)
    assert set(result.canonical_products["canonical_id"]) == {"cp_old", "cp_z"}
    assert set(result.product_matches["canonical_id"]) == {"cp_old", "cp_z"}
    assert result.canonical_products.schema == products.schema
