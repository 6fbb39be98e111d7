"""The labelled pairs ArbX's shipped match model learns from, one source at a time.

A source is a market the model can learn what "the same product" looks like in: the
simulated Chilean market (Spanish titles, the blocker's own candidates, labelled by the
simulator's truth) and public product-matching benchmarks (English and multilingual
titles written by real shops). Every row is a pair's ``FEATURE_COLUMNS``, its ``label``,
its ``source`` and the two titles. Only the ``train`` and ``valid`` splits of a benchmark
are read: its ``test`` split stays unseen. A benchmark with catalogues contributes the
blocker's candidates over them labelled by its ``matches.csv`` (pairs with a real
catalogue around them, context included) plus its labelled pairs located there; a
benchmark of pairs only contributes its labelled pairs (no context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl

from arbx_dagster.domain.matching.blocking import keyed_pairs
from arbx_dagster.domain.matching.evaluation import Benchmark, BenchmarkFrames, benchmark_frames
from arbx_dagster.domain.matching.features import (
    FEATURE_COLUMNS,
)
from arbx_dagster.domain.matching.training import LABEL, TITLE_COLUMNS
from arbx_dagster.domain.matching.training_pairs import (
    DEFAULT_SIMULATOR_PRODUCTS,
    DEFAULT_SIMULATOR_SEED,
    labelled_pairs,
    simulated_listings,
)

SIMULATOR = "simulator"
CORPUS_SPLITS = ("train", "valid")
CORPUS_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    **{name: pl.Float32() for name in FEATURE_COLUMNS},
    LABEL: pl.Int8(),
    **{name: pl.String() for name in TITLE_COLUMNS},
}

Progress = Callable[[str], None]


def _conform(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """``frame`` in ``CORPUS_SCHEMA`` (missing features NaN), tagged with ``source``."""
    missing = [c for c in CORPUS_SCHEMA if c not in frame.columns and c != "source"]
    return (
        frame.with_columns(pl.lit(float("nan")).alias(c) for c in missing)
        .with_columns(pl.lit(source).alias("source"))
        .select([pl.col(name).cast(dtype) for name, dtype in CORPUS_SCHEMA.items()])
    )


def simulator_source(
    seed: int = DEFAULT_SIMULATOR_SEED, n_products: int = DEFAULT_SIMULATOR_PRODUCTS
) -> pl.DataFrame:
    """The blocker's candidate pairs on a simulated market, labelled by its truth."""
    listings, truth = simulated_listings(seed, n_products)
    return _conform(labelled_pairs(listings, truth=truth), SIMULATOR)


def benchmark_source(bench: Benchmark, frames: BenchmarkFrames | None = None) -> pl.DataFrame:
    """A benchmark's labelled pairs (``CORPUS_SPLITS`` only), see the module docstring."""
    frames = frames or benchmark_frames(bench)
    if not bench.tables:
        rows = [frames.pairwise[s] for s in CORPUS_SPLITS if s in frames.pairwise]
        return _conform(pl.concat(rows, how="diagonal_relaxed"), bench.name)
    true_pairs = bench.truth.select(
        pl.lit(bench.left_retailer).alias("left_retailer"),
        "left_sku",
        pl.lit(bench.right_retailer).alias("right_retailer"),
        "right_sku",
    )
    # oriented as the blocker orients its candidates
    truth_ids = (
        keyed_pairs(frames.records, true_pairs)
        .select("i", "j", pl.lit(1, dtype=pl.Int8).alias(LABEL))
        .unique()
    )
    candidates = frames.candidates.join(truth_ids, on=["i", "j"], how="left").with_columns(
        pl.col(LABEL).fill_null(0).cast(pl.Int8)
    )
    located = [frames.catalogue_pairs[s] for s in CORPUS_SPLITS if s in frames.catalogue_pairs]
    extra = (
        pl.concat(located, how="diagonal_relaxed").join(
            candidates.select("i", "j"), on=["i", "j"], how="anti"
        )
        if located
        else candidates.head(0)
    )
    both = pl.concat([candidates, extra], how="diagonal_relaxed")
    return _conform(both, bench.name)


def build_corpus(
    benchmarks: Iterable[Benchmark],
    *,
    simulator: bool = True,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """Every source's rows in one frame (``CORPUS_SCHEMA``), sources in the order given
    (the simulated market first)."""
    say = progress or (lambda _: None)
    parts = []
    if simulator:
        say("simulated market")
        parts.append(simulator_source())
    for bench in benchmarks:
        say(bench.name)
        parts.append(benchmark_source(bench))
    if not parts:
        return pl.DataFrame(schema=CORPUS_SCHEMA)
    return pl.concat(parts)
