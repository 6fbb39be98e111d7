"""Pair features, computed in bulk for every candidate pair.

``pair_features`` returns one row per candidate (``i``, ``j`` plus the columns in
``FEATURE_COLUMNS``, all Float64). That frame is the contract between blocking and
scoring: the rule scorer reads it and the learned classifier is fit on it (NaN marks
"not applicable", e.g. a price that one store does not show, which gradient-boosted trees
take natively).

Three groups:

* text: TF-IDF cosines (character, word), IDF-weighted word overlap, edit-distance ratios;
* evidence: model codes (shared, found inside the other title, how rare they are, missing
  on the other side), units and numbers that agree or conflict, tier and colour words,
  brand, category, price;
* context (``CONTEXT_FEATURES``): how the pair ranks among each listing's candidates at
  the other retailer (rank, gap to the best, margin over the second best, mutual best).
  They need every candidate of both listings in the frame, which ``pair_features`` has
  when it is given the blocker's full output.

Everything is vectorised. Sets per listing (codes, units, numbers, tier words, colours...)
become rows of one sparse 0/1 matrix, so "how many X do the two listings share" for all
pairs is a single row-wise sparse product; string similarities use
``rapidfuzz.process.cpdist`` (C++); containment checks use Polars string kernels.

This module names the features and runs them in order (``PairFeaturizer``); the work is
done by ``listing_features`` (per-listing inputs), ``item_sets`` (set counts),
``text_similarity`` (cosines, string ratios), ``pair_evidence`` (codes, brand, category,
price), ``variants``, ``tokens`` and ``candidate_context`` (``CONTEXT_FEATURES``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.domain.matching.candidate_context import CONTEXT_FEATURES, context_features
from arbx_dagster.domain.matching.item_sets import SET_KINDS, ItemSets, set_counts
from arbx_dagster.domain.matching.listing_features import record_features
from arbx_dagster.domain.matching.pair_evidence import (
    code_evidence,
    code_idf,
    evidence_features,
    lost_short_codes,
    near_miss,
    words_numbered_one_side,
)
from arbx_dagster.domain.matching.text_similarity import (
    ListingStrings,
    StackedVectors,
    vector_features,
)
from arbx_dagster.domain.matching.tokens import TokenEvidence
from arbx_dagster.domain.matching.variants import VARIANT_FEATURES, VariantEvidence
from arbx_dagster.domain.matching.vectorize import TextVectors

BASE_FEATURES: tuple[str, ...] = (
    # title similarity (0..1)
    "cosine",  # TF-IDF cosine of title + codes (mean of the two below)
    "char_cosine",  # character 4-grams: robust to typos and glued/split codes
    "word_cosine",  # whole words
    "idf_jaccard",  # IDF mass of shared words / IDF mass of all words of the two titles
    "idf_containment",  # IDF mass of shared words / IDF mass of the smaller title
    "token_set",  # rapidfuzz token_set_ratio: one title's words are a subset of the other's
    "token_sort",  # same words, any order (ratio of the sorted word lists)
    "ratio",  # plain normalised Indel similarity
    "len_ratio",  # shorter / longer title, in tokens
    # model codes
    "both_codes",  # 1 if both listings carry at least one code
    "code_exact",  # a full code in common
    "code_stem",  # a code or its stem in common (colour / region suffix differs)
    "code_contained",  # a main code of one appears inside the other's compact title
    "code_similarity",  # normalised Levenshtein similarity of the primary codes
    "code_conflict",  # both have codes and none of the above holds
    "short_code_conflict",  # both have short model tokens (a8, m2, x85l) the other lacks
    "code_share_min",  # share of a side's codes found in the other's de-spaced text (min)
    "code_share_max",  # ... (max of the two sides); NaN when neither side has codes
    "code_share_desc",  # as code_share_max, also searching descriptions; NaN without any
    "code_found_idf",  # rarity (IDF among listings) of the rarest code found on both sides
    "code_missing_idf",  # rarity of the rarest code of one side the other does not have
    "code_found_len",  # length of the longest code both have ('SE9' is weak, 'DTSE9G2' not)
    "code_missing_len",  # length of the longest code of one side the other lacks, even as a stem
    "code_near_miss",  # similarity of two main codes that differ and neither title contains
    # the other's ('70DG007QUX' vs '70DG006QUX', 'HX426C15FB' vs 'HX424C15FB'); 0 when none
    # numbers and units
    "unit_shared",  # units whose values agree (55in, 128gb; 24.7cuft ~ 25cuft)
    "unit_conflict",  # units on both sides with values the other lacks (128gb vs 256gb)
    "unit_one_side",  # units mentioned by one side only
    "unit_disjoint",  # units on both sides without a value in common (64gb vs 16gb, while
    # '8gb 256gb' vs '8gb 128gb' conflicts on gb but is not disjoint)
    "number_shared",  # plain numbers in common
    "number_conflict",  # both have plain numbers, none in common
    "number_one_side",  # plain numbers (sizes, versions, years) on one side only
    "model_number_conflict",  # same word followed by different numbers (iphone 14 / 15)
    "model_number_one_side",  # a word numbered on one side only (redmi pad 2 / redmi pad)
    # model tier and colour
    "tier_one_side",  # tier words on one side only: pro, max, plus, ultra, lite, mini ...
    "tier_conflict",  # both name a tier, none in common (Buds3 Pro vs Buds3 FE)
    "color_conflict",  # both name colours, none in common (negro vs azul)
    # brand
    "brand_match",  # both known and equal
    "brand_conflict",  # both known, different, and neither brand occurs in the other title
    "brand_unknown",  # at least one side has no brand
    # category
    "category_match",  # NaN when either side has none
    # price
    "price_ratio",  # min / max of the two prices; NaN when either is missing
    # versions, accessories, kits, forms and conditions (see ``variants``)
    *VARIANT_FEATURES,
    # learned word weights of a model trained on the catalogue's own labels (``tokens``);
    # NaN when the scorer has none
    "token_evidence",
)

FEATURE_COLUMNS: tuple[str, ...] = BASE_FEATURES + CONTEXT_FEATURES

DEFAULT_CHUNK_PAIRS = 500_000


# Per-listing columns the pair-level expressions read (``code_evidence``,
# ``evidence_features``, ``lost_short_codes``, ``words_numbered_one_side``), for both sides.
_PAIR_SIDE_COLUMNS = (
    "idx", "brand", "category", "price", "n_tokens", "codes", "code0", "code1", "code_stems",
    "code_keys", "compact", "compact_lower", "compact_desc", "anchor_words", "padded",
    "short_codes",
)  # fmt: skip


class PairFeaturizer:
    """Per-listing work done once (sets, code rarity, stacked vectors), pairs featurised
    on demand: several calls over one catalogue do not repeat it."""

    def __init__(
        self,
        records: pl.DataFrame,
        vectors: TextVectors,
        *,
        threads: int | None = None,
        tokens: TokenEvidence | None = None,
    ) -> None:
        self.records = records
        self.rec = record_features(records)
        self.items = ItemSets(self.rec, SET_KINDS)
        self.idf = code_idf(self.rec)
        self.stacked = StackedVectors(vectors)
        self.strings = ListingStrings(self.rec, threads)
        self.variants = VariantEvidence(records)
        self.tokens = tokens
        if tokens is not None:
            self.token_rows = tokens.listing_matrix(self.strings_by_idx(records, "name_norm"))
        # Only what the per-pair expressions read is joined onto the pairs: the sets go
        # through ``items`` and the strings through ``strings``, by index.
        self.side = self.rec.select(_PAIR_SIDE_COLUMNS)
        self.side_r = self.side.rename({c: f"{c}_r" for c in self.side.columns})

    @staticmethod
    def strings_by_idx(records: pl.DataFrame, column: str) -> pl.Series:
        """``records[column]`` placed at each row's ``idx`` (rows ``0 .. max idx``)."""
        n = int(records["idx"].max()) + 1 if records.height else 0
        return pl.DataFrame({"idx": np.arange(n, dtype=np.int64)}).join(
            records.select("idx", column), on="idx", how="left", maintain_order="left"
        )[column]

    def base(self, pairs: pl.DataFrame, *, chunk_pairs: int = DEFAULT_CHUNK_PAIRS) -> pl.DataFrame:
        """``i, j`` and every column of ``BASE_FEATURES``, in the order of ``pairs``."""
        chunks = []
        frame = pairs.select(pl.col("i").cast(pl.Int64), pl.col("j").cast(pl.Int64))
        for start in range(0, frame.height, chunk_pairs):
            chunks.append(self._chunk(frame.slice(start, chunk_pairs)))
        if not chunks:
            return pl.DataFrame(
                schema={"i": pl.Int64, "j": pl.Int64} | dict.fromkeys(BASE_FEATURES, pl.Float64)
            )
        return pl.concat(chunks)

    def _chunk(self, part: pl.DataFrame) -> pl.DataFrame:
        i, j = part["i"].to_numpy(), part["j"].to_numpy()
        joined = (
            part.join(self.side, left_on="i", right_on="idx", how="left", maintain_order="left")
            .join(self.side_r, left_on="j", right_on="idx_r", how="left", maintain_order="left")
            .with_row_index("row")
        )
        for extra in (
            lost_short_codes(joined, "", "_r"),
            lost_short_codes(joined, "_r", ""),
            words_numbered_one_side(joined),
            near_miss(joined, self.strings),
        ):
            joined = joined.join(extra, on="row", how="left")
        columns = (
            vector_features(self.stacked, i, j)
            | self.strings.features(i, j)
            | self.variants.features(i, j)
        )
        columns["token_evidence"] = (
            self.tokens.scores(self.token_rows, i, j)
            if self.tokens is not None
            else np.full(len(i), np.nan)
        )
        joined = joined.with_columns(pl.Series(k, v) for k, v in columns.items())
        out = evidence_features(
            joined, set_counts(self.items, i, j), code_evidence(joined, self.idf)
        )
        return out.select("i", "j", *[pl.col(c).cast(pl.Float64) for c in BASE_FEATURES])

    def features(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Base and context features; the context ranks each pair among ``pairs``."""
        base = self.base(pairs)
        context = context_features(base.select("i", "j", "cosine"), self.records)
        return pl.concat([base, context.drop("i", "j")], how="horizontal").select(
            "i", "j", *FEATURE_COLUMNS
        )


def pair_features(
    records: pl.DataFrame,
    vectors: TextVectors,
    pairs: pl.DataFrame,
) -> pl.DataFrame:
    """Feature frame for candidate ``pairs`` (``i``, ``j`` indexing ``records``).

    Returns ``i, j`` and every column of ``FEATURE_COLUMNS`` as Float64, in the order of
    ``pairs``. ``vectors`` are the blocker's ``TextVectors`` of ``records['text']``; the
    context columns rank each pair among the others in ``pairs``.
    """
    return PairFeaturizer(records, vectors).features(pairs)
