"""Model codes: the code-like tokens of a listing, normalised, stemmed and ranked.

'UN-55CU7000', 'un55cu7000' and 'UN55CU7000GXZS' are one model: codes lose their
separators and case (``normalize_code``), and their region / colour suffix gives a stem
(``code_stem``) a store that drops the suffix still meets. Measures ('128GB', '1080P'),
standards ('USB3', 'DDR5') and ordinals are not codes.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from arbx_dagster.domain.frames import position_in_runs, select_streamed
from arbx_dagster.domain.matching.titles import UNIT_SUFFIXES, fold, normalize_units

# A run of alphanumerics possibly joined by - / . _ (UN-55CU7000, MB739LL/A, 1EE0.052.02).
CODE_TOKEN = r"[A-Z0-9]+(?:[-/._][A-Z0-9]+)*"
# Compact tokens that look like a code but are a measure, a standard or an ordinal.
NOT_A_CODE = (
    r"^(?:\d+(?:"
    + "|".join(sorted((u.upper() for u in UNIT_SUFFIXES), key=len, reverse=True))
    + r"|P|I|K|X|G|T|TH|ST|ND|RD|PC|PCS|PK|PZ|PZAS|PACK|MS|DB|A|AH|MA|CH|D|FPS)"
    r"|(?:USB|HDMI|DDR|LPDDR|GDDR|WIFI|PS|MP|SATA|PCIE|RTX|GTX|DVB|H|X|V|IP|BT|RJ|AAA|AA|LTE|CAT)"
    r"\d{1,3}[A-Z]?|\d{1,4}X\d{1,4}[A-Z]*|(?:1080|720|480|2160|4320)[PI]|802\d*[A-Z]*|\d{1,2}IN\d{1,2})$"
)
# Short codes ('N96', 'D90', 'A15') are real model names, but only as letters + digits.
MIN_CODE_LEN = 3
MIN_KEY_LEN = 4  # shorter codes are too common to block on or to search inside titles

# A number with a canonical unit as ``normalize_units`` writes it, upper-cased ('64GB ').
_MEASURE = (
    r"\d+(?:\.\d+)?(?:"
    + "|".join(sorted((u.upper() for u in UNIT_SUFFIXES), key=len, reverse=True))
    + r")(?:\s|$)"
)


def normalize_code(expr: pl.Expr) -> pl.Expr:
    """Upper-case a model code and drop separators: 'un-55cu7000' -> 'UN55CU7000'."""
    return fold(expr).str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def code_stem(expr: pl.Expr) -> pl.Expr:
    """The code up to its last digit, without region / colour suffix.

    'UN55CU7000GXZS' -> 'UN55CU7000', so a store that drops the suffix still meets it.
    """
    return expr.str.replace(r"^(.*\d)[A-Z]+$", "${1}")


def model_code_candidates(
    df: pl.DataFrame,
    text_cols: list[str],
    *,
    row_id: str = "__row",
    units_normalized: Collection[str] = (),
) -> pl.DataFrame:
    """Every code-like token of each row, ranked, as ``row_id, code, stem, rank`` rows.

    A code has letters and digits (or is a digit string of 5+), at least ``MIN_CODE_LEN``
    characters once separators are dropped, and is not a measure like '128GB' or '1080P'.
    Ranking prefers the store's model field, then mixed letter+digit codes, then longer
    ones, then the later in the title (stores append the code at the end).
    ``units_normalized`` names the text columns ``normalize_units`` already ran on.
    """
    parts = []
    for priority, col in enumerate(text_cols):
        text = pl.col(col) if col in units_normalized else normalize_units(pl.col(col))
        parts.append(
            select_streamed(
                df.filter(pl.col(col).is_not_null()),  # (a store's model field often is)
                pl.col(row_id),
                text.str.to_uppercase()
                # a measure joined on is not part of the code: 'DTSE9G2/64GB' -> 'DTSE9G2'
                .str.replace_all(r"[-/._](" + _MEASURE + r")", " ${1}")
                .str.extract_all(CODE_TOKEN)
                .alias("raw"),
            )
            .with_columns(pl.lit(priority).alias("source"))
            .explode("raw")
        )
        parts[-1] = parts[-1].with_columns(position_in_runs(parts[-1][row_id]).alias("position"))
    # one streamed pass: normalize, describe, filter and grade every token
    tokens = pl.concat(parts).lazy().drop_nulls("raw")
    tokens = tokens.with_columns(code=normalize_code(pl.col("raw"))).with_columns(
        has_digit=pl.col("code").str.contains(r"\d"),
        has_alpha=pl.col("code").str.contains(r"[A-Z]"),
        n_digits=pl.col("code").str.count_matches(r"\d"),
        length=pl.col("code").str.len_chars(),
    )
    mixed = pl.col("has_digit") & pl.col("has_alpha")
    # Digit-only codes (part numbers like '3730001') but not '10/100' or '2-1/2'.
    long_number = ~pl.col("has_alpha") & (pl.col("length") >= 5) & ~pl.col("raw").str.contains("/")
    tokens = tokens.filter(
        (pl.col("length") >= MIN_CODE_LEN)
        & (pl.col("length") <= 24)
        & (mixed | long_number)
        & ~pl.col("code").str.contains(NOT_A_CODE)
        # Decimal numbers with units ('2.5KG') are not codes, nor are words with a small
        # number hyphenated on ('8-PORT', '2-1/5-CUBIC-FOOT').
        & ~pl.col("raw").str.contains(r"^\d+\.\d+[A-Z]{0,3}$")
        & ~(
            (pl.col("n_digits") <= 3)
            & pl.col("raw").str.contains(r"(?:^|[-/._])[A-Z]{4,}(?:$|[-/._])")
        )
    )
    tokens = tokens.with_columns(
        stem=code_stem(pl.col("code")),
        quality=(
            mixed.cast(pl.Int32) * 4
            + (pl.col("n_digits") >= 2).cast(pl.Int32) * 2
            + (pl.col("length") >= 6).cast(pl.Int32)
        ),
    )
    ranked = (
        tokens.collect(engine="streaming")
        .sort(
            [row_id, "source", "quality", "length", "position"],
            descending=[False, False, True, True, True],
        )
        .unique([row_id, "code"], keep="first", maintain_order=True)
    )
    return ranked.with_columns(position_in_runs(ranked[row_id]).alias("rank")).select(
        row_id, "code", "stem", "rank"
    )
