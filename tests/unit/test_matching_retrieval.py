"""The candidate pool of an incremental match: the catalogue's stop keys spare reading every
title, and change nothing about which listings are found."""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.matching.retrieval import candidate_pool, retrieval_keys, stop_keys
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform
from arbx_dagster.domain.simulator import simulate_snapshot

KEY = ["retailer", "sku"]


@pytest.fixture(scope="module")
def catalogue() -> pl.DataFrame:
    listings = conform(
        enrich_listings(simulate_snapshot(3_000, seed=9).observations), LISTING_SCHEMA
    )
    return listings.unique(KEY, keep="last").sort(KEY).with_columns(block=pl.lit("all"))


@pytest.mark.parametrize("max_postings", [5, 40, 400])
def test_stop_keys_give_the_pool_reading_every_title_gives(catalogue, max_postings) -> None:
    seeds = catalogue.select(KEY).sample(60, seed=max_postings)
    stop = stop_keys(catalogue, max_postings)
    assert stop.height > 0  # the limit is low enough for the catalogue to have some

    spared = candidate_pool(catalogue, seeds, stop, max_postings=max_postings)
    read_all = candidate_pool(catalogue, seeds, None, max_postings=max_postings)

    assert spared.sort(KEY).equals(read_all.sort(KEY))
    assert spared.height > 0


def test_a_stop_key_is_held_by_more_listings_than_the_limit(catalogue) -> None:
    rows = catalogue.select("name_norm", "model_codes").with_row_index("row")
    postings = retrieval_keys(rows.lazy()).unique().group_by("key").len().collect()
    stop = set(stop_keys(catalogue, 40)["key"].to_list())
    assert stop == set(postings.filter(pl.col("len") > 40)["key"].to_list())


def test_every_key_reads_as_text_in_its_own_listing(catalogue) -> None:
    rows = catalogue.select("name_norm", "model_codes").with_row_index("row").head(500)
    keyed = retrieval_keys(rows.lazy(), texts=True).collect().join(rows, on="row")
    inside = pl.struct("field", "text", "name_norm", "model_codes").map_elements(
        lambda r: r["text"] in (r[r["field"]] or ""), return_dtype=pl.Boolean
    )
    assert keyed.select(inside.all()).item()  # what the multi-pattern scan relies on
