"""End-to-end quality on the abt_buy benchmark (skipped when the dataset is absent).

Floors sit safely under what the unsupervised matcher measures (pair completeness
~0.993 at ~6.7 candidates per left record, P ~0.997, R ~0.89, F1 ~0.94), so a
regression fails loudly.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from arbx_dagster.bench.datasets import load_benchmark
from arbx_dagster.domain.matching import match_listings
from arbx_dagster.domain.matching.blocking import blocking_recall
from arbx_dagster.domain.matching.evaluation import pair_metrics, to_listing_frame
from arbx_dagster.domain.matching.normalize import enrich_listings


def test_abt_buy_blocking_and_matching(abt_buy_dir: Path) -> None:
    bench = load_benchmark("abt_buy", abt_buy_dir.parent)
    listings = to_listing_frame(enrich_listings(bench.listings))
    result = match_listings(listings)

    completeness = blocking_recall(result.candidates, bench.truth, bench.left_retailer)
    n_left = listings.filter(pl.col("retailer") == bench.left_retailer).height
    assert completeness["pair_completeness"] >= 0.97
    assert result.candidates.height / n_left <= 10

    metrics = pair_metrics(result.pairs, bench.truth, bench.left_retailer)
    assert metrics["precision"] >= 0.90
    assert metrics["recall"] >= 0.85
    assert metrics["f1"] >= 0.90
