"""Cross-retailer product matching.

``match_listings`` takes enriched listings (``LISTING_SCHEMA``, see
``normalize.enrich_listings``) from several retailers and returns which listings are the
same product. One module per concern:

* ``titles`` / ``brands`` / ``model_codes`` - folded titles and units, canonical brands,
  model codes and their stems;
* ``normalize``  - enriched listings and the matcher's records built from them;
* ``vectorize``  - TF-IDF of character n-grams and words, built with NumPy;
* ``blocking``   - candidate pairs: shared model codes + TF-IDF top-k per other retailer;
* ``features``   - a feature frame per candidate pair (the contract for any scorer), from
  ``listing_features``, ``item_sets``, ``text_similarity``, ``pair_evidence`` and
  ``candidate_context`` (how a pair ranks among each listing's candidates);
* ``scoring``    - the transparent rule scorer (fallback) and the scikit-learn adapter;
* ``training``   - the learned scorer: training, threshold, version, serialisation;
* ``training_pairs`` - its training rows: simulated markets and user decisions, labelled;
* ``tokens``     - word weights learned from a catalogue's own labelled pairs;
* ``lexicon`` / ``variants`` - words of identity: tiers, colours, versions, accessories,
  kits, exclusive forms, conditions, and the pair features they give;
* ``corpus`` / ``transfer`` / ``shipped`` - the model ArbX ships: labelled pairs from the
  simulated market and public benchmarks, a recipe calibrated on held-out markets, and
  the files ``arbx model build`` writes;
* ``clustering`` - one-to-one per retailer pair, transitive clusters, canonical ids and
  their carry-over from one run to the next;
* ``blocks``     - match blocks: categories linked by shared model codes, units of
  parallel (and partitioned) work;
* ``engine``     - ``match_listings`` / ``match_by_block``: all of the above in order;
* ``benchmark``  - loading two-catalogue benchmarks and scoring the matcher on them.

Plain Python + Polars + rapidfuzz + scikit-learn: no Dagster in here.
"""

from __future__ import annotations

from arbx_dagster.domain.matching.clustering import carry_over_canonical_ids
from arbx_dagster.domain.matching.engine import (
    MatchResult,
    assign,
    match_by_block,
    match_listings,
)
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS, pair_features
from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.matching.scoring import PairScorer, RuleScorer, SklearnPairScorer
from arbx_dagster.domain.matching.training import (
    ModelSettings,
    TrainedPairModel,
    train_pair_model,
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
    "match_by_block",
    "match_listings",
    "pair_features",
    "train_pair_model",
]
