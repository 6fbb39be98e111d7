"""Prices as the stores print them, read into integer minor units of the source's currency.

**CLP** (the default; no minor unit): ``$1.299.990``, ``Normal: $49.990``, ``1299990``. The
dot groups thousands and a comma would start (always zero) decimals.

**Two-decimal currencies** (USD, EUR, GBP…, see ``domain/money.py``): amounts become cents.
``$1,299.00``, ``1.299,00 €``, ``1299.99``, ``59.0``, ``US$ 12``. A ``.`` or ``,`` followed
by one or two final digits is the decimal mark; commas followed by groups of exactly three
digits group thousands (``1,299`` is 1299.00). Dots group thousands only where that cannot
be a decimal number written by a program: several groups (``1.299.000``) or before comma
decimals (``1.299,00``); a lone ``1.299`` (or ``12.999``) is an error, since three
decimals are not an amount of the currency and a float export would read that way.
Numbers (not text) are whole units: ``1299`` is 129900 cents, as ``"1299"`` is.

Anything we cannot read unambiguously is an error, never a guess: a wrong price is worse
than no price, and the row that carried it goes to quarantine with the text that failed
(several numbers, another currency's sign or code, a mark that fits neither rule). The
scalar parsers (per JSON/HTML item) and the Polars expressions (whole files) follow the
same rules.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal

import polars as pl

from arbx_dagster.domain.money import CURRENCIES, OTHER_MARKERS, Currency, currency

_NUMBER = r"\d[\d.,]*\d|\d"
_CHILEAN = r"(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,0+)?"
_FOREIGN = r"(?i)US\$|U\$S|\bUSD\b|\bEUR\b|€|\bUF\b"
_NEGATIVE = r"-\s*(?:CLP)?\s*\$?\s*\d"

_MAX_WHOLE_DIGITS = 15

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


# --- any supported currency ------------------------------------------------------------


def parse_price(value: object, currency_code: str) -> int | None:
    """Integer minor units of ``currency_code`` from a store's price value; ``None`` when
    no price is shown. CLP is :func:`parse_clp`; for a two-decimal currency the rules of
    :func:`price_expr` apply (the same expression, on one value).

    Raises :class:`PriceParseError` naming the currency and the value when the value is not
    one amount of that currency.
    """
    money = currency(currency_code)
    if money.minor_digits == 0:
        return parse_clp(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise PriceParseError(f"not a {money.code} price: {value!r}")
    if isinstance(value, int):
        return value * money.minor_per_unit
    if isinstance(value, float):
        amount = Decimal(repr(value)) * money.minor_per_unit if math.isfinite(value) else None
        if amount is None or amount != amount.to_integral_value():
            raise PriceParseError(f"not a {money.code} amount: {value!r}")
        return int(amount)
    text = str(value)
    column = pl.lit(text, dtype=pl.String)
    found = pl.select(amount=price_expr(column, money.code), problem=_problem(column, money))
    problem = found["problem"][0]
    if problem is not None:
        raise PriceParseError(f"{problem}: {text.strip()!r}")
    amount = found["amount"][0]
    return None if amount is None else int(amount)


def price_expr(column: pl.Expr, currency_code: str) -> pl.Expr:
    """Vectorised :func:`parse_price` over a String column: null where absent or unparsable
    (pair it with :func:`price_error_expr`)."""
    money = currency(currency_code)
    if money.minor_digits == 0:
        return clp_expr(column)
    text = column.str.strip_chars()
    token = text.str.extract_all(_NUMBER).list.first()
    value = _minor_units(token, money)
    ok = _problem(column, money).is_null() & value.is_not_null()
    negative = text.str.contains(f"(?i)-\\s*(?:{_markers()})?\\s*\\d")
    return pl.when(ok & negative).then(-value).when(ok).then(value).otherwise(None)


def price_error_expr(column: pl.Expr, currency_code: str) -> pl.Expr:
    """True where a price text is present but not one amount of ``currency_code``."""
    money = currency(currency_code)
    if money.minor_digits == 0:
        return clp_error_expr(column)
    return _problem(column, money).is_not_null().fill_null(False)


@functools.cache
def _markers() -> str:
    """Every currency sign or code we know, longest first (an alternation)."""
    signs = sorted({s for c in CURRENCIES.values() for s in c.symbols}, key=len, reverse=True)
    codes = [*CURRENCIES, *OTHER_MARKERS]
    return "|".join([*(re.escape(s) for s in signs), *(rf"\b{c}\b" for c in codes)])


def _grammar(digits: int) -> str:
    """One amount: plain (``1299.99``, ``12,5``), grouped by commas (``1,299``,
    ``1,299.00``), or by dots before comma decimals or in several groups (``1.299,00``,
    ``1.299.000``)."""
    fraction = rf"\d{{1,{digits}}}"
    return (
        rf"^(?:\d+(?:[.,]{fraction})?"
        rf"|\d{{1,3}}(?:,\d{{3}})+(?:\.{fraction})?"
        rf"|\d{{1,3}}(?:\.\d{{3}})+,{fraction}"
        rf"|\d{{1,3}}(?:\.\d{{3}}){{2,}})$"
    )


def _minor_units(token: pl.Expr, money: Currency) -> pl.Expr:
    digits = money.minor_digits
    fraction = token.str.extract(rf"[.,](\d{{1,{digits}}})$", 1)
    whole = token.str.replace(rf"[.,]\d{{1,{digits}}}$", "").str.replace_all(r"[.,]", "")
    cents = fraction.str.pad_end(digits, "0").cast(pl.Int64, strict=False).fill_null(0)
    units = whole.cast(pl.Int64, strict=False)
    # beyond 15 digits of whole units no price is real, and minor units could overflow
    return pl.when(whole.str.len_chars() <= _MAX_WHOLE_DIGITS).then(
        units * money.minor_per_unit + cents
    )


def _problem(column: pl.Expr, money: Currency) -> pl.Expr:
    """Why a present price text is not one amount of ``money`` (null when it is, or when
    there is no text)."""
    text = column.str.strip_chars()
    own = [money.code, *(s.upper() for s in money.symbols)]
    foreign = (
        text.str.extract_all(f"(?i){_markers()}")
        .list.eval(~pl.element().str.to_uppercase().is_in(own))
        .list.any()
    )
    numbers = text.str.extract_all(_NUMBER)
    token = numbers.list.first()
    well_formed = token.str.contains(_grammar(money.minor_digits)) & ~text.str.contains(
        r"(?:^|[^\d.,])[.,]\d"  # '.99': a mark with no digit before it
    )
    code = money.code
    return (
        pl.when(text.is_null() | (text == ""))
        .then(pl.lit(None, dtype=pl.String))
        .when(foreign)
        .then(pl.lit(f"{code} price names another currency"))
        .when(numbers.list.len() == 0)
        .then(pl.lit(f"no {code} amount"))
        .when(numbers.list.len() > 1)
        .then(pl.lit(f"several amounts in {code} price text"))
        .when(~well_formed | _minor_units(token, money).is_null())
        .then(pl.lit(f"not a {code} amount"))
    )
