"""Small text helpers shared by the catalogue and the stores: templates, accents, slugs, codes."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import polars as pl

_FIELD = re.compile(r"\{(\w+)\}")
_ACCENTED = ["á", "é", "í", "ó", "ú", "Á", "É", "Í", "Ó", "Ú", "ü", "Ü"]
_PLAIN = ["a", "e", "i", "o", "u", "A", "E", "I", "O", "U", "u", "U"]


def fields(template: str) -> set[str]:
    """Names of the ``{placeholders}`` in ``template``."""
    return set(_FIELD.findall(template))


def render(template: str) -> pl.Expr:
    """A template such as ``'Smart TV {brand} {size}"'`` as a string expression over columns.

    Every referenced column must be a non-null string column. Empty fields leave runs of
    spaces: wrap the result in :func:`squash` where that matters.
    """
    parts: list[pl.Expr] = []
    position = 0
    for match in _FIELD.finditer(template):
        if match.start() > position:
            parts.append(pl.lit(template[position : match.start()]))
        parts.append(pl.col(match.group(1)))
        position = match.end()
    if position < len(template):
        parts.append(pl.lit(template[position:]))
    return pl.concat_str(parts) if parts else pl.lit("")


def squash(expr: pl.Expr) -> pl.Expr:
    """Collapse the runs of spaces that empty template fields leave (up to 8), and trim."""
    for _ in range(3):  # literal replaces: much faster than a regex on millions of rows
        expr = expr.str.replace_all("  ", " ", literal=True)
    return expr.str.strip_chars()


def strip_accents(expr: pl.Expr) -> pl.Expr:
    """Drop Spanish accents (stores and sellers often do), keeping ñ."""
    return expr.str.replace_many(_ACCENTED, _PLAIN)


def slug(expr: pl.Expr, *, punctuation: Iterable[str]) -> pl.Expr:
    """URL slug of a title: accents dropped, ``punctuation`` and spaces become single dashes.

    ``punctuation`` must list every non-alphanumeric character the titles can contain (one
    multi-pattern replace is much faster than a regex over millions of titles).
    """
    marks = sorted(set(punctuation) | {" ", "-"})
    text = expr.str.replace_many(
        [*_ACCENTED, "ñ", "Ñ", *marks], [*_PLAIN, "n", "N", *["-"] * len(marks)]
    )
    for _ in range(3):  # runs of up to 8 marks, e.g. '55") -'
        text = text.str.replace_all("--", "-", literal=True)
    return text.str.strip_chars("-")


def punctuation_of(texts: Iterable[str]) -> set[str]:
    """The characters of ``texts`` that are neither letters nor digits."""
    return {char for text in texts for char in text if not char.isalnum()}


def encode(values: np.ndarray, alphabet: str, width: int) -> pl.Series:
    """Non-negative integers as fixed-width strings over ``alphabet`` (most significant first)."""
    if alphabet == "0123456789":  # plain decimals: let Polars print them
        return pl.Series(values.astype(np.int64)).cast(pl.String).str.zfill(width)
    symbols = pl.Series(list(alphabet), dtype=pl.String)
    rest = values.astype(np.int64).copy()
    digits: list[pl.Series] = []
    for position in range(width):  # a handful of digit positions, not rows
        digits.append(symbols.gather(rest % len(alphabet)).alias(f"d{position}"))
        rest //= len(alphabet)
    if not digits or values.size == 0:
        return pl.Series([], dtype=pl.String)
    return pl.DataFrame(digits[::-1]).select(pl.concat_str(pl.all()))[:, 0]


def width_for(count: int, base: int, minimum: int) -> int:
    """Digits needed for ``count`` distinct values in ``base`` (never fewer than ``minimum``)."""
    width = max(minimum, 1)
    while base**width < count:
        width += 1
    return width
