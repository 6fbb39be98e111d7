"""Cross-retailer product matching (unsupervised phase 1).

``match_listings`` takes enriched listings (``LISTING_SCHEMA``, see
``normalize.enrich_listings``) from several retailers and returns which listings are the
same product. One module per concern:

* ``normalize``  - folded titles, units, brands, model codes;
* ``blocking``   - candidate pairs: shared model codes + TF-IDF top-k per other retailer;
* ``features``   - a feature frame per candidate pair (the contract for any scorer);
* ``scoring``    - the transparent rule scorer (phase 1) and the learned-scorer adapter;
* ``clustering`` - one-to-one per retailer pair, transitive clusters, stable ids.

Plain Python + Polars + rapidfuzz + scikit-learn: no Dagster in here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import polars as pl

from arbx_dagster.domain.matching.blocking import candidate_pairs, tfidf_matrix
from arbx_dagster.domain.matching.clustering import build_outputs, cluster, one_to_one
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS, pair_features
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.scoring import (
    PairScorer,
    RuleScorer,
    SklearnPairScorer,
    score_pairs,
)
from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    empty,
)

__all__ = [
    "FEATURE_COLUMNS",
    "MatchResult",
    "PairScorer",
    "RuleScorer",
    "SklearnPairScorer",
    "enrich_listings",
    "match_listings",
    "pair_features",
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
      proposed it (for reporting and for labelling data for phase 2);
    * ``stats``: candidate counts and timings.
    """

    pairs: pl.DataFrame
    product_matches: pl.DataFrame
    canonical_products: pl.DataFrame
    candidates: pl.DataFrame = field(default_factory=lambda: empty(CANDIDATE_SCHEMA))
    stats: dict[str, float] = field(default_factory=dict)


def match_listings(
    listings: pl.DataFrame,
    *,
    threshold: float | None = None,
    scorer: PairScorer | None = None,
    k: int = 5,
) -> MatchResult:
    """Match enriched listings across retailers into canonical products.

    ``threshold`` is the minimum pair probability to accept (default: the scorer's own,
    0.5 for the rule scorer); ``scorer`` defaults to ``RuleScorer()``; ``k`` is how many
    nearest listings per other retailer the similarity blocker proposes for each listing.
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

    records = matching_records(listings)
    matrix = tfidf_matrix(records["text"])
    pairs, stats = candidate_pairs(records, matrix, k=k)
    timings["seconds_blocking"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    features = pair_features(records, matrix, pairs)
    scored = score_pairs(features, scorer)
    timings["seconds_scoring"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    accepted = scored.filter(pl.col("probability") >= cut)
    edges = one_to_one(accepted, records)
    membership, kept = cluster(edges, scored, records)
    out_pairs, product_matches, canonical_products = build_outputs(
        records, membership, kept, scored
    )
    timings["seconds_clustering"] = time.perf_counter() - t2

    keys = records.select("idx", "retailer", "sku")
    candidates = (
        scored.join(pairs, on=["i", "j"])
        .join(keys.rename({"idx": "i", "retailer": "left_retailer", "sku": "left_sku"}), on="i")
        .join(keys.rename({"idx": "j", "retailer": "right_retailer", "sku": "right_sku"}), on="j")
        .select(list(CANDIDATE_SCHEMA))
    )
    stats_out: dict[str, float] = {key: float(v) for key, v in stats.items()}
    stats_out.update(
        accepted_above_threshold=float(accepted.height),
        one_to_one_edges=float(edges.height),
        kept_edges=float(kept.height),
        canonical_products=float(canonical_products.height),
        **timings,
    )
    return MatchResult(out_pairs, product_matches, canonical_products, candidates, stats_out)
