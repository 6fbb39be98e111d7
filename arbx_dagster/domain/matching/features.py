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
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import distance, fuzz, process

from arbx_dagster.domain.matching.lexicon import (
    ANCHOR_STOPWORDS,
    COLORS,
    NOT_SHORT_CODES,
    TIER_WORDS,
)
from arbx_dagster.domain.matching.model_codes import MIN_KEY_LEN, code_stem
from arbx_dagster.domain.matching.titles import UNIT_TOKEN
from arbx_dagster.domain.matching.tokens import TokenEvidence
from arbx_dagster.domain.matching.variants import VARIANT_FEATURES, VariantEvidence
from arbx_dagster.domain.matching.vectorize import TextVectors, _dense_ids

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

CONTEXT_FEATURES: tuple[str, ...] = (
    "cosine_gap_i",  # best cosine of i among its candidates at j's retailer minus this one
    "cosine_gap_j",
    "cosine_rank_i",  # 1 = j is i's most similar candidate at j's retailer
    "cosine_rank_j",
    "cosine_margin_i",  # this cosine minus the best *other* candidate's (> 0: clear best)
    "cosine_margin_j",
    "mutual_best",  # each is the other's most similar candidate
)

FEATURE_COLUMNS: tuple[str, ...] = BASE_FEATURES + CONTEXT_FEATURES

DEFAULT_CHUNK_PAIRS = 500_000


# --- per-listing inputs -----------------------------------------------------------------


def _unit_variants(units: pl.Expr) -> pl.Expr:
    """Each unit token plus its value rounded down and up ('14.7mp' -> 14.7mp, 14mp, 15mp).

    Titles often truncate decimals (24.7 cu ft at one store, 25 cu ft at another), so two
    values of a unit agree when they share any variant; 50in and 55in still do not.
    """
    value = pl.element().str.extract(r"^([\d.]+)", 1).cast(pl.Float64, strict=False)
    unit = pl.element().str.replace(r"^[\d.]+", "")
    floor = value.floor().cast(pl.Int64).cast(pl.String) + unit
    ceil = value.ceil().cast(pl.Int64).cast(pl.String) + unit
    return pl.concat_list(units, units.list.eval(floor), units.list.eval(ceil)).list.unique()


def _anchored_numbers(name_norm: pl.Expr) -> pl.Expr:
    """'word number' pairs such as 'iphone 15', 'ideapad 3', 'x1504ga 2' as 'word:15'."""
    pairs = name_norm.str.extract_all(r"\b[a-z0-9]*[a-z][a-z0-9]* \d{1,4}\b")
    word = pl.element().str.extract(r"^([a-z0-9]+):", 1)
    return (
        pairs.list.eval(pl.element().str.replace(" ", ":"))
        .list.eval(
            pl.element().filter(
                ~word.is_in(list(ANCHOR_STOPWORDS)) & ~word.str.contains(UNIT_TOKEN)
            )
        )
        .list.unique()
    )


def record_features(records: pl.DataFrame) -> pl.DataFrame:
    """Per-listing inputs of the pair features, derived once per listing, not per pair."""
    tokens = pl.col("name_norm").str.split(" ")
    tb = pl.element().str.extract(r"^([\d.]+)tb$", 1).cast(pl.Float64, strict=False)
    mb = pl.element().str.extract(r"^([\d.]+)mb$", 1).cast(pl.Float64, strict=False)
    units = (
        tokens.list.eval(pl.element().filter(pl.element().str.contains(UNIT_TOKEN)))
        .list.eval(  # one storage scale: 1tb -> 1000gb, 256mb -> 0.256gb
            pl.when(tb.is_not_null())
            .then((tb * 1000).round(0).cast(pl.Int64).cast(pl.String) + "gb")
            .when(mb.is_not_null())
            .then((mb / 1000).round(3).cast(pl.String) + "gb")
            .otherwise(pl.element())
        )
        .list.unique()
    )
    code0 = pl.col("codes").list.get(0, null_on_oob=True)
    code1 = pl.col("codes").list.get(1, null_on_oob=True)
    description = (
        pl.col("description").cast(pl.String)
        if "description" in records.columns
        else pl.lit(None, dtype=pl.String)
    )
    anchored = _anchored_numbers(pl.col("name_norm"))
    brand_key = pl.col("brand").str.replace_all(r"[^a-z0-9]", "")
    return records.select(
        "idx",
        "retailer",
        "name_norm",
        pl.when(brand_key.str.len_chars() > 0).then(brand_key).alias("brand"),
        "category",
        "price",
        "codes",
        code0.alias("code0"),
        code1.alias("code1"),
        pl.col("codes").list.eval(code_stem(pl.element())).alias("code_stems"),
        pl.concat_list("codes", "stems").list.unique().alias("code_keys"),
        pl.col("name_norm").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").alias("compact"),
        pl.col("name_norm").str.replace_all(r"[^a-z0-9]", "").alias("compact_lower"),
        description.str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").alias("compact_desc"),
        tokens.list.len().alias("n_tokens"),
        tokens.list.sort().list.join(" ").alias("sorted_title"),
        units.alias("units"),
        _unit_variants(units).alias("unit_keys"),
        tokens.list.eval(pl.element().filter(pl.element().str.contains(r"^\d{1,4}(?:\.\d+)?$")))
        .list.unique()
        .alias("numbers"),
        anchored.alias("anchored"),
        anchored.list.eval(pl.element().str.replace(r":.*$", ""))
        .list.unique()
        .alias("anchor_words"),
        (" " + pl.col("name_norm") + " ").alias("padded"),
        tokens.list.eval(pl.element().filter(pl.element().is_in(list(TIER_WORDS))))
        .list.unique()
        .alias("tiers"),
        tokens.list.eval(pl.element().replace_strict(COLORS, default=None, return_dtype=pl.String))
        .list.drop_nulls()
        .list.unique()
        .alias("colors"),
        tokens.list.eval(
            pl.element().filter(
                pl.element().str.contains(r"^[a-z]{1,3}\d{1,3}[a-z]?$")
                & ~pl.element().is_in(list(NOT_SHORT_CODES))
            )
        )
        .list.unique()
        .alias("short_codes"),
    )


# --- sets as sparse rows ------------------------------------------------------------------


class _ItemSets:
    """Per-listing sets of several kinds as sparse 0/1 rows over one item space.

    ``kinds`` maps a name to ``(list column, segment)``. Kinds of one segment share their
    item space (unit values and their rounded variants), so "how many of i's A are among
    j's B" is the number of stored entries of the row-wise product of ``A[i]`` and
    ``B[j]``. Units are counted per unit name (gb, in, kg...), so that '8gb 512gb' vs
    '8gb 256gb' still shows a conflict on gb.
    """

    def __init__(self, rec: pl.DataFrame, kinds: dict[str, tuple[str, str]]) -> None:
        parts = [
            rec.select(
                pl.col("idx"),
                pl.col(column).alias("item"),
                pl.lit(name).alias("kind"),
                pl.lit(segment).alias("segment"),
            )
            .explode("item")
            .drop_nulls("item")
            for name, (column, segment) in kinds.items()
        ]
        long = pl.concat(parts).unique(["idx", "kind", "item"])
        unit_name = pl.col("item").str.replace(r"^[\d.]+", "")
        long = long.with_columns(
            key=(pl.col("segment") + "\x00" + pl.col("item")).hash(seed=1),
            unit=pl.when(pl.col("segment") == "unit").then(unit_name),
        )
        self.units = sorted(long["unit"].drop_nulls().unique().to_list())
        unit_id = {u: n for n, u in enumerate(self.units)}
        long = long.with_columns(
            unit_id=pl.col("unit").replace_strict(unit_id, default=-1, return_dtype=pl.Int64)
        )
        n = int(rec["idx"].max()) + 1 if rec.height else 0
        column, n_items = (
            _dense_ids(long["key"].to_numpy()) if long.height else (np.empty(0, np.int64), 0)
        )
        self.unit_of = np.full(max(n_items, 1), -1, dtype=np.int64)
        self.unit_of[column] = long["unit_id"].to_numpy()
        kind_values = long["kind"].to_numpy()
        idx = long["idx"].to_numpy()
        self.matrices: dict[str, sp.csr_matrix] = {}
        for name in kinds:
            mask = kind_values == name
            self.matrices[name] = sp.csr_matrix(
                (np.ones(int(mask.sum()), dtype=np.float32), (idx[mask], column[mask])),
                shape=(n, max(n_items, 1)),
            )
        self.sizes = {name: np.diff(m.indptr) for name, m in self.matrices.items()}

    def shared(self, kind_a: str, kind_b: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """How many items of ``A[i]`` are in ``B[j]``, per pair."""
        product = self.matrices[kind_a][i].multiply(self.matrices[kind_b][j]).tocsr()
        return np.diff(product.indptr).astype(np.float64)

    def per_unit(self, m: sp.csr_matrix) -> np.ndarray:
        """Entries per row and unit name: (rows, units)."""
        n_units = max(len(self.units), 1)
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        unit = self.unit_of[m.indices]
        ok = unit >= 0
        counts = np.bincount(rows[ok] * n_units + unit[ok], minlength=m.shape[0] * n_units)
        return counts.reshape(m.shape[0], n_units)

    def shared_units(self, kind_a: str, kind_b: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        product = self.matrices[kind_a][i].multiply(self.matrices[kind_b][j]).tocsr()
        return self.per_unit(product)


_KINDS: dict[str, tuple[str, str]] = {
    "codes": ("codes", "codes"),
    "code_keys": ("code_keys", "code_keys"),
    "unit": ("units", "unit"),
    "unit_key": ("unit_keys", "unit"),
    "numbers": ("numbers", "numbers"),
    "anchored": ("anchored", "anchored"),
    "anchor_words": ("anchor_words", "anchor_words"),
    "tiers": ("tiers", "tiers"),
    "colors": ("colors", "colors"),
}


def _set_counts(items: _ItemSets, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Count features from set intersections (see ``_ItemSets``)."""
    size = items.sizes
    units_all = items.per_unit(items.matrices["unit"])
    units_i, units_j = units_all[i], units_all[j]
    found_i = items.shared_units("unit", "unit_key", i, j)  # i's values that j has
    found_j = items.shared_units("unit_key", "unit", i, j)
    agree = items.shared_units("unit_key", "unit_key", i, j)
    lost_i = (units_i - found_i) > 0
    lost_j = (units_j - found_j) > 0
    has_i, has_j = units_i > 0, units_j > 0

    n_i, n_j = size["numbers"][i], size["numbers"][j]
    n_shared = items.shared("numbers", "numbers", i, j)
    t_i, t_j = size["tiers"][i], size["tiers"][j]
    t_shared = items.shared("tiers", "tiers", i, j)
    c_i, c_j = size["colors"][i], size["colors"][j]
    anchor_words = items.shared("anchor_words", "anchor_words", i, j)
    return {
        "both_codes": ((size["codes"][i] > 0) & (size["codes"][j] > 0)).astype(np.float64),
        "codes_shared": items.shared("codes", "codes", i, j),
        "keys_shared": items.shared("code_keys", "code_keys", i, j),
        "unit_shared": (agree > 0).sum(axis=1).astype(np.float64),
        "unit_conflict": (lost_i & lost_j).sum(axis=1).astype(np.float64),
        "unit_one_side": (has_i ^ has_j).sum(axis=1).astype(np.float64),
        "number_shared": n_shared,
        "number_conflict": ((n_i > 0) & (n_j > 0) & (n_shared == 0)).astype(np.float64),
        "number_one_side": (n_i + n_j - 2 * n_shared).astype(np.float64),
        # a word numbered on both sides, never with the same number
        "model_number_conflict": np.maximum(
            anchor_words - items.shared("anchored", "anchored", i, j), 0.0
        ),
        "tier_one_side": (t_i + t_j - 2 * t_shared).astype(np.float64),
        "tier_conflict": ((t_i > 0) & (t_j > 0) & (t_shared == 0)).astype(np.float64),
        "color_conflict": (
            (c_i > 0) & (c_j > 0) & (items.shared("colors", "colors", i, j) == 0)
        ).astype(np.float64),
    }


# --- containment and strings ------------------------------------------------------------------


def _code_idf(rec: pl.DataFrame) -> pl.DataFrame:
    """``code -> idf``: how rare each code is among the listings (ln((1+n)/(1+df)))."""
    n = rec.height
    return (
        rec.select(pl.col("codes").alias("code"))
        .explode("code")
        .drop_nulls("code")
        .group_by("code")
        .len("df")
        .select("code", (((1.0 + n) / (1.0 + pl.col("df"))).log()).alias("idf"))
    )


def _code_evidence(p: pl.DataFrame, idf: pl.DataFrame) -> pl.DataFrame:
    """Per pair row: for every code of each side, is it (or its stem) in the other's text?

    A code is *found* when the other side lists it or its compact title contains it; its
    stem (suffix dropped) is *found* likewise. Aggregated to shares per side, the rarity
    of the rarest code found and of the rarest one missing even as a stem.
    """
    sides = []
    for me, other in (("", "_r"), ("_r", "")):
        codes = (
            p.select(
                "row",
                pl.col(f"codes{me}").alias("code"),
                pl.col(f"code_stems{me}").alias("stem"),
                pl.col(f"code0{me}").alias("code0"),
                pl.col(f"code1{me}").alias("code1"),
                pl.col(f"codes{other}").alias("their_codes"),
                pl.col(f"code_keys{other}").alias("their_keys"),
                pl.col(f"compact{other}").alias("hay"),
                pl.col(f"compact_desc{other}").alias("hay_desc"),
            )
            .explode(["code", "stem"])
            .drop_nulls("code")
        )
        main = (pl.col("code") == pl.col("code0")) | (pl.col("code") == pl.col("code1")).fill_null(
            False
        )
        long_code = pl.col("code").str.len_chars() >= MIN_KEY_LEN
        long_stem = pl.col("stem").str.len_chars() >= MIN_KEY_LEN
        in_title = (long_code & pl.col("hay").str.contains(pl.col("code"), literal=True)).fill_null(
            False
        )
        stem_in_title = (
            long_stem & pl.col("hay").str.contains(pl.col("stem"), literal=True)
        ).fill_null(False)
        in_desc = (
            long_code & pl.col("hay_desc").str.contains(pl.col("code"), literal=True)
        ).fill_null(False)
        codes = codes.join(idf, on="code", how="left").with_columns(
            found=pl.col("their_codes").list.contains(pl.col("code")) | in_title,
            stem_found=pl.col("their_keys").list.contains(pl.col("stem")) | stem_in_title,
            contained=in_title & main,
            stem_contained=stem_in_title & main,
            in_desc=in_desc,
            has_desc=pl.col("hay_desc").is_not_null(),
        )
        found = pl.col("found")
        sides.append(
            codes.group_by("row").agg(
                found.mean().alias(f"share{me}"),
                (found | pl.col("in_desc")).mean().alias(f"share_desc{me}"),
                pl.col("has_desc").any().alias(f"has_desc{me}"),
                pl.col("contained").any().alias(f"contained{me}"),
                pl.col("stem_contained").any().alias(f"stem_contained{me}"),
                pl.col("idf").filter(found).max().alias(f"found_idf{me}"),
                pl.col("idf")
                .filter(~found & ~pl.col("stem_found"))
                .max()
                .alias(f"missing_idf{me}"),
                pl.col("code").str.len_chars().filter(found).max().alias(f"found_len{me}"),
                pl.col("code")
                .str.len_chars()
                .filter(~found & ~pl.col("stem_found"))
                .max()
                .alias(f"missing_len{me}"),
            )
        )
    return p.select("row").join(sides[0], on="row", how="left").join(sides[1], on="row", how="left")


def _words_numbered_one_side(p: pl.DataFrame) -> pl.DataFrame:
    """Per pair row: words one side numbers ('pad 2') that the other writes bare ('pad')."""
    parts = []
    for me, other in (("", "_r"), ("_r", "")):
        parts.append(
            p.select(
                "row",
                pl.col(f"anchor_words{me}").alias("w"),
                pl.col(f"anchor_words{other}").alias("theirs"),
                pl.col(f"padded{other}").alias("hay"),
            )
            .explode("w")
            .drop_nulls("w")
            .filter(
                pl.col("hay").str.contains(" " + pl.col("w") + " ", literal=True)
                & ~pl.col("theirs").list.contains(pl.col("w"))
            )
            .select("row")
        )
    counts = pl.concat(parts).group_by("row").len("model_number_one_side")
    return (
        p.select("row")
        .join(counts, on="row", how="left")
        .select("row", pl.col("model_number_one_side").fill_null(0).cast(pl.Float64))
    )


def _lost_short_codes(p: pl.DataFrame, me: str, other: str) -> pl.DataFrame:
    """Per pair row: short model tokens of one side not in the other's compact title."""
    return (
        p.select(
            "row",
            pl.col(f"short_codes{me}").alias("tok"),
            pl.col(f"compact_lower{other}").alias("hay"),
        )
        .explode("tok")
        .drop_nulls("tok")
        .filter(~pl.col("hay").str.contains(pl.col("tok"), literal=True).fill_null(False))
        .group_by("row")
        .agg(pl.len().alias(f"lost_short{me}"))
    )


class _Strings:
    """Per-listing strings as Python lists, gathered per pair by index (cheaper than
    converting the joined pair frame's string columns)."""

    def __init__(self, rec: pl.DataFrame, threads: int | None = None) -> None:
        self.workers = threads or -1  # rapidfuzz: -1 = every core
        n = int(rec["idx"].max()) + 1 if rec.height else 0
        order = rec["idx"].to_numpy()

        def column(name: str) -> np.ndarray:
            values = np.full(n, "", dtype=object)
            values[order] = np.asarray(rec[name].fill_null("").to_list(), dtype=object)
            return values

        self.title = column("name_norm")
        self.sorted_title = column("sorted_title")
        self.code0 = column("code0")
        self.code1 = column("code1")
        self.has_code = self.code0.astype(bool)

    def features(self, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        """rapidfuzz bulk scorers over the aligned pairs, scaled to 0..1."""

        def cpdist(values: np.ndarray, scorer: object) -> np.ndarray:
            return process.cpdist(
                values[i].tolist(),
                values[j].tolist(),
                scorer=scorer,
                workers=self.workers,
                dtype=np.float32,
            ).astype(np.float64)

        both = self.has_code[i] & self.has_code[j]
        return {
            "token_set": cpdist(self.title, fuzz.token_set_ratio) / 100.0,
            "ratio": cpdist(self.title, fuzz.ratio) / 100.0,
            # token_sort_ratio on titles whose words were sorted once per listing
            "token_sort": cpdist(self.sorted_title, fuzz.ratio) / 100.0,
            "code_similarity": np.where(both, self.code_similarity(i, j, "code0", "code0"), 0.0),
        }

    def code_similarity(self, i: np.ndarray, j: np.ndarray, mine: str, theirs: str) -> np.ndarray:
        """Normalised Levenshtein similarity of ``i``'s code ``mine`` and ``j``'s ``theirs``
        (``code0`` / ``code1``)."""
        a, b = getattr(self, mine), getattr(self, theirs)
        return process.cpdist(
            a[i].tolist(),
            b[j].tolist(),
            scorer=distance.Levenshtein.normalized_similarity,
            workers=self.workers,
            dtype=np.float32,
        ).astype(np.float64)


def _near_miss(joined: pl.DataFrame, strings: _Strings) -> pl.DataFrame:
    """Per pair row (``row``): the best similarity between a main code of each side
    (``code0`` / ``code1``) where the two differ and neither title contains the other's
    code: two models of one line ('DCS-2330L' / 'DCS-2332L'). A code the other title
    contains (a suffix dropped, the code written inside a word) is agreement, not a near
    miss. Only pairs where both sides have a main code are compared."""

    def has_main_code(side: str) -> pl.Expr:
        return (pl.col(f"code0{side}").str.len_chars() >= MIN_KEY_LEN) | (
            pl.col(f"code1{side}").str.len_chars() >= MIN_KEY_LEN
        )

    coded = joined.filter(has_main_code("") & has_main_code("_r")).select(
        "row", "i", "j", "code0", "code1", "code0_r", "code1_r", "compact", "compact_r"
    )
    i, j = coded["i"].to_numpy(), coded["j"].to_numpy()
    best = []
    for mine in ("code0", "code1"):
        for theirs in ("code0", "code1"):
            a, b = pl.col(mine), pl.col(f"{theirs}_r")
            counts = (
                (a.str.len_chars() >= MIN_KEY_LEN)
                & (b.str.len_chars() >= MIN_KEY_LEN)
                & (a != b)
                & ~pl.col("compact_r").str.contains(a, literal=True)
                & ~pl.col("compact").str.contains(b, literal=True)
            ).fill_null(False)
            similarity = pl.Series(strings.code_similarity(i, j, mine, theirs))
            best.append(pl.when(counts).then(pl.lit(similarity)))
    return coded.select("row", pl.max_horizontal(best).alias("code_near_miss"))


class _Stacked:
    """Character TF-IDF, word TF-IDF and IDF-weighted word presence side by side, so one
    row-wise product per chunk yields the three dot products."""

    def __init__(self, vectors: TextVectors) -> None:
        parts = (vectors.chars, vectors.words, vectors.word_idf)
        self.matrix = sp.hstack(parts).tocsr().astype(np.float32)
        edges = np.cumsum([0, *(m.shape[1] for m in parts)])
        self.segment_of = np.searchsorted(edges, np.arange(self.matrix.shape[1]), side="right") - 1
        self.vectors = vectors


def _vector_features(stacked: _Stacked, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Character / word cosines and IDF-weighted word overlap of aligned pairs."""
    vectors, segment_of = stacked.vectors, stacked.segment_of
    product = stacked.matrix[i].multiply(stacked.matrix[j]).tocsr()
    rows = np.repeat(np.arange(len(i)), np.diff(product.indptr))
    sums = np.bincount(
        rows * 3 + segment_of[product.indices], weights=product.data, minlength=len(i) * 3
    ).reshape(len(i), 3)
    char_cos, word_cos, shared_idf = sums[:, 0], sums[:, 1], sums[:, 2]
    total_i, total_j = vectors.word_idf_total[i], vectors.word_idf_total[j]
    union = total_i + total_j - shared_idf
    smaller = np.minimum(total_i, total_j)
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, shared_idf / union, 0.0)
        containment = np.where(smaller > 0, shared_idf / smaller, 0.0)
    has_chars = vectors.chars.shape[1] > 0
    has_words = vectors.words.shape[1] > 0
    parts = int(has_chars) + int(has_words)
    return {
        "cosine": (char_cos + word_cos) / max(parts, 1),
        "char_cosine": char_cos,
        "word_cosine": word_cos,
        "idf_jaccard": np.clip(jaccard, 0.0, 1.0),
        "idf_containment": np.clip(containment, 0.0, 1.0),
    }


def _evidence(p: pl.DataFrame, counts: dict[str, np.ndarray], codes: pl.DataFrame) -> pl.DataFrame:
    """Assemble code, brand, category and price features on the joined pair frame."""
    one, zero, nan = pl.lit(1.0), pl.lit(0.0), pl.lit(float("nan"))

    def flag(cond: pl.Expr) -> pl.Expr:
        return pl.when(cond).then(one).otherwise(zero)

    p = p.with_columns(pl.Series(k, v) for k, v in counts.items()).join(codes, on="row", how="left")
    both_codes = pl.col("both_codes") > 0
    exact = pl.col("codes_shared") > 0
    stem = (
        (pl.col("keys_shared") > 0)
        | pl.col("stem_contained").fill_null(False)
        | pl.col("stem_contained_r").fill_null(False)
    )
    contained = pl.col("contained").fill_null(False) | pl.col("contained_r").fill_null(False)
    short_conflict = (pl.col("lost_short").fill_null(0) > 0) & (
        pl.col("lost_short_r").fill_null(0) > 0
    )
    brand_known = pl.col("brand").is_not_null() & pl.col("brand_r").is_not_null()
    brand_i, brand_j = pl.col("brand"), pl.col("brand_r")
    # Equal, or one a prefix of the other ('pan' / 'panasonic', 'polk' / 'polkaudio').
    brand_same = brand_known & (
        (brand_i == brand_j)
        | ((brand_i.str.len_chars() >= 3) & brand_j.str.starts_with(brand_i))
        | ((brand_j.str.len_chars() >= 3) & brand_i.str.starts_with(brand_j))
    )
    brand_seen = pl.col("compact_lower_r").str.contains(brand_i, literal=True) | pl.col(
        "compact_lower"
    ).str.contains(brand_j, literal=True)
    share_lo = pl.min_horizontal("share", "share_r")
    share_hi = pl.max_horizontal("share", "share_r")
    any_desc = pl.col("has_desc").fill_null(False) | pl.col("has_desc_r").fill_null(False)
    price_lo = pl.min_horizontal("price", "price_r")
    price_hi = pl.max_horizontal("price", "price_r")
    return p.with_columns(
        code_exact=flag(both_codes & exact),
        code_stem=flag(both_codes & stem),
        code_contained=flag(contained),
        code_conflict=flag(both_codes & ~exact & ~stem & ~contained),
        short_code_conflict=flag(short_conflict),
        code_near_miss=pl.col("code_near_miss").fill_null(0.0),
        code_share_min=pl.when(share_lo.is_not_null()).then(share_lo).otherwise(nan),
        code_share_max=pl.when(share_hi.is_not_null()).then(share_hi).otherwise(nan),
        code_share_desc=pl.when(any_desc & share_hi.is_not_null())
        .then(pl.max_horizontal("share_desc", "share_desc_r"))
        .otherwise(nan),
        code_found_idf=pl.max_horizontal("found_idf", "found_idf_r").fill_null(0.0),
        code_missing_idf=pl.max_horizontal("missing_idf", "missing_idf_r").fill_null(0.0),
        code_found_len=pl.max_horizontal("found_len", "found_len_r").fill_null(0).cast(pl.Float64),
        code_missing_len=pl.max_horizontal("missing_len", "missing_len_r")
        .fill_null(0)
        .cast(pl.Float64),
        brand_match=flag(brand_same),
        brand_conflict=flag(brand_known & ~brand_same & ~brand_seen.fill_null(False)),
        brand_unknown=flag(~brand_known),
        category_match=pl.when(pl.col("category").is_null() | pl.col("category_r").is_null())
        .then(nan)
        .otherwise(flag(pl.col("category") == pl.col("category_r"))),
        price_ratio=pl.when(price_hi > 0)
        .then(price_lo / price_hi)
        .otherwise(nan)
        .fill_null(float("nan")),
        len_ratio=(
            pl.min_horizontal("n_tokens", "n_tokens_r")
            / pl.max_horizontal("n_tokens", "n_tokens_r")
        ).cast(pl.Float64),
    )


# --- public API ---------------------------------------------------------------------------


# Per-listing columns the pair-level expressions read (``_code_evidence``, ``_evidence``,
# ``_lost_short_codes``, ``_words_numbered_one_side``), for both sides.
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
        self.items = _ItemSets(self.rec, _KINDS)
        self.idf = _code_idf(self.rec)
        self.stacked = _Stacked(vectors)
        self.strings = _Strings(self.rec, threads)
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
            _lost_short_codes(joined, "", "_r"),
            _lost_short_codes(joined, "_r", ""),
            _words_numbered_one_side(joined),
            _near_miss(joined, self.strings),
        ):
            joined = joined.join(extra, on="row", how="left")
        columns = (
            _vector_features(self.stacked, i, j)
            | self.strings.features(i, j)
            | self.variants.features(i, j)
        )
        columns["token_evidence"] = (
            self.tokens.scores(self.token_rows, i, j)
            if self.tokens is not None
            else np.full(len(i), np.nan)
        )
        joined = joined.with_columns(pl.Series(k, v) for k, v in columns.items())
        out = _evidence(joined, _set_counts(self.items, i, j), _code_evidence(joined, self.idf))
        return out.select("i", "j", *[pl.col(c).cast(pl.Float64) for c in BASE_FEATURES])

    def features(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Base and context features; the context ranks each pair among ``pairs``."""
        base = self.base(pairs)
        context = context_features(base.select("i", "j", "cosine"), self.records)
        return pl.concat([base, context.drop("i", "j")], how="horizontal").select(
            "i", "j", *FEATURE_COLUMNS
        )


def _rank_in_groups(group: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: rank of ``score`` within its group (1 = best, ties share the better rank),
    gap to the group's best and margin over the best *other* row of the group."""
    n = len(score)
    # one sort: by group, then score descending (scores are similarities in [0, 1])
    order = np.argsort(group * 4.0 + (1.0 - np.clip(score, 0.0, 1.0)), kind="stable")
    g, s = group[order], score[order]
    pos = np.arange(n)
    new_group = np.r_[True, g[1:] != g[:-1]] if n else np.zeros(0, bool)
    new_value = new_group | np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0)) if n else pos
    value_start = np.maximum.accumulate(np.where(new_value, pos, 0)) if n else pos
    sizes = np.diff(np.r_[np.flatnonzero(new_group), n]) if n else pos
    size = np.repeat(sizes, sizes) if n else pos
    best = s[group_start]
    second = np.where(size > 1, s[np.minimum(group_start + 1, n - 1)], 0.0) if n else s
    is_best = s >= best
    margin = np.where(is_best, s - second, s - best)
    out = {
        "rank": (value_start - group_start + 1).astype(np.float64),
        "gap": best - s,
        "margin": margin,
    }
    result = {}
    for key, values in out.items():
        back = np.empty(n, dtype=np.float64)
        back[order] = values
        result[key] = back
    return result


def context_features(
    scores: pl.DataFrame, records: pl.DataFrame, *, score: str = "cosine"
) -> pl.DataFrame:
    """``i, j`` and ``CONTEXT_FEATURES`` from every candidate's ``score`` (``i, j, score``).

    Per listing and other retailer: the pair's rank among that listing's candidates, its
    gap to the best and its margin over the best other candidate (the second best when it
    is the best itself; its own score when it is the only one). ``scores`` must hold all
    the candidates of the listings involved, or the ranks mean little.
    """
    retailers = sorted(records["retailer"].unique().to_list())
    code = records.select(
        pl.col("idx").cast(pl.Int64),
        pl.col("retailer").replace_strict(
            {r: n for n, r in enumerate(retailers)}, return_dtype=pl.Int64
        ),
    )
    frame = scores.select(
        pl.col("i").cast(pl.Int64), pl.col("j").cast(pl.Int64), pl.col(score).alias("s")
    )
    retailer_of = np.zeros(int(code["idx"].max()) + 1 if code.height else 0, dtype=np.int64)
    retailer_of[code["idx"].to_numpy()] = code["retailer"].to_numpy()
    i, j = frame["i"].to_numpy(), frame["j"].to_numpy()
    s = frame["s"].fill_null(0.0).fill_nan(0.0).to_numpy().astype(np.float64)
    n_retailers = max(len(retailers), 1)
    side_i = _rank_in_groups(i * n_retailers + retailer_of[j], s)
    side_j = _rank_in_groups(j * n_retailers + retailer_of[i], s)
    return frame.select("i", "j").with_columns(
        pl.Series("cosine_gap_i", side_i["gap"]),
        pl.Series("cosine_gap_j", side_j["gap"]),
        pl.Series("cosine_rank_i", side_i["rank"]),
        pl.Series("cosine_rank_j", side_j["rank"]),
        pl.Series("cosine_margin_i", side_i["margin"]),
        pl.Series("cosine_margin_j", side_j["margin"]),
        pl.Series(
            "mutual_best", ((side_i["rank"] == 1) & (side_j["rank"] == 1)).astype(np.float64)
        ),
    )


def context_for_queries(
    queries: pl.DataFrame, candidates: pl.DataFrame, records: pl.DataFrame, *, score: str = "cosine"
) -> pl.DataFrame:
    """``CONTEXT_FEATURES`` of ``queries`` (``i, j, score``), each placed alone among
    ``candidates`` (``i, j, score``), in the order of ``queries``.

    The same quantities as ``context_features`` computes inside one frame (for a query
    that is itself a candidate they coincide), but no query sees another query: labelled
    pairs are scored as if each were the only extra pair the matcher looked at.
    """
    retailer = records.select(pl.col("idx").cast(pl.Int64), pl.col("retailer"))

    def prepare(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.select(
                pl.col("i").cast(pl.Int64),
                pl.col("j").cast(pl.Int64),
                pl.col(score).fill_null(0.0).fill_nan(0.0).cast(pl.Float64).alias("s"),
            )
            .join(retailer.rename({"idx": "i", "retailer": "ri"}), on="i", how="left")
            .join(retailer.rename({"idx": "j", "retailer": "rj"}), on="j", how="left")
        )

    q = prepare(queries).with_row_index("q")
    c = prepare(candidates).unique(["i", "j"])
    out = q
    for side, other, group in (("i", "j", ["i", "rj"]), ("j", "i", ["j", "ri"])):
        others = (
            q.join(c.select(*group, pl.col(other).alias("o"), pl.col("s").alias("so")), on=group)
            .filter(pl.col("o") != pl.col(other))
            .group_by("q")
            .agg(
                (pl.col("so") > pl.col("s")).sum().alias("above"),
                pl.col("so").max().alias("best_other"),
            )
        )
        best_other = pl.col("best_other").fill_null(0.0)
        out = (
            out.join(others, on="q", how="left")
            .with_columns(
                (pl.max_horizontal(best_other, pl.col("s")) - pl.col("s")).alias(
                    f"cosine_gap_{side}"
                ),
                (pl.col("above").fill_null(0) + 1).cast(pl.Float64).alias(f"cosine_rank_{side}"),
                (pl.col("s") - best_other).alias(f"cosine_margin_{side}"),
            )
            .drop("above", "best_other")
        )
    out = out.sort("q").with_columns(
        mutual_best=((pl.col("cosine_rank_i") == 1) & (pl.col("cosine_rank_j") == 1)).cast(
            pl.Float64
        )
    )
    return out.select("i", "j", *[pl.col(c).cast(pl.Float64) for c in CONTEXT_FEATURES])


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
