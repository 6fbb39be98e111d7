"""Per-listing inputs of the pair features, derived once per listing, not per pair.

Sets (codes and their stems, units and their rounded values, plain numbers, numbered
words, tier words, colours, short model tokens) as list columns, compact spellings of the
title and description for containment checks, and the strings the similarity scorers
compare (``record_features``).
"""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.matching.lexicon import (
    ANCHOR_STOPWORDS,
    COLORS,
    NOT_SHORT_CODES,
    TIER_WORDS,
)
from arbx_dagster.domain.matching.model_codes import code_stem
from arbx_dagster.domain.matching.titles import UNIT_TOKEN


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
