"""Training pairs for the pipeline's model, from one set of enriched listings.

``labelled_pairs`` turns listings into training rows: the candidate pairs the blocker
proposes, labelled from a ground truth (a simulated market's: realistic hard negatives,
siblings that differ by size, capacity, colour or generation, see
``simulated_listings``) and the pairs users confirmed or rejected (``LABEL_SCHEMA``),
featurised against the current listings, block by block as the pipeline matches them.
The model the pipeline uses is built from such rows and public benchmarks by
``transfer`` / ``shipped``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.domain.matching.blocking import (
    DEFAULT_NEIGHBOURS,
    candidate_pairs,
    keyed_pairs,
)
from arbx_dagster.domain.matching.blocks import assign_blocks
from arbx_dagster.domain.matching.candidate_context import context_for_queries
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS, PairFeaturizer
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.training import LABEL
from arbx_dagster.domain.matching.vectorize import text_vectors
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform

# The labelled-pairs frame (``storage.labels.read_labels``) as the trainer reads it.
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "left_retailer": pl.String(),
    "left_sku": pl.String(),
    "right_retailer": pl.String(),
    "right_sku": pl.String(),
    "is_match": pl.Boolean(),
}
DEFAULT_SIMULATOR_SEED = 1009  # not a market the demo (7) or the tests use
DEFAULT_SIMULATOR_PRODUCTS = 1500


def labelled_pairs(
    listings: pl.DataFrame,
    *,
    truth: pl.DataFrame | None = None,
    labels: pl.DataFrame | None = None,
    k: int = DEFAULT_NEIGHBOURS,
) -> pl.DataFrame:
    """Feature rows with ``label`` for training, from one set of enriched listings.

    * ``truth`` (``retailer, sku, true_product_id``): every candidate pair the blocker
      proposes is labelled 1 when both listings are the same true product, else 0;
    * ``labels`` (``LABEL_SCHEMA``: user decisions): those pairs are added (or override
      the truth) with their own label and ``source = 'user'``, featurised against these
      listings (their context: inserted alone among the blocker's candidates).

    Pairs are featurised inside their match block, as the pipeline matches them
    (``engine.match_by_block``: small catalogues, like the simulated training markets,
    are one block). Returns ``FEATURE_COLUMNS``, ``label``, ``source``, the pair's
    listing keys and titles (``TITLE_COLUMNS``); pairs whose listings are not in
    ``listings``, or lie in two different match blocks (the matcher never compares
    those), are skipped.
    """
    records = matching_records(listings.sort("retailer", "sku"))
    keys = records.select("idx", "retailer", "sku")
    block_of = assign_blocks(records)
    user = _user_pairs(records, labels)
    out = []
    every_candidate = []
    # Featurised block by block, as the pipeline matches (``engine.match_by_block``).
    blocked = records.with_columns(block=block_of)
    for _, members in blocked.group_by("block", maintain_order=True):
        rows, candidates = _block_rows(
            members.drop("block"), keys, truth, user, k=k, catalogue_size=records.height
        )
        out.extend(rows)
        every_candidate.append(candidates)
    done = [f.filter(pl.col("source") == "user").select("i", "j") for f in out]
    across = user.join(pl.concat(done), on=["i", "j"], how="anti") if done else user
    if across.height:
        out.append(_user_rows_across_blocks(records, across, every_candidate))
    if not out:
        return pl.DataFrame(
            schema={"i": pl.Int64, "j": pl.Int64}
            | dict.fromkeys(FEATURE_COLUMNS, pl.Float64)
            | {LABEL: pl.Int8, "source": pl.String}
        )
    frame = pl.concat(out, how="diagonal_relaxed")
    # a user's decision overrides the simulator's label of the same pair
    frame = frame.sort(pl.col("source") == "user", descending=True).unique(
        ["i", "j"], keep="first", maintain_order=True
    )
    return _with_listing_keys(frame, records)


def _block_rows(
    part: pl.DataFrame,
    keys: pl.DataFrame,
    truth: pl.DataFrame | None,
    user: pl.DataFrame,
    *,
    k: int,
    catalogue_size: int,
) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """``(rows, candidates)`` of one match block (``part``: its records): the labelled
    rows (candidates labelled from ``truth``, then the user pairs inside the block) and
    every candidate's ``i, j, cosine``, all in catalogue ids."""
    local = part.with_columns(idx=pl.int_range(pl.len(), dtype=pl.Int64))
    to_global = part["idx"].to_numpy()
    vectors = text_vectors(local["text"])
    pairs, _ = candidate_pairs(local, vectors.matrix, k=k, catalogue_size=catalogue_size)
    featurizer = PairFeaturizer(local, vectors)
    candidates = _to_global(featurizer.features(pairs.select("i", "j")), to_global)
    rows = []
    if truth is not None:
        rows.append(_truth_labels(candidates, keys, truth))
    mine = _to_local(user, to_global)
    if mine.height:
        base = featurizer.base(mine.select("i", "j"))
        context = context_for_queries(
            base.select("i", "j", "cosine"),
            _to_local(candidates, to_global).select("i", "j", "cosine"),
            local,
        )
        rows.append(
            pl.concat(
                [_to_global(base, to_global), context.drop("i", "j"), mine.select(LABEL)],
                how="horizontal",
            ).with_columns(pl.lit("user").alias("source"))
        )
    return rows, candidates.select("i", "j", "cosine")


def _user_rows_across_blocks(
    records: pl.DataFrame, across: pl.DataFrame, every_candidate: list[pl.DataFrame]
) -> pl.DataFrame:
    """User pairs that join listings of two blocks (a product filed on an unusual shelf),
    featurised against the whole catalogue, so the decision is never lost."""
    vectors = text_vectors(records["text"])
    base = PairFeaturizer(records, vectors).base(across.select("i", "j"))
    known = pl.concat(every_candidate) if every_candidate else base.select("i", "j", "cosine")
    context = context_for_queries(base.select("i", "j", "cosine"), known, records)
    return pl.concat(
        [base, context.drop("i", "j"), across.select(LABEL)], how="horizontal"
    ).with_columns(pl.lit("user").alias("source"))


def _with_listing_keys(frame: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (pairs ``i, j``) with both listings' retailer, sku and title."""
    named = records.select("idx", "retailer", "sku", "name_norm")
    return frame.join(
        named.rename(
            {"idx": "i", "retailer": "left_retailer", "sku": "left_sku", "name_norm": "left_title"}
        ),
        on="i",
    ).join(
        named.rename(
            {
                "idx": "j",
                "retailer": "right_retailer",
                "sku": "right_sku",
                "name_norm": "right_title",
            }
        ),
        on="j",
    )


def _to_global(frame: pl.DataFrame, to_global: np.ndarray) -> pl.DataFrame:
    """Block-local ``i, j`` to the catalogue's ``idx``."""
    lookup = pl.Series(to_global)
    return frame.with_columns(
        i=lookup.gather(frame["i"].to_numpy()), j=lookup.gather(frame["j"].to_numpy())
    )


def _to_local(frame: pl.DataFrame, to_global: np.ndarray) -> pl.DataFrame:
    """The rows of ``frame`` (catalogue ``i, j``) inside one block, with block-local ids."""
    local = pl.DataFrame({"g": to_global, "l": np.arange(len(to_global))})
    return (
        frame.join(local.rename({"g": "i", "l": "li"}), on="i")
        .join(local.rename({"g": "j", "l": "lj"}), on="j")
        .with_columns(i=pl.col("li"), j=pl.col("lj"))
        .drop("li", "lj")
    )


def _truth_labels(
    candidates: pl.DataFrame, keys: pl.DataFrame, truth: pl.DataFrame
) -> pl.DataFrame:
    """Candidates labelled 1 when both listings are the same true product, else 0."""
    pid = keys.join(
        truth.select("retailer", "sku", "true_product_id"), on=["retailer", "sku"], how="left"
    ).select("idx", "true_product_id")
    return (
        candidates.join(pid.rename({"idx": "i", "true_product_id": "pi"}), on="i", how="left")
        .join(pid.rename({"idx": "j", "true_product_id": "pj"}), on="j", how="left")
        .with_columns(
            pl.when(pl.col("pi").is_null() | pl.col("pj").is_null())
            .then(None)
            .otherwise((pl.col("pi") == pl.col("pj")).cast(pl.Int8))
            .alias(LABEL),
            pl.lit("simulator").alias("source"),
        )
        .drop_nulls(LABEL)
        .drop("pi", "pj")
    )


def _user_pairs(records: pl.DataFrame, labels: pl.DataFrame | None) -> pl.DataFrame:
    """User labels as ``i, j, label`` over ``records`` (smaller retailer on the ``i`` side)."""
    if labels is None or labels.height == 0:
        return pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64, LABEL: pl.Int8})
    return (
        keyed_pairs(records, labels.select(*LABEL_SCHEMA))
        .select("i", "j", pl.col("is_match").cast(pl.Int8).alias(LABEL))
        .unique(["i", "j"], keep="last")
    )


def simulated_listings(
    seed: int, n_products: int = DEFAULT_SIMULATOR_PRODUCTS
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(listings, truth)`` of a one-day simulated market, enriched as the pipeline does."""
    from arbx_dagster.domain.simulator import SimulatorConfig, simulate_market

    market = simulate_market(
        SimulatorConfig(
            seed=seed,
            n_products=n_products,
            days=1,
            glitch_rate=0.0,
            gap_rate=0.0,
            malformed_rate=0.0,
            late_listing_rate=0.0,
        )
    )
    latest = (
        market.observations.filter(pl.col("name").is_not_null())
        .sort("observed_at")
        .unique(["retailer", "sku"], keep="last", maintain_order=True)
    )
    listings = conform(enrich_listings(latest), LISTING_SCHEMA)
    return listings, market.truth_listings
