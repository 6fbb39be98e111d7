"""Evidence read on the joined pair frame (one row per pair, each side's listing columns
with ``_r`` for the right side): model codes found, missing or nearly equal on the other
side, short model tokens and numbered words one side lacks, and the code, brand,
category and price features assembled from them (``evidence_features``). Containment
checks are Polars string kernels over the exploded per-side sets.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.domain.matching.model_codes import MIN_KEY_LEN
from arbx_dagster.domain.matching.text_similarity import ListingStrings


def code_idf(rec: pl.DataFrame) -> pl.DataFrame:
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


def code_evidence(p: pl.DataFrame, idf: pl.DataFrame) -> pl.DataFrame:
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


def words_numbered_one_side(p: pl.DataFrame) -> pl.DataFrame:
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


def lost_short_codes(p: pl.DataFrame, me: str, other: str) -> pl.DataFrame:
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


def near_miss(joined: pl.DataFrame, strings: ListingStrings) -> pl.DataFrame:
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


def evidence_features(
    p: pl.DataFrame, counts: dict[str, np.ndarray], codes: pl.DataFrame
) -> pl.DataFrame:
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
