"""What went wrong with a glitch, and how bad it is (rules in ``glitches.py``'s docstring).

* :func:`glitch_type` — ``pack_size``, ``digit_slip``, ``thousands``, ``currency``,
  ``implausible`` or ``deep_discount``: the price shown matched against its reference
  scaled by a pack size, x10 / x100, x1000 or an exchange rate, within ``SCALE_TOLERANCE``.
* :func:`severity` and :func:`depth_pct` — by ``price / reference``; any price under the
  shelf floor is 'high'. A deeper price is never less severe.
* :func:`priced_glitches` — margin and ROI (spread cost model; ROI capped at
  ``GLITCH_ROI_CAP_PCT``), severity and depth of glitch rows; :func:`as_shown` the same for
  stored opportunity rows.
"""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.money import currency
from arbx_dagster.domain.opportunities import with_margin

GLITCH_ROI_CAP_PCT = 1_000.0
SCALE_TOLERANCE = 0.08  # log: x n / x10 / x100 / x1000 within ~8 % of the reference
USD_RATIO = (600.0, 1_300.0)  # CLP per US dollar, with room for years of exchange rates
GLITCH_TYPES = (
    "pack_size",
    "digit_slip",
    "thousands",
    "currency",
    "implausible",
    "deep_discount",
)

_PACK_PATTERNS = (
    r"(?i)\bpack\s*(?:de\s*)?x?\s*(\d{1,3})\b",
    r"(?i)\b(\d{1,3})\s*(?:unidades|unid|uds|un)\b",
    r"(?i)(?:^|\s)x\s?(\d{1,2})\b",
)


def _severity(ratio: pl.Expr, thresholds: Thresholds) -> pl.Expr:
    return (
        pl.when(ratio <= thresholds.glitch_ratio_high)
        .then(pl.lit("high"))
        .when(ratio <= thresholds.glitch_ratio_medium)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def severity(price: pl.Expr, ref: pl.Expr, thresholds: Thresholds) -> pl.Expr:
    """Severity of a glitch at ``price`` against ``ref``: by their ratio, and 'high' for any
    price under the shelf floor. Never less severe for a lower price."""
    by_ratio = _severity(price / ref, thresholds)
    floor = currency(thresholds.currency).shelf_floor
    return pl.when(price < floor).then(pl.lit("high")).otherwise(by_ratio)


def depth_pct(price: pl.Expr, ref: pl.Expr) -> pl.Expr:
    """How far below its reference a price is, in percent (-99.9 for 1 CLP vs 90.000)."""
    return 100.0 * (price / ref - 1.0)


def priced_glitches(glitches: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Margin, ROI (capped: a 1 CLP buy has no meaningful ROI), severity and depth of glitch
    rows from their ``buy_price`` and ``ref_price``."""
    buy, ref = pl.col("buy_price"), pl.col("ref_price")
    return with_margin(glitches, thresholds).with_columns(
        roi_pct=pl.col("roi_pct").clip(upper_bound=GLITCH_ROI_CAP_PCT),
        severity=severity(buy, ref, thresholds),
        depth_pct=depth_pct(buy, ref),
    )


def as_shown(opportunities: pl.DataFrame) -> pl.DataFrame:
    """Opportunity rows as users see them: ``depth_pct`` (how far the buy price sits below
    the reference, -99.9 for 1 CLP against 90.000; a glitch is shown with it, not its ROI)
    and a glitch's ROI capped at ``GLITCH_ROI_CAP_PCT`` (rows stored before the cap)."""
    glitch = pl.col("kind") == "glitch"
    return opportunities.with_columns(
        depth_pct=depth_pct(pl.col("buy_price"), pl.col("ref_price")),
        roi_pct=pl.when(glitch)
        .then(pl.col("roi_pct").clip(upper_bound=GLITCH_ROI_CAP_PCT))
        .otherwise(pl.col("roi_pct")),
    )


def pack_size(name: pl.Expr) -> pl.Expr:
    """Units in a pack named in the title (``Pack 6``, ``12 unidades``, ``x6``); null if none."""
    found = pl.coalesce(
        [name.str.extract(p, 1).cast(pl.Int32, strict=False) for p in _PACK_PATTERNS]
    )
    return pl.when(found.is_between(2, 100)).then(found)


def glitch_type(price: pl.Expr, ref: pl.Expr, pack: pl.Expr, code: str = "CLP") -> pl.Expr:
    """What most likely went wrong (order and tolerance in ``glitches.py``'s docstring), in a
    market priced in ``code`` (a price typed in US dollars is a peso market's slip)."""
    unit = currency(code)

    def matches(factor: pl.Expr | float) -> pl.Expr:
        return (price * factor / ref).log().abs() <= SCALE_TOLERANCE

    ratio = ref / price
    return (
        pl.when(pack.is_not_null() & matches(pack.cast(pl.Float64)))
        .then(pl.lit("pack_size"))
        .when(matches(10.0) | matches(100.0))
        .then(pl.lit("digit_slip"))
        .when(matches(1000.0))
        .then(pl.lit("thousands"))
        .when(pl.lit(unit.code == "CLP") & ratio.is_between(*USD_RATIO))
        .then(pl.lit("currency"))
        .when(price < unit.implausible_below)
        .then(pl.lit("implausible"))
        .otherwise(pl.lit("deep_discount"))
    )


__all__ = [
    "GLITCH_ROI_CAP_PCT",
    "GLITCH_TYPES",
    "SCALE_TOLERANCE",
    "as_shown",
    "depth_pct",
    "glitch_type",
    "pack_size",
    "priced_glitches",
    "severity",
]
