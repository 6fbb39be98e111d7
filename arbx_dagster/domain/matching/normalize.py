"""Listing normalisation for matching: the enriched listing and the matcher's records.

``enrich_listings`` adds the folded title (``titles``), the brand (``brands``), the model
codes (``model_codes``) and the category to raw listings; ``matching_records`` turns
enriched listings into the frame blocking and the pair features read. Everything is a
Polars expression or a frame-level join so it runs on millions of listings without
Python loops.
"""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.frames import position_in_runs, with_columns_streamed
from arbx_dagster.domain.matching.brands import (
    infer_brand_from_title,
    infer_brand_vocabulary,
    normalize_brand,
)
from arbx_dagster.domain.matching.model_codes import MIN_KEY_LEN, code_stem, model_code_candidates
from arbx_dagster.domain.matching.titles import (
    fold,
    normalize_units,
    screen_inches,
    title_from_units,
)


def enrich_listings(df: pl.DataFrame, vocabulary: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add or overwrite ``name_norm``, ``brand``, ``model_code``, ``model_codes`` (every
    code found, best first, space-separated) and ``category``.

    Brands are searched in titles with the vocabulary these listings give (``alias ->
    brand``, ``infer_brand_vocabulary``), or with ``vocabulary`` — a whole catalogue's,
    when only some of its listings are normalised again — plus the brands their own
    brand fields name.

    Input: raw listing columns (``retailer``, ``sku``, ``name`` and optionally ``brand``,
    ``model``, ``category``; any may be null). Output: the same rows in the same order.
    The brand comes from the store's brand field when present, otherwise from the title
    (see ``infer_brand_vocabulary``); the model code from the store's model field when it
    holds one, otherwise from the title.
    """
    row_id = "__row"
    base = df.with_row_index(row_id)
    added = [c for c in ("brand", "model", "category", "model_code") if c not in df.columns]
    base = base.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in added)
    # The folded title is materialised first: ``screen_inches`` reads it several times,
    # and as one nested expression Polars would re-run the whole regex chain each time.
    base = with_columns_streamed(
        base, normalize_units(pl.col("name").fill_null("")).alias("__name_units")
    )
    base = with_columns_streamed(base, title_from_units(pl.col("__name_units")).alias("name_norm"))
    base = with_columns_streamed(
        base,
        screen_inches(pl.col("name_norm")).alias("name_norm"),
        normalize_brand(pl.col("brand").cast(pl.String)).alias("__brand_field"),
        fold(pl.col("category").cast(pl.String))
        .str.split(">")
        .list.last()
        .str.replace_all(r"[^a-z0-9+\s]", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .alias("__category"),
    )
    if vocabulary is None:
        vocab = infer_brand_vocabulary(base["name_norm"], base["__brand_field"])
    else:
        own = infer_brand_vocabulary(pl.Series([], dtype=pl.String), base["__brand_field"])
        vocab = pl.concat([vocabulary.select("alias", "brand"), own]).unique(
            "alias", keep="first", maintain_order=True
        )
    inferred = infer_brand_from_title(base, vocab, row_id=row_id)
    code_src = base.select(
        row_id,
        pl.coalesce(pl.col("model").cast(pl.String), pl.col("model_code").cast(pl.String)).alias(
            "__model_field"
        ),
        "__name_units",
    )
    codes = model_code_candidates(
        code_src,
        ["__model_field", "__name_units"],
        row_id=row_id,
        units_normalized={"__name_units"},
    )
    ranked = codes.group_by(row_id).agg(
        pl.col("code").sort_by("rank").first().alias("__code"),
        pl.col("code").sort_by("rank").str.join(" ").alias("model_codes"),
    )
    out = (
        base.join(inferred, on=row_id, how="left")
        .join(ranked, on=row_id, how="left")
        .sort(row_id)
        .with_columns(
            brand=pl.coalesce("__brand_field", "brand_inferred"),
            model_code=pl.col("__code"),
            model_codes=pl.col("model_codes").fill_null(""),  # '' = looked, found none
            category=pl.when(pl.col("__category").str.len_chars() > 0)
            .then(pl.col("__category"))
            .otherwise(None),
        )
    )
    drop = [row_id, "__name_units", "__brand_field", "brand_inferred", "__code", "__category"]
    return out.drop(drop + [c for c in added if c not in ("brand", "category", "model_code")])


def _stored_or_extracted_codes(base: pl.DataFrame) -> pl.DataFrame:
    """``idx, code, rank`` for every listing: the ``model_codes`` normalisation stored, or,
    for listings without them (built by hand, or from before they were stored), codes
    extracted from ``model_code`` and ``name`` now."""
    stored = pl.col("model_codes").is_not_null() if "model_codes" in base.columns else pl.lit(False)
    known = base.filter(stored)
    have = (
        known.select("idx", pl.col("model_codes").str.split(" ").alias("code"))
        .explode("code")
        .filter(pl.col("code").str.len_chars() > 0)
    )
    have = have.with_columns(position_in_runs(have["idx"]).alias("rank"))
    missing = base.filter(~stored).select("idx", "model_code", "name")
    extracted = model_code_candidates(missing, ["model_code", "name"], row_id="idx").select(
        "idx", "code", "rank"
    )
    return pl.concat([have.cast({"rank": pl.Int64}), extracted.cast({"rank": pl.Int64})])


def matching_records(listings: pl.DataFrame) -> pl.DataFrame:
    """The matcher's working frame: one row per listing with an integer ``idx``.

    Adds every code candidate (``codes``) and its stem (``stems``) as lists, the price used
    for comparisons (offer, else list, else card) and ``text``, the string the TF-IDF
    blocker and the cosine feature read: the normalised title plus the compact codes, so
    'UN-55CU7000' and 'UN55CU7000GXZS' share most of their n-grams. A ``description``
    column is passed through when the listings have one (null otherwise).
    """
    base = listings.with_row_index("idx").with_columns(pl.col("idx").cast(pl.Int64))
    for col in ("name_norm", "brand", "model_code", "category", "name", "description"):
        if col not in base.columns:
            base = base.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    for col in ("price_offer", "price_list", "price_card"):
        if col not in base.columns:
            base = base.with_columns(pl.lit(None, dtype=pl.Int64).alias(col))
    codes = _stored_or_extracted_codes(base)
    stems = codes.with_columns(stem=code_stem(pl.col("code"))).filter(
        (pl.col("stem") != pl.col("code"))
        & (pl.col("stem").str.len_chars() >= MIN_KEY_LEN)
        & pl.col("stem").str.contains(r"[A-Z]")
    )
    code_lists = codes.group_by("idx").agg(pl.col("code").sort_by("rank").alias("codes"))
    stem_lists = stems.group_by("idx").agg(pl.col("stem").unique().sort().alias("stems"))
    empty = pl.lit([], dtype=pl.List(pl.String))
    return (
        base.join(code_lists, on="idx", how="left")
        .join(stem_lists, on="idx", how="left")
        .sort("idx")
        .with_columns(
            pl.col("codes").fill_null(empty),
            pl.col("stems").fill_null(empty),
            pl.coalesce(
                pl.when(pl.col("price_offer") > 0).then(pl.col("price_offer")),
                pl.when(pl.col("price_list") > 0).then(pl.col("price_list")),
                pl.when(pl.col("price_card") > 0).then(pl.col("price_card")),
            )
            .cast(pl.Float64)
            .alias("price"),
            pl.col("name_norm").fill_null(""),
        )
        .with_columns(
            text=pl.concat_str(
                [pl.col("name_norm"), pl.col("codes").list.join(" ").str.to_lowercase()],
                separator=" ",
            )
        )
        .select(
            "idx",
            "retailer",
            "sku",
            "name",
            "name_norm",
            "brand",
            "model_code",
            "category",
            "price",
            "codes",
            "stems",
            "text",
            pl.col("description").cast(pl.String),
        )
    )
