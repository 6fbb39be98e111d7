"""Pair features, computed in bulk for every candidate pair.

``pair_features`` returns one row per candidate (``i``, ``j`` plus the columns in
``FEATURE_COLUMNS``, all Float64). That frame is the contract between blocking and
scoring: the phase-1 rule scorer reads it, and a phase-2 learned classifier can be fit on
the same columns (NaN marks "not applicable", e.g. a price that one store does not show,
which gradient-boosted trees take natively; for linear models impute first).

Everything is vectorised: string similarities with ``rapidfuzz.process.cpdist`` (C++,
multi-threaded), cosine as a row-wise sparse product, list/set logic with Polars list
expressions. Pairs are processed in chunks so millions of candidates fit in memory.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import distance, fuzz, process

from arbx_dagster.domain.matching.normalize import MIN_KEY_LEN, UNIT_TOKEN, code_stem

FEATURE_COLUMNS: tuple[str, ...] = (
    # title similarity (0..1)
    "cosine",  # TF-IDF char n-gram cosine of title + codes
    "token_set",  # rapidfuzz token_set_ratio: one title's words are a subset of the other's
    "token_sort",  # token_sort_ratio: same words, any order
    "partial",  # partial_ratio: best matching substring
    "ratio",  # plain normalised Indel similarity
    "len_ratio",  # shorter / longer title, in tokens
    # relative rank of this pair among each side's candidates (1 = best)
    "cosine_gap_i",  # best cosine of i over its candidates minus this pair's
    "cosine_gap_j",
    # model codes
    "both_codes",  # 1 if both listings carry at least one code
    "code_exact",  # a full code in common
    "code_stem",  # a code or its stem in common (colour / region suffix differs)
    "code_contained",  # a code of one appears inside the other's compact title
    "code_similarity",  # best normalised Levenshtein similarity of the primary codes
    "code_conflict",  # both have codes and none of the above holds
    "short_code_conflict",  # both have short model tokens (a8, m2, x85l) the other lacks
    # numbers and units
    "unit_shared",  # units whose values agree (55in, 128gb; 24.7cuft ~ 25cuft)
    "unit_conflict",  # units on both sides whose values all differ (128gb vs 256gb)
    "unit_one_side",  # units mentioned by one side only
    "number_shared",  # plain numbers in common
    "number_conflict",  # both have plain numbers, none in common
    "number_one_side",
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
)

DEFAULT_CHUNK_PAIRS = 500_000


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


# Words that are followed by a number without naming a model ('with 3 ...', 'pack 2').
ANCHOR_STOPWORDS = (
    "with",
    "for",
    "de",
    "para",
    "con",
    "y",
    "and",
    "x",
    "w",
    "the",
    "of",
    "hasta",
    "up",
    "to",
    "por",
    "en",
    "in",
    "pack",
    "set",
    "kit",
    "n",
    "no",
    "nro",
    "modelo",
    "model",
)


# Words that make a different model of the same line (iPhone 15 vs iPhone 15 Pro).
TIER_WORDS = (
    "pro",
    "max",
    "plus",
    "ultra",
    "lite",
    "mini",
    "fe",
    "se",
    "air",
    "neo",
    "prime",
    "edge",
    "note",
    "slim",
    "xl",
)

# Colour words (ES / EN) -> one canonical colour.
COLORS: dict[str, str] = {
    "negro": "black",
    "negra": "black",
    "black": "black",
    "blk": "black",
    "blanco": "white",
    "blanca": "white",
    "white": "white",
    "wh": "white",
    "azul": "blue",
    "blue": "blue",
    "celeste": "lightblue",
    "rojo": "red",
    "roja": "red",
    "red": "red",
    "verde": "green",
    "green": "green",
    "gris": "gray",
    "gray": "gray",
    "grey": "gray",
    "grafito": "graphite",
    "graphite": "graphite",
    "plateado": "silver",
    "plateada": "silver",
    "plata": "silver",
    "silver": "silver",
    "dorado": "gold",
    "dorada": "gold",
    "gold": "gold",
    "rosado": "pink",
    "rosada": "pink",
    "rosa": "pink",
    "pink": "pink",
    "morado": "purple",
    "morada": "purple",
    "lila": "purple",
    "purple": "purple",
    "violeta": "purple",
    "amarillo": "yellow",
    "yellow": "yellow",
    "naranjo": "orange",
    "naranja": "orange",
    "orange": "orange",
    "cafe": "brown",
    "marron": "brown",
    "brown": "brown",
    "beige": "beige",
    "crema": "beige",
}

# Connectivity / resolution tags: not model tokens ('5g' vs 'a14' is no conflict).
NOT_SHORT_CODES = ("2g", "3g", "4g", "5g", "2k", "4k", "8k", "hd", "mp3", "mp4", "usb")


def _anchored_numbers(name_norm: pl.Expr) -> pl.Expr:
    """'word number' pairs such as 'iphone 15', 'ideapad 3', 'x1504ga 2' as 'word:15'."""
    pairs = name_norm.str.extract_all(r"\b[a-z0-9]*[a-z][a-z0-9]* \d{1,4}\b")
    return (
        pairs.list.eval(pl.element().str.replace(" ", ":"))
        .list.eval(
            pl.element().filter(
                ~pl.element().str.extract(r"^([a-z0-9]+):", 1).is_in(list(ANCHOR_STOPWORDS))
                & ~pl.element().str.extract(r"^([a-z0-9]+):", 1).str.contains(UNIT_TOKEN)
            )
        )
        .list.unique()
    )


def record_features(records: pl.DataFrame) -> pl.DataFrame:
    """Per-listing inputs of the pair features, derived once per listing not per pair."""
    tokens = pl.col("name_norm").str.split(" ")
    tb = pl.element().str.extract(r"^([\d.]+)tb$", 1).cast(pl.Float64, strict=False)
    units = (
        tokens.list.eval(pl.element().filter(pl.element().str.contains(UNIT_TOKEN)))
        .list.eval(  # one storage scale: 1tb -> 1000gb
            pl.when(tb.is_not_null())
            .then((tb * 1000).round(0).cast(pl.Int64).cast(pl.String) + "gb")
            .otherwise(pl.element())
        )
        .list.unique()
    )
    code0 = pl.col("codes").list.get(0, null_on_oob=True)
    code1 = pl.col("codes").list.get(1, null_on_oob=True)
    return records.select(
        "idx",
        "name_norm",
        "brand",
        "category",
        "price",
        "codes",
        "stems",
        code0.alias("code0"),
        code1.alias("code1"),
        code_stem(code0).alias("stem0"),
        code_stem(code1).alias("stem1"),
        pl.concat_list("codes", "stems").list.unique().alias("code_keys"),
        pl.col("name_norm").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "").alias("compact"),
        pl.col("name_norm").str.replace_all(r"[^a-z0-9]", "").alias("compact_lower"),
        tokens.list.len().alias("n_tokens"),
        units.alias("units"),
        _unit_variants(units).alias("unit_keys"),
        units.list.eval(pl.element().str.replace(r"^[\d.]+", "")).list.unique().alias("unit_names"),
        tokens.list.eval(pl.element().filter(pl.element().str.contains(r"^\d{1,4}(?:\.\d+)?$")))
        .list.unique()
        .alias("numbers"),
        _anchored_numbers(pl.col("name_norm")).alias("anchored"),
        tokens.list.unique().alias("tokens"),
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


def _contains(haystack: str, needle: pl.Expr) -> pl.Expr:
    """Literal containment of a code (``MIN_KEY_LEN``+ characters) in the other side's
    compact title (its alphanumerics, separators dropped)."""
    return (
        pl.when(needle.str.len_chars() >= MIN_KEY_LEN)
        .then(pl.col(haystack).str.contains(needle, literal=True))
        .otherwise(False)
        .fill_null(False)
    )


def _unmatched(p: pl.DataFrame, side: str, other: str) -> pl.DataFrame:
    """Per pair row: units with a value the other side lacks, and short model tokens
    that do not occur in the other side's compact title.

    A unit value is matched when it, or the other's value, is the same once decimals are
    rounded down or up (14.7mp ~ 14mp, 24.7cuft ~ 25cuft); '8gb 512gb' vs '8gb 256gb'
    still leaves 512gb and 256gb unmatched, which is a conflict.
    """
    units = (
        p.select(
            "row", pl.col(f"units{side}").alias("tok"), pl.col(f"unit_keys{other}").alias("keys")
        )
        .explode("tok")
        .drop_nulls("tok")
    )
    value = pl.col("tok").str.extract(r"^([\d.]+)", 1).cast(pl.Float64, strict=False)
    unit = pl.col("tok").str.replace(r"^[\d.]+", "")
    floor = value.floor().cast(pl.Int64).cast(pl.String) + unit
    ceil = value.ceil().cast(pl.Int64).cast(pl.String) + unit
    matched = (
        pl.col("tok").is_in(pl.col("keys"))
        | floor.is_in(pl.col("keys"))
        | ceil.is_in(pl.col("keys"))
    )
    lost_units = (
        units.filter(~matched.fill_null(False))
        .group_by("row")
        .agg(unit.unique().alias(f"lost_units{side}"))
    )
    short = (
        p.select(
            "row",
            pl.col(f"short_codes{side}").alias("tok"),
            pl.col(f"compact_lower{other}").alias("hay"),
        )
        .explode("tok")
        .drop_nulls("tok")
        .filter(~pl.col("hay").str.contains(pl.col("tok"), literal=True).fill_null(False))
        .group_by("row")
        .agg(pl.len().alias(f"lost_short{side}"))
    )
    return p.select("row").join(lost_units, on="row", how="left").join(short, on="row", how="left")


def _set_features(p: pl.DataFrame) -> pl.DataFrame:
    """Code, number, brand, category and price features from the joined pair frame."""
    one = pl.lit(1.0)
    zero = pl.lit(0.0)

    def flag(cond: pl.Expr) -> pl.Expr:
        return pl.when(cond).then(one).otherwise(zero)

    both_codes = (pl.col("codes").list.len() > 0) & (pl.col("codes_r").list.len() > 0)
    exact = pl.col("codes").list.set_intersection("codes_r").list.len() > 0
    stem = pl.col("code_keys").list.set_intersection("code_keys_r").list.len() > 0
    contained = pl.any_horizontal(
        _contains(haystack, pl.col(needle))
        for haystack, suffix in (("compact_r", ""), ("compact", "_r"))
        for needle in (f"code0{suffix}", f"code1{suffix}")
    )
    # A stem found in the other title ('COOLPIXS710' in 'nikon coolpix s710') counts as a
    # stem match, not as the same code: the suffix may be a colour.
    stem = stem | pl.any_horizontal(
        _contains(haystack, pl.col(needle))
        for haystack, suffix in (("compact_r", ""), ("compact", "_r"))
        for needle in (f"stem0{suffix}", f"stem1{suffix}")
    )
    unit_of = pl.element().str.replace(r"^[\d.]+", "")
    agreeing = (
        pl.col("unit_keys").list.set_intersection("unit_keys_r").list.eval(unit_of).list.unique()
    )
    common = pl.col("unit_names").list.set_intersection("unit_names_r")
    p = (
        p.with_row_index("row")
        .join(_unmatched(p.with_row_index("row"), "", "_r"), on="row", how="left")
        .join(_unmatched(p.with_row_index("row"), "_r", ""), on="row", how="left")
    )
    empty = pl.lit([], dtype=pl.List(pl.String))
    unit_conflict = (
        pl.col("lost_units")
        .fill_null(empty)
        .list.set_intersection(pl.col("lost_units_r").fill_null(empty))
        .list.len()
    )
    short_conflict = (pl.col("lost_short").fill_null(0) > 0) & (
        pl.col("lost_short_r").fill_null(0) > 0
    )
    tier_one_side = (
        pl.col("tiers").list.len()
        + pl.col("tiers_r").list.len()
        - 2 * pl.col("tiers").list.set_intersection("tiers_r").list.len()
    )
    colors_known = (pl.col("colors").list.len() > 0) & (pl.col("colors_r").list.len() > 0)
    color_conflict = colors_known & (
        pl.col("colors").list.set_intersection("colors_r").list.len() == 0
    )
    unit_one_side = (
        pl.col("unit_names").list.len() + pl.col("unit_names_r").list.len() - 2 * common.list.len()
    )
    n_shared = pl.col("numbers").list.set_intersection("numbers_r").list.len()
    anchor_of = pl.element().str.replace(r":.*$", "")
    shared_anchors = (
        pl.col("anchored").list.set_intersection("anchored_r").list.eval(anchor_of).list.unique()
    )
    common_anchors = (
        pl.col("anchored")
        .list.eval(anchor_of)
        .list.set_intersection(pl.col("anchored_r").list.eval(anchor_of))
    )
    model_number_conflict = common_anchors.list.set_difference(shared_anchors).list.len()
    anchors_i = pl.col("anchored").list.eval(anchor_of)
    anchors_j = pl.col("anchored_r").list.eval(anchor_of)
    model_number_one_side = (
        anchors_i.list.set_intersection("tokens_r").list.set_difference(anchors_j).list.len()
        + anchors_j.list.set_intersection("tokens").list.set_difference(anchors_i).list.len()
    )
    n_i, n_j = pl.col("numbers").list.len(), pl.col("numbers_r").list.len()
    brand_known = pl.col("brand").is_not_null() & pl.col("brand_r").is_not_null()
    brand_i = pl.col("brand").str.replace_all(r"[^a-z0-9]", "")
    brand_j = pl.col("brand_r").str.replace_all(r"[^a-z0-9]", "")
    # Equal, or one a prefix of the other ('pan' / 'panasonic', 'polk' / 'polkaudio').
    brand_same = brand_known & (
        (brand_i == brand_j)
        | ((brand_i.str.len_chars() >= 3) & brand_j.str.starts_with(brand_i))
        | ((brand_j.str.len_chars() >= 3) & brand_i.str.starts_with(brand_j))
    )
    brand_seen = pl.col("compact_lower_r").str.contains(brand_i, literal=True) | pl.col(
        "compact_lower"
    ).str.contains(brand_j, literal=True)
    price_lo = pl.min_horizontal("price", "price_r")
    price_hi = pl.max_horizontal("price", "price_r")
    return p.with_columns(
        both_codes=flag(both_codes),
        code_exact=flag(both_codes & exact),
        code_stem=flag(both_codes & stem),
        code_contained=flag(contained),
        code_conflict=flag(both_codes & ~exact & ~stem & ~contained),
        short_code_conflict=flag(short_conflict),
        tier_one_side=tier_one_side.cast(pl.Float64),
        tier_conflict=flag(
            (pl.col("tiers").list.len() > 0)
            & (pl.col("tiers_r").list.len() > 0)
            & (pl.col("tiers").list.set_intersection("tiers_r").list.len() == 0)
        ),
        color_conflict=flag(color_conflict),
        unit_shared=agreeing.list.len().cast(pl.Float64),
        unit_conflict=unit_conflict.cast(pl.Float64),
        unit_one_side=unit_one_side.cast(pl.Float64),
        number_shared=n_shared.cast(pl.Float64),
        number_conflict=flag((n_i > 0) & (n_j > 0) & (n_shared == 0)),
        number_one_side=(n_i + n_j - 2 * n_shared).cast(pl.Float64),
        model_number_conflict=model_number_conflict.cast(pl.Float64),
        model_number_one_side=model_number_one_side.cast(pl.Float64),
        brand_match=flag(brand_same),
        brand_conflict=flag(brand_known & ~brand_same & ~brand_seen.fill_null(False)),
        brand_unknown=flag(~brand_known),
        category_match=pl.when(pl.col("category").is_null() | pl.col("category_r").is_null())
        .then(pl.lit(float("nan")))
        .otherwise(flag(pl.col("category") == pl.col("category_r"))),
        price_ratio=pl.when(price_hi > 0)
        .then(price_lo / price_hi)
        .otherwise(pl.lit(float("nan")))
        .fill_null(float("nan")),
        len_ratio=(
            pl.min_horizontal("n_tokens", "n_tokens_r")
            / pl.max_horizontal("n_tokens", "n_tokens_r")
        ).cast(pl.Float64),
    )


def _row_cosine(matrix: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cosine of L2-normalised rows i[k] and j[k], without forming the full product."""
    if len(i) == 0:
        return np.empty(0, dtype=np.float64)
    return np.asarray(matrix[i].multiply(matrix[j]).sum(axis=1), dtype=np.float64).ravel()


def _string_features(a: list[str], b: list[str], code_a: list[str], code_b: list[str]) -> dict:
    """rapidfuzz bulk scorers over aligned lists (one score per position), scaled to 0..1."""
    out = {}
    for name, scorer in (
        ("token_set", fuzz.token_set_ratio),
        ("token_sort", fuzz.token_sort_ratio),
        ("partial", fuzz.partial_ratio),
        ("ratio", fuzz.ratio),
    ):
        out[name] = (
            process.cpdist(a, b, scorer=scorer, workers=-1, dtype=np.float32).astype(np.float64)
            / 100.0
        )
    out["code_similarity"] = process.cpdist(
        code_a, code_b, scorer=distance.Levenshtein.normalized_similarity, workers=-1
    ).astype(np.float64)
    return out


def pair_features(
    records: pl.DataFrame,
    matrix: sp.csr_matrix,
    pairs: pl.DataFrame,
    *,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
) -> pl.DataFrame:
    """Feature frame for candidate ``pairs`` (columns ``i``, ``j`` indexing ``records``).

    Returns ``i, j`` and every column of ``FEATURE_COLUMNS`` as Float64, in the order of
    ``pairs``. ``matrix`` is the L2-normalised TF-IDF matrix the blocker used.
    """
    rec = record_features(records)
    rec_r = rec.rename({c: f"{c}_r" for c in rec.columns})
    chunks = []
    base = pairs.select("i", "j")
    for start in range(0, max(base.height, 1), chunk_pairs):
        part = base.slice(start, chunk_pairs)
        if part.height == 0:
            break
        joined = part.join(rec, left_on="i", right_on="idx", how="left", maintain_order="left")
        joined = joined.join(
            rec_r, left_on="j", right_on="idx_r", how="left", maintain_order="left"
        )
        strings = _string_features(
            joined["name_norm"].to_list(),
            joined["name_norm_r"].to_list(),
            joined["code0"].fill_null("").to_list(),
            joined["code0_r"].fill_null("").to_list(),
        )
        cos = _row_cosine(matrix, part["i"].to_numpy(), part["j"].to_numpy())
        both = joined["code0"].is_not_null() & joined["code0_r"].is_not_null()
        strings["code_similarity"] = np.where(both.to_numpy(), strings["code_similarity"], 0.0)
        joined = joined.with_columns(
            pl.Series("cosine", cos),
            *[pl.Series(name, values) for name, values in strings.items()],
        )
        chunks.append(_set_features(joined))
    if not chunks:
        return pl.DataFrame(
            schema={"i": pl.Int64, "j": pl.Int64} | {c: pl.Float64 for c in FEATURE_COLUMNS}
        )
    feats = pl.concat(chunks)
    # How far this pair is from each side's best candidate (0 = it is the best).
    feats = feats.with_columns(
        cosine_gap_i=pl.col("cosine").max().over("i") - pl.col("cosine"),
        cosine_gap_j=pl.col("cosine").max().over("j") - pl.col("cosine"),
    )
    return feats.select("i", "j", *[pl.col(c).cast(pl.Float64) for c in FEATURE_COLUMNS])
