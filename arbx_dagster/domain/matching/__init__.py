"""Cross-retailer product matching.

``match_listings`` takes enriched listings (``LISTING_SCHEMA``, see
``normalize.enrich_listings``) from several retailers and returns which listings are the
same product. One module per concern:

* ``normalize``  - folded titles, units, brands, model codes;
* ``vectorize``  - TF-IDF of character n-grams and words, built with NumPy;
* ``blocking``   - candidate pairs: shared model codes + TF-IDF top-k per other retailer;
* ``features``   - a feature frame per candidate pair (the contract for any scorer);
* ``scoring``    - the transparent rule scorer (fallback) and the scikit-learn adapter;
* ``training``   - the learned scorer: training, threshold, version, serialisation;
* ``clustering`` - one-to-one per retailer pair, transitive clusters, canonical ids and
  their carry-over from one run to the next;
* ``benchmark``  - loading two-catalogue benchmarks and scoring the matcher on them.

Plain Python + Polars + rapidfuzz + scikit-learn: no Dagster in here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import polars as pl

from arbx_dagster.domain.matching.blocking import candidate_pairs
from arbx_dagster.domain.matching.clustering import (
    build_outputs,
    carry_over_canonical_ids,
    cluster,
    one_to_one,
)
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS, PairFeaturizer, pair_features
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.scoring import (
    PairScorer,
    RuleScorer,
    SklearnPairScorer,
    score_pairs,
)
from arbx_dagster.domain.matching.training import (
    ModelSettings,
    TrainedPairModel,
    train_pair_model,
    train_pipeline_model,
)
from arbx_dagster.domain.matching.vectorize import text_vectors
from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    empty,
)

__all__ = [
    "FEATURE_COLUMNS",
    "MatchResult",
    "ModelSettings",
    "PairScorer",
    "RuleScorer",
    "SklearnPairScorer",
    "TrainedPairModel",
    "assign",
    "carry_over_canonical_ids",
    "enrich_listings",
    "match_listings",
    "pair_features",
    "train_pair_model",
    "train_pipeline_model",
]

CANDIDATE_SCHEMA: dict[str, pl.DataType] = MATCH_PAIR_SCHEMA | {
    "by_code": pl.Boolean(),
    "by_similarity": pl.Boolean(),
}


@dataclass(frozen=True)
class MatchResult:
    """What the matcher decided.

    * ``pairs``: accepted cross-retailer pairs (``MATCH_PAIR_SCHEMA``), every pair of
      listings that share a canonical product, left retailer alphabetically first;
    * ``product_matches``: every input listing exactly once (``PRODUCT_MATCH_SCHEMA``);
    * ``canonical_products``: one row per canonical product (``CANONICAL_PRODUCT_SCHEMA``);
    * ``candidates``: every scored candidate pair with its probability and which blocker
      proposed it (for reporting and for choosing pairs to label);
    * ``stats``: candidate counts and timings.
    """

    pairs: pl.DataFrame
    product_matches: pl.DataFrame
    canonical_products: pl.DataFrame
    candidates: pl.DataFrame = field(default_factory=lambda: empty(CANDIDATE_SCHEMA))
    stats: dict[str, float] = field(default_factory=dict)

    def carry_over(self, previous: pl.DataFrame) -> MatchResult:
        """This result with canonical ids carried over from ``previous`` product matches
        (see ``clustering.carry_over_canonical_ids``): ``product_matches`` and
        ``canonical_products`` renamed consistently."""
        matches = carry_over_canonical_ids(previous, self.product_matches)
        rename = (
            self.product_matches.select("retailer", "sku", pl.col("canonical_id").alias("old"))
            .join(matches.select("retailer", "sku", "canonical_id"), on=["retailer", "sku"])
            .select("old", "canonical_id")
            .unique("old")
        )
        products = (
            self.canonical_products.rename({"canonical_id": "old"})
            .join(rename, on="old", how="left")
            .with_columns(pl.coalesce("canonical_id", "old").alias("canonical_id"))
            .select(self.canonical_products.columns)
            .sort("canonical_id")
        )
        return MatchResult(self.pairs, matches, products, self.candidates, self.stats)


def assign(
    records: pl.DataFrame, scored: pl.DataFrame, threshold: float
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """From scored candidates (``i, j, probability``) to ``(pairs, product_matches,
    canonical_products, counts)``: one-to-one per retailer pair above ``threshold``, then
    transitive one-per-retailer clusters."""
    accepted = scored.filter(pl.col("probability") >= threshold)
    edges = one_to_one(accepted, records)
    membership, kept = cluster(edges, scored, records)
    pairs, product_matches, canonical_products = build_outputs(records, membership, kept, scored)
    counts = {
        "accepted_above_threshold": float(accepted.height),
        "one_to_one_edges": float(edges.height),
        "kept_edges": float(kept.height),
        "canonical_products": float(canonical_products.height),
    }
    return pairs, product_matches, canonical_products, counts


def match_listings(
    listings: pl.DataFrame,
    *,
    threshold: float | None = None,
    scorer: PairScorer | None = None,
    k: int = 5,
) -> MatchResult:
    """Match enriched listings across retailers into canonical products.

    ``scorer`` is a ``TrainedPairModel`` (see ``training.train_pipeline_model``) or any
    ``PairScorer``; it defaults to the unsupervised ``RuleScorer()``. ``threshold`` is the
    minimum pair probability to accept (default: the scorer's own). ``k`` is how many
    nearest listings per other retailer the similarity blocker proposes for each listing.
    An optional ``description`` column is used as evidence when present.
    """
    scorer = scorer or RuleScorer()
    cut = scorer.threshold if threshold is None else threshold
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if listings.height == 0:
        return MatchResult(
            empty(MATCH_PAIR_SCHEMA), empty(PRODUCT_MATCH_SCHEMA), empty(CANONICAL_PRODUCT_SCHEMA)
        )
    dupes = listings.select("retailer", "sku").is_duplicated()
    if dupes.any():
        raise ValueError("listings must hold each (retailer, sku) once")

    # A canonical row order: ties (identical titles) break the same way however the
    # listings arrive, so the same listings always give the same products.
    records = matching_records(listings.sort("retailer", "sku"))
    vectors = text_vectors(records["text"])
    pairs, stats = candidate_pairs(records, vectors.matrix, k=k)
    timings["seconds_blocking"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    features = PairFeaturizer(records, vectors).features(pairs.select("i", "j"))
    scored = score_pairs(features, scorer)
    timings["seconds_scoring"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    out_pairs, product_matches, canonical_products, counts = assign(records, scored, cut)
    timings["seconds_clustering"] = time.perf_counter() - t2

    keys = records.select("idx", "retailer", "sku")
    candidates = (
        scored.join(pairs, on=["i", "j"])
        .join(keys.rename({"idx": "i", "retailer": "left_retailer", "sku": "left_sku"}), on="i")
        .join(keys.rename({"idx": "j", "retailer": "right_retailer", "sku": "right_sku"}), on="j")
        .select(list(CANDIDATE_SCHEMA))
    )
    stats_out: dict[str, float] = {key: float(v) for key, v in stats.items()}
    stats_out.update(counts, **timings, threshold=float(cut))
    return MatchResult(out_pairs, product_matches, canonical_products, candidates, stats_out)
