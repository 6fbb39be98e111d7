"""Chilean peso amounts as the stores print them: ``$1.299.990``, ``Normal: $49.990``, ``1299990``.

The dot groups thousands and a comma would start (always zero) decimals. Anything we cannot
read unambiguously is an error, never a guess: a wrong price is worse than no price, and the
row that carried it goes to quarantine with the text that failed. The scalar parser (per
JSON/HTML item) and the Polars expression (whole files) follow the same rules.
"""

from __future__ import annotations

import re

import polars as pl

_NUMBER = r"\d[\d.,]*\d|\d"
_CHILEAN = r"(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,0+)?"
_FOREIGN = r"(?i)US\$|U\$S|\bUSD\b|\bEUR\b|€|\bUF\b"
_NEGATIVE = r"-\s*(?:CLP)?\s*\$?\s*\d"

_NUMBER_RE = re.compile(_NUMBER)
_CHILEAN_RE = re.compile(_CHILEAN)
_FOREIGN_RE = re.compile(_FOREIGN)
_NEGATIVE_RE = re.compile(_NEGATIVE)


class PriceParseError(ValueError):
    """A price was shown but its text is not an unambiguous CLP amount."""


def parse_clp(value: object) -> int | None:
    """Integer CLP from a store's price value; ``None`` when no price is shown.

    Raises :class:`PriceParseError` for text that is not one CLP amount (several numbers,
    foreign currency, US-style grouping, fractional pesos). Zero and negative amounts are
    returned as read: judging them is the validator's job, with a reason.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise PriceParseError(f"not a price: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or not value.is_integer():  # NaN or fractional pesos
            raise PriceParseError(f"not a whole CLP amount: {value!r}")
        return int(value)
    text = str(value).strip()
    if not text:
        return None
    if _FOREIGN_RE.search(text):
        raise PriceParseError(f"not a CLP price: {text!r}")
    numbers = _NUMBER_RE.findall(text)
    if len(numbers) != 1:
        what = "no amount" if not numbers else "several amounts"
        raise PriceParseError(f"{what} in price text {text!r}")
    token = numbers[0]
    if not _CHILEAN_RE.fullmatch(token):
        raise PriceParseError(f"not a Chilean peso amount: {text!r}")
    amount = int(token.split(",")[0].replace(".", ""))
    return -amount if _NEGATIVE_RE.search(text) else amount


def clp_expr(column: pl.Expr) -> pl.Expr:
    """Vectorised :func:`parse_clp` over a String column: null where absent or unparsable.

    Pair it with :func:`clp_error_expr` to tell "not shown" from "shown but unreadable".
    """
    text = column.str.strip_chars()
    token = text.str.extract_all(_NUMBER).list.first()
    amount = token.str.replace(r",0+$", "").str.replace_all(".", "", literal=True)
    value = amount.cast(pl.Int64, strict=False)
    ok = _readable(text)
    return (
        pl.when(ok & text.str.contains(_NEGATIVE)).then(-value).when(ok).then(value).otherwise(None)
    )


def clp_error_expr(column: pl.Expr) -> pl.Expr:
    """True where a price text is present but not a readable CLP amount."""
    text = column.str.strip_chars()
    return (text.is_not_null() & (text != "") & ~_readable(text)).fill_null(False)


def _readable(text: pl.Expr) -> pl.Expr:
    numbers = text.str.extract_all(_NUMBER)
    return (
        (numbers.list.len() == 1)
        & numbers.list.first().str.contains(f"^{_CHILEAN}$")
        & ~text.str.contains(_FOREIGN)
    ).fill_null(False)
