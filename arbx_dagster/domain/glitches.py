"""Price glitches: a listing suddenly priced far below what it, and the market, normally charge.

Chilean stores have been made to honour mistaken prices, so a real glitch is worth a lot and
a false alarm costs trust. The rule therefore asks several robust references to agree. Each
is computed per listing from its daily closes *before* the day being judged:

* **common price** — the most frequent close over the 90 days before (ties: the lower).
* **robust z** — median and MAD of the log close over the same days; the MAD gets a floor
  (``MAD_FLOOR``, 5 % in log terms) because step-shaped retail prices make it zero.
* **level reset** — after a genuine permanent level shift the old level is history, not the
  reference: when the last ``RESET_DAYS`` (7) or more priced days all sit within
  ``LEVEL_BAND`` (±0.15 in log, about ±16 %) of the latest close and the 90-day common price
  does not, the own-history window starts at that new level. A mistaken price is fixed within
  hours or days; one that holds for a week is the price. (N = 7 = ``MIN_HISTORY_DAYS``: the
  new level is as well supported as any listing we judge at all.)
* **event baseline** — on CyberDay / CyberMonday / Black Friday days (``events.py``), the
  lowest close of the 30 days before the event. The own-history reference is then the lower
  of the common price and the baseline, so a price inflated before the event (the "fake
  discount" trick) cannot make a genuine event price look like a mistake.
* **others** — the same product at the *other* retailers (in stock or not, but fresh: any
  shown recent price is evidence of the market level): per retailer its cheapest listing,
  then the lower median across retailers (an actual store's price, so ``ref_retailer`` can
  name it; with two other stores it is the cheaper one).
* **market move** — how far the listing's retailer x category sits below normal that day:
  the median over its listings of log(price / common price), drops only. CyberDay, Black
  Friday or a scraper bug move a whole segment; the own-history references are scaled by that
  move, so a listing that merely followed its segment down is not a glitch, while one that
  fell far below it still is. A drop at *all* retailers is caught by the others: they are then
  just as cheap.

A price is flagged when, with ``low = thresholds.glitch_ratio_low`` and
``own = min(common * exp(move), event baseline)``: ``price <= low * own``; robust z (of log
price against the median shifted by the move, or the baseline when lower) <= ``Z_THRESHOLD``;
and (no other retailer shows the product, or ``price <= low * others``, or the others are far
*below* the listing — ``others <= low * price``, another store glitching deeper, which says
nothing about the market level). It needs ``MIN_HISTORY_DAYS`` priced days of history, must
be in stock (an unbuyable glitch is not an opportunity) and **fresh**: a price last seen more
than ``MAX_PRICE_AGE_HOURS`` before the evaluation (or of unknown age) never makes a glitch.

The reference reported is the *lower* of ``own`` and the others' price: the conservative one,
so severity is never overstated. ``ref_retailer`` is null when the listing's own history is
the reference. Severity by ``price / reference``: at or below ``glitch_ratio_high`` 'high',
``glitch_ratio_medium`` 'medium', otherwise 'low'. A high-severity glitch must be re-fetched
before it alerts, and so must a ``pack_size`` or ``currency`` one whatever its severity (it is
likelier a misread page than a price the store published): :func:`must_confirm`,
:func:`needs_confirmation` and :func:`confirm_glitches`.

**Unit, pack and currency mistakes are glitches, never silently rescaled.** The store showed
that price and may have to honour it; what went wrong is told in ``glitch_type`` (and in the
``reason`` text), checked against the reference in this order, within ``SCALE_TOLERANCE``:

* ``pack_size``   — the title names a pack of n (``Pack 6``, ``12 unidades``, ``x6``) and
  price x n matches: a pack sold at the unit price;
* ``digit_slip``  — price x 10 or x 100 matches: a lost digit (1.299.990 -> 129.990) or two;
* ``thousands``   — price x 1000 matches: entered in thousands of CLP (1.299.990 -> 1.300);
* ``currency``    — reference / price between 600 and 1.300: a price typed in US dollars;
* ``implausible`` — below ``MIN_PLAUSIBLE_CLP`` (CLP 1.000) with no pattern: the "CLP 4"
  headphones;
* ``deep_discount`` — none of the above.

Offer and card prices are separate series: each is evaluated on its own history and against
the same price type at the other stores, never mixed; card glitches say
``buy_price_type='card'``. A card price must also be ``<= low x`` the listing's own current
offer (when shown): a card price that merely follows its offer down is not a card glitch —
the offer series judges that move (a card series is often sparse, shown only during card
promotions, so its own history lags the offer's).

Glitches are reported whatever their margin (a CLP 4 pair of headphones is news); margin and
ROI use the spread cost model. Confidence = freshness x depth x corroboration, where depth =
``min(1, history days / 30)`` and corroboration = ``0.75 + 0.25 * match probability`` when
another retailer confirmed the price is abnormal, ``0.75`` when only the listing's own
history did. Ids hash ``glitch|canonical_id|retailer|sku|price_type``:
offer and card glitches of one listing are separate opportunities.

Everything is vectorised over a *panel* of points (see ``opportunities.py``): the pipeline
scores one point per listing (:func:`find_glitches`); the benchmark scores every listing on
every day, walking forward, with the same code (:func:`glitch_panel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.history import day_of, market_day
from arbx_dagster.domain.opportunities import (
    DETAIL_SCHEMA,
    as_panel,
    enabled_listings,
    freshness,
    is_fresh,
    opportunity_id,
    shown,
    text_map,
    with_margin,
)
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform, empty
from arbx_dagster.reporting.format import clp

WINDOW_DAYS = 90
MIN_HISTORY_DAYS = 7
RESET_DAYS = 7
LEVEL_BAND = 0.15
FULL_DEPTH_DAYS = 30
MAD_FLOOR = 0.05  # log units: a listing's "normal" wiggle is never taken as below ~5 %
MAD_TO_SIGMA = 1.4826  # scales the MAD to a standard deviation for normal data
Z_THRESHOLD = -3.5  # the usual cut-off for robust (modified) z-scores
MIN_SEGMENT_LISTINGS = 3  # fewer listings say nothing about a market-wide move
UNCORROBORATED = 0.75
SCALE_TOLERANCE = 0.08  # log: x n / x10 / x100 / x1000 within ~8 % of the reference
MIN_PLAUSIBLE_CLP = 1_000
USD_RATIO = (600.0, 1_300.0)  # CLP per US dollar, with room for years of exchange rates
GLITCH_TYPES = (
    "pack_size",
    "digit_slip",
    "thousands",
    "currency",
    "implausible",
    "deep_discount",
)

SERIES: dict[str, str] = {"offer": "price_offer", "card": "price_card"}

GLITCH_DETAIL_SCHEMA: dict[str, pl.DataType] = {
    **DETAIL_SCHEMA,
    "glitch_type": pl.String(),
    "common_price": pl.Int64(),  # the own-history reference before the market move
    "others_price": pl.Int64(),
    "event_baseline": pl.Int64(),
    "robust_z": pl.Float64(),
    "history_days": pl.Int32(),
    "level_reset": pl.Boolean(),
    "needs_confirmation": pl.Boolean(),
}

_KEY = ["retailer", "sku"]
_WINDOW = ["retailer", "sku", "current_day"]
_PACK_PATTERNS = (
    r"(?i)\bpack\s*(?:de\s*)?x?\s*(\d{1,3})\b",
    r"(?i)\b(\d{1,3})\s*(?:unidades|unid|uds|un)\b",
    r"(?i)(?:^|\s)x\s?(\d{1,2})\b",
)


def market_points(
    market: pl.DataFrame | pl.LazyFrame, thresholds: Thresholds, now: datetime
) -> pl.LazyFrame:
    """Current listings as one panel evaluated at ``now``, each with the day its price is of."""
    return enabled_listings(as_panel(market, now), thresholds).with_columns(
        current_day=market_day(pl.col("last_seen")).fill_null(day_of(now))
    )


def _asof(left: pl.DataFrame, right: pl.DataFrame, on: str, by: list[str]) -> pl.DataFrame:
    """Backward as-of join: the latest ``right`` row (sorted by ``day``) at or before
    ``left[on]`` within each ``by`` group."""
    return left.sort(on).join_asof(
        right,
        left_on=on,
        right_on="day",
        by=by,
        strategy="backward",
        check_sortedness=False,  # sorted by day overall, hence within each group
    )


def _weighted_median(frame: pl.DataFrame, value: str) -> pl.DataFrame:
    """Median of ``value`` per window where each row counts ``n`` times (Polars' definition:
    the mean of the two middle values when the count is even)."""
    ordered = frame.sort("wid", value).with_columns(
        cum=pl.col("n").cum_sum().over("wid"), total=pl.col("n").sum().over("wid")
    )
    middle = ordered.group_by("wid").agg(
        low=pl.col(value).filter(pl.col("cum") >= (pl.col("total") + 1) // 2).first(),
        high=pl.col(value).filter(pl.col("cum") >= pl.col("total") // 2 + 1).first(),
    )
    return middle.select("wid", median=(pl.col("low") + pl.col("high")) / 2)


def _mode(frame: pl.DataFrame) -> pl.DataFrame:
    """Most frequent price per window (ties: the lower price, the conservative one)."""
    return (
        frame.sort(["wid", "n", "p"], descending=[False, True, False])
        .unique(subset="wid", keep="first")
        .select("wid", mode="p")
    )


def window_stats(
    windows: pl.DataFrame,
    history: pl.DataFrame,
    column: str,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Own-history references per (retailer, sku, current_day) window of ``column``'s closes.

    Columns: common_price, history_days, log_median, log_scale, level_reset, event_baseline;
    windows with no priced day in their 90 days are absent.

    Retail prices are step functions: a listing has a handful of price *levels*, each seen on
    many days. Every statistic here is a function of how many days of the window each level
    was seen, which cumulative counts per level give through as-of joins — so scoring every
    day of months of history (the benchmark) costs windows x levels rows, not windows x days.
    """
    schema = {
        **{k: pl.String() for k in _KEY},
        "current_day": pl.Date(),
        "common_price": pl.Int64(),
        "history_days": pl.Int32(),
        "log_median": pl.Float64(),
        "log_scale": pl.Float64(),
        "level_reset": pl.Boolean(),
        "event_baseline": pl.Int64(),
    }
    windows = windows.select(_WINDOW).unique()
    if windows.is_empty() or history.is_empty():
        return pl.DataFrame(schema=schema)
    ids = windows.select(_KEY).unique().with_row_index("lid")
    # One close per listing and day (the PRICE_HISTORY_SCHEMA key).
    closes = (
        history.filter(shown(column))
        .join(ids, on=_KEY, how="inner")
        .select("lid", "day", p=pl.col(column).cast(pl.Int64))
        .with_columns(k=pl.col("day").rank("ordinal").over("lid").cast(pl.Int64))  # days so far
    )
    occurrences = closes.with_columns(  # days at this level so far
        c=pl.col("day").rank("ordinal").over("lid", "p").cast(pl.Int64)
    )
    levels = occurrences.group_by("lid", "p").agg(
        first=pl.col("day").min(), last=pl.col("day").max()
    )

    # Windows are the days (current_day - 90, current_day - 1]: ``lo`` excluded, ``hi`` included.
    wins = (
        windows.join(ids, on=_KEY)
        .with_row_index("wid")
        .with_columns(
            hi=pl.col("current_day") - timedelta(days=1),
            lo=pl.col("current_day") - timedelta(days=WINDOW_DAYS + 1),
        )
    )
    by_day = closes.sort("day")
    wins = _asof(wins, by_day.select("lid", "day", last_close="p", k_hi="k"), "hi", ["lid"]).filter(
        pl.col("day") > pl.col("lo")
    )  # at least one priced day in the window
    wins = wins.drop("day")

    per_level = (
        wins.select("wid", "lid", "hi", "lo")
        .join(levels, on="lid", how="inner")
        .filter((pl.col("first") <= pl.col("hi")) & (pl.col("last") > pl.col("lo")))
        .drop("first", "last")
    )
    level_occ = occurrences.select("lid", "p", "day", "c").sort("day")
    per_level = _asof(per_level, level_occ.rename({"c": "c_hi"}), "hi", ["lid", "p"])
    per_level = per_level.rename({"day": "level_last"})
    per_level = _asof(per_level, level_occ.rename({"c": "c_lo"}), "lo", ["lid", "p"])
    per_level = per_level.drop("day")
    per_level = per_level.with_columns(n=pl.col("c_hi") - pl.col("c_lo").fill_null(0)).filter(
        pl.col("n") > 0
    )

    # Level reset: the run of days since the last close out of the latest close's band.
    with_last = per_level.join(wins.select("wid", "last_close"), on="wid")
    out_of_band = (pl.col("p") / pl.col("last_close")).log().abs() > LEVEL_BAND
    breaks = (
        with_last.filter(out_of_band).group_by("wid").agg(last_break=pl.col("level_last").max())
    )
    wins = (
        wins.join(_mode(per_level).rename({"mode": "mode_full"}), on="wid")
        .join(breaks, on="wid", how="left")
        .join(
            closes.select("lid", last_break="day", k_break="k"),
            on=["lid", "last_break"],
            how="left",
        )
        .with_columns(
            level_reset=pl.col("last_break").is_not_null()
            & (pl.col("k_hi") - pl.col("k_break") >= RESET_DAYS)
            & ((pl.col("mode_full") / pl.col("last_close")).log().abs() > LEVEL_BAND)
        )
    )
    reset = wins.filter(pl.col("level_reset")).select("wid", "last_break")
    restarted = _asof(
        per_level.join(reset, on="wid", how="inner"),
        level_occ.rename({"c": "c_break"}),
        "last_break",
        ["lid", "p"],
    )
    restarted = (
        restarted.with_columns(n=pl.col("c_hi") - pl.col("c_break").fill_null(0))
        .filter(pl.col("n") > 0)
        .select(per_level.columns)
    )
    effective = pl.concat(
        [per_level.join(reset, on="wid", how="anti"), restarted.select(per_level.columns)]
    ).with_columns(log_p=pl.col("p").log())

    median = _weighted_median(effective, "log_p").rename({"median": "log_median"})
    deviations = effective.join(median, on="wid").with_columns(
        dev=(pl.col("log_p") - pl.col("log_median")).abs()
    )
    mad = _weighted_median(deviations, "dev").select(
        "wid", log_scale=(pl.col("median") * MAD_TO_SIGMA).clip(MAD_FLOOR)
    )
    days = effective.group_by("wid").agg(history_days=pl.col("n").sum())

    first = windows["current_day"].min() - timedelta(days=WINDOW_DAYS)  # type: ignore[operator]
    events = calendar.events(first, windows["current_day"].max())  # type: ignore[arg-type]
    baselines = [
        closes.filter(pl.col("day").is_between(e.baseline_start, e.start, closed="left"))
        .group_by("lid")
        .agg(event_baseline=pl.col("p").min())
        .with_columns(event_start=pl.lit(e.start))
        for e in events
    ]
    wins = wins.with_columns(
        event_start=calendar.event_start(pl.col("current_day"), first, windows["current_day"].max())  # type: ignore[arg-type]
    )
    if baselines:
        wins = wins.join(pl.concat(baselines), on=["lid", "event_start"], how="left")
    else:
        wins = wins.with_columns(event_baseline=pl.lit(None, dtype=pl.Int64))
    stats = (
        wins.join(_mode(effective).rename({"mode": "common_price"}), on="wid")
        .join(median, on="wid")
        .join(mad, on="wid")
        .join(days, on="wid")
        .join(ids, on="lid")
    )
    return conform(stats, schema)


def others_reference(current: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Per point (``pid``): the lower median of the other retailers' cheapest fresh price."""
    group = ["panel", "canonical_id"]
    per_retailer = (
        current.filter(
            pl.col("canonical_id").is_not_null()
            & is_fresh(pl.col("last_seen"), pl.col("as_of"), thresholds)
        )
        .sort("price", "sku")
        .unique(subset=[*group, "retailer"], keep="first", maintain_order=True)
        .select(
            *group,
            others_retailer="retailer",
            others_price="price",
            others_match="match_probability",
        )
    )
    return (
        current.select("pid", "retailer", *group)
        .join(per_retailer, on=group, how="inner")
        .filter(pl.col("others_retailer") != pl.col("retailer"))
        .sort("pid", "others_price", "others_retailer")
        .with_columns(pos=pl.int_range(pl.len()).over("pid"), n=pl.len().over("pid"))
        .filter(pl.col("pos") == (pl.col("n") - 1) // 2)
        .select("pid", "others_retailer", "others_price", "others_match")
    )


def market_move(scored: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``move``: the median log(price / common price) of the listing's retailer x category
    that day, when it is a drop and the segment has enough listings with a history (else 0).

    Measured against each listing's common price rather than yesterday's close, so an event or
    a scraper bug that began yesterday is still recognised on its second day.
    """
    segment = ["panel", "retailer", "category", "current_day"]
    change = (pl.col("price") / pl.col("common_price")).log()
    return scored.with_columns(
        move=pl.when(change.is_not_null().sum().over(segment) >= MIN_SEGMENT_LISTINGS)
        .then(change.median().over(segment).clip(upper_bound=0.0))
        .otherwise(0.0)
    )


def _severity(ratio: pl.Expr, thresholds: Thresholds) -> pl.Expr:
    return (
        pl.when(ratio <= thresholds.glitch_ratio_high)
        .then(pl.lit("high"))
        .when(ratio <= thresholds.glitch_ratio_medium)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def pack_size(name: pl.Expr) -> pl.Expr:
    """Units in a pack named in the title (``Pack 6``, ``12 unidades``, ``x6``); null if none."""
    found = pl.coalesce(
        [name.str.extract(p, 1).cast(pl.Int32, strict=False) for p in _PACK_PATTERNS]
    )
    return pl.when(found.is_between(2, 100)).then(found)


def glitch_type(price: pl.Expr, ref: pl.Expr, pack: pl.Expr) -> pl.Expr:
    """What most likely went wrong (order and tolerance in the module docstring)."""

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
        .when(ratio.is_between(*USD_RATIO))
        .then(pl.lit("currency"))
        .when(price < MIN_PLAUSIBLE_CLP)
        .then(pl.lit("implausible"))
        .otherwise(pl.lit("deep_discount"))
    )


_TYPE_TEXT = {
    "pack_size": "likely a pack sold at the unit price (x{pack})",
    "digit_slip": "likely a lost digit (x{factor})",
    "thousands": "likely entered in thousands of CLP (x1000)",
    "currency": "likely typed in US dollars",
    "implausible": "no real CLP price is this low",
    "deep_discount": "far below every reference",
}


def _glitch_reason(
    buy_price_type: str,
    buy_price: int,
    ref_price: int,
    ref_retailer: str | None,
    common_price: int,
    history_days: int,
    robust_z: float,
    others_retailer: str | None,
    others_price: int | None,
    event_baseline: int | None,
    level_reset: bool,
    glitch_type: str,
    pack: int | None,
) -> str:
    pct = 100 * buy_price / ref_price if ref_price else 0.0
    against = ref_retailer or "its own history"
    common = "new level" if level_reset else "most frequent price"
    parts = [
        f"{buy_price_type} {clp(buy_price)} is {pct:.0f} % of {clp(ref_price)} ({against})",
        f"{common} {clp(common_price)} over {history_days} d, robust z {robust_z:.1f}",
    ]
    if others_price is not None:
        parts.append(f"{others_retailer} {clp(others_price)}")
    if event_baseline is not None:
        parts.append(f"30-day pre-event low {clp(event_baseline)}")
    factor = 10 if abs(math.log(buy_price * 10 / ref_price)) <= SCALE_TOLERANCE else 100
    parts.append(_TYPE_TEXT[glitch_type].format(pack=pack, factor=factor))
    return "; ".join(parts)


def score_series(
    points: pl.LazyFrame,
    history: pl.DataFrame,
    thresholds: Thresholds,
    price_type: str,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.LazyFrame:
    """Every point showing a ``price_type`` price, with its references and ``is_glitch``.

    ``points``: panel rows (``panel, as_of, current_day`` plus the market columns). Points
    without enough history keep null references and ``is_glitch = False``. An optional
    boolean ``judged`` column marks the points to judge; the others are context only (the
    other stores' prices and the segment's move at that moment), never flagged themselves.
    """
    column = SERIES[price_type]
    low = thresholds.glitch_ratio_low
    current = points.filter(shown(column)).with_columns(price=pl.col(column).cast(pl.Int64))
    current = current.with_row_index("pid")
    windows = current.select(_WINDOW).unique().collect()
    stats = window_stats(windows, history, column, calendar)

    scored = (
        current.join(stats.lazy(), on=_WINDOW, how="left")
        .join(others_reference(current, thresholds), on="pid", how="left")
        .pipe(market_move)
        .with_columns(
            # Own-history references follow the segment's move that day; others' prices are
            # current already. On event days the pre-event low caps them.
            own_ref=pl.min_horizontal(
                pl.col("common_price") * pl.col("move").exp(), pl.col("event_baseline")
            ),
            center=pl.min_horizontal(
                pl.col("log_median") + pl.col("move"), pl.col("event_baseline").log()
            ),
        )
        .with_columns(robust_z=(pl.col("price").log() - pl.col("center")) / pl.col("log_scale"))
    )
    others_confirm = pl.col("others_price").is_not_null() & (
        pl.col("price") <= low * pl.col("others_price")
    )
    # Another store far *below* this price is glitching deeper itself: it says nothing
    # about the market level, so the listing's own history decides.
    others_uninformative = pl.col("others_price").is_null() | (
        pl.col("others_price") <= low * pl.col("price")
    )
    # A card price that merely follows its own listing's offer down is no card glitch: the
    # offer series speaks for the listing. A card glitch is abnormal against the offer too.
    card_apart = (
        pl.lit(price_type != "card")
        | ~shown("price_offer")
        | (pl.col("price") <= low * pl.col("price_offer"))
    )
    flagged = (
        (pl.col("history_days") >= MIN_HISTORY_DAYS)
        & card_apart
        & pl.col("in_stock").fill_null(False)
        & is_fresh(pl.col("last_seen"), pl.col("as_of"), thresholds)
        & (pl.col("price") <= low * pl.col("own_ref"))
        & (pl.col("robust_z") <= Z_THRESHOLD)
        & (others_confirm | others_uninformative)
    ).fill_null(False)
    if "judged" in points.collect_schema().names():
        flagged = flagged & pl.col("judged")
    return scored.with_columns(
        price_type=pl.lit(price_type),
        others_confirm=others_confirm.fill_null(False),
        is_glitch=flagged,
    )


def _report(scored: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Opportunity rows (OPPORTUNITY_SCHEMA + details + ``panel``) of the flagged points."""
    others_lower = pl.col("others_confirm") & (pl.col("others_price") < pl.col("own_ref"))
    corroboration = (
        pl.when(pl.col("others_confirm"))
        .then(
            UNCORROBORATED
            + (1 - UNCORROBORATED)
            * pl.min_horizontal(pl.col("match_probability", "others_match").fill_null(0.0)).clip(
                0.0, 1.0
            )
        )
        .otherwise(UNCORROBORATED)
    )
    depth = (pl.col("history_days") / FULL_DEPTH_DAYS).clip(upper_bound=1.0)
    glitches = (
        scored.filter(pl.col("is_glitch"))
        .with_columns(pack=pack_size(pl.col("name")))
        .select(
            "panel",
            "canonical_id",
            "category",
            "common_price",
            "others_retailer",
            "others_price",
            "event_baseline",
            "robust_z",
            "history_days",
            "level_reset",
            "pack",
            product_name="name",
            buy_retailer="retailer",
            buy_sku="sku",
            buy_url="url",
            buy_price="price",
            buy_price_type="price_type",
            ref_retailer=pl.when(others_lower).then(pl.col("others_retailer")),
            ref_price=pl.when(others_lower)
            .then(pl.col("others_price"))
            .otherwise(pl.col("own_ref").round(0).cast(pl.Int64)),
            confidence=freshness(pl.col("last_seen"), pl.col("as_of")) * depth * corroboration,
            observed_at=pl.col("last_seen"),
        )
    )
    severity = _severity(pl.col("buy_price") / pl.col("ref_price"), thresholds)
    return (
        with_margin(glitches, thresholds)
        .with_columns(
            kind=pl.lit("glitch"),
            severity=severity,
            glitch_type=glitch_type(pl.col("buy_price"), pl.col("ref_price"), pl.col("pack")),
            opportunity_id=opportunity_id(
                "glitch",
                pl.col("canonical_id"),
                pl.col("buy_retailer"),
                pl.col("buy_sku"),
                pl.col("buy_price_type"),
            ),
        )
        .with_columns(
            needs_confirmation=needs_confirmation(),
            reason=text_map(
                _glitch_reason,
                "buy_price_type",
                "buy_price",
                "ref_price",
                "ref_retailer",
                "common_price",
                "history_days",
                "robust_z",
                "others_retailer",
                "others_price",
                "event_baseline",
                "level_reset",
                "glitch_type",
                "pack",
            ),
        )
    )


def glitch_panel(
    points: pl.LazyFrame,
    history: pl.DataFrame,
    thresholds: Thresholds,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Glitches of both series for every point of a panel (the detector behind everything).

    Returns OPPORTUNITY_SCHEMA + GLITCH_DETAIL_SCHEMA columns + ``panel`` and ``current_day``
    (the day of the glitched price), most severe first.
    """
    columns = {**OPPORTUNITY_SCHEMA, **GLITCH_DETAIL_SCHEMA, "panel": pl.Int64()}
    if history.is_empty():
        return empty(columns)
    # Both series in one collect: their shared inputs are computed once, and in parallel.
    frames = pl.collect_all(
        [
            _report(score_series(points, history, thresholds, t, calendar), thresholds)
            for t in SERIES
        ]
    )
    return pl.concat([conform(f, columns) for f in frames]).sort(
        pl.col("buy_price") / pl.col("ref_price"), "opportunity_id"
    )


def glitch_details(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """:func:`find_glitches` with the evidence columns (``GLITCH_DETAIL_SCHEMA``)."""
    columns = {**OPPORTUNITY_SCHEMA, **GLITCH_DETAIL_SCHEMA}
    if market.is_empty() or history.is_empty():
        return empty(columns)
    found = glitch_panel(market_points(market, thresholds, now), history, thresholds, calendar)
    return conform(found, columns)


def find_glitches(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Glitches in the offer and card series of every enabled listing (rule in module doc)."""
    if market.is_empty() or history.is_empty():
        return empty(OPPORTUNITY_SCHEMA)
    return conform(glitch_details(history, market, thresholds, now, calendar), OPPORTUNITY_SCHEMA)


# Glitches re-fetched before they alert: the severe ones (a mistaken *scrape* is likelier
# than a 90 % price cut), and those whose type says the *data* is likelier wrong than the
# price — a scraper that read the unit price beside a pack's, or a price block in US dollars,
# shows a "glitch" the store never published. The product page settles it either way.
CONFIRM_SEVERITIES = ("high",)
CONFIRM_TYPES = ("pack_size", "currency")


def must_confirm(kind: str | None, severity: str | None, glitch_type: str | None) -> bool:
    """Whether one opportunity must be confirmed by a re-fetch before it alerts."""
    return kind == "glitch" and (severity in CONFIRM_SEVERITIES or glitch_type in CONFIRM_TYPES)


def needs_confirmation() -> pl.Expr:
    """:func:`must_confirm` as an expression over opportunity rows."""
    return (pl.col("kind") == "glitch") & (
        pl.col("severity").is_in(CONFIRM_SEVERITIES)
        | pl.col("glitch_type").is_in(CONFIRM_TYPES).fill_null(False)
    )


@dataclass(frozen=True)
class Confirmation:
    """Outcome of re-fetching glitch candidates."""

    confirmed: pl.DataFrame  # still glitching: prices, margin and severity from the re-fetch
    rejected: pl.DataFrame  # with ``rejection``: recovered / out of stock / gone
    pending: pl.DataFrame  # no usable re-fetch yet (failed, or older than the candidate)


def confirm_glitches(
    candidates: pl.DataFrame, refetched: pl.DataFrame, thresholds: Thresholds
) -> Confirmation:
    """Judge glitch candidates by a fresh fetch of the same listings.

    ``refetched``: ``retailer, sku, price_offer, price_card, in_stock, observed_at`` and
    optionally ``fetch_status`` (non-``ok`` rows do not count). A candidate is *confirmed* when
    a successful fetch newer than the candidate still shows, in stock, a price of its type at
    or below ``glitch_ratio_low`` x its reference (the store has not fixed it; the margin,
    ROI and severity are recomputed from that price); *rejected* when the fetch shows it
    recovered, sold out or gone (no price of that type); *pending* otherwise.
    """
    key = {"retailer": "buy_retailer", "sku": "buy_sku"}
    fetched = refetched
    if "fetch_status" in fetched.columns:
        fetched = fetched.filter(pl.col("fetch_status") == "ok")
    fetched = (
        fetched.sort("observed_at")
        .unique(subset=list(key), keep="last")
        .select(
            *key.keys(),
            new_offer="price_offer",
            new_card="price_card",
            new_in_stock="in_stock",
            fetched_at="observed_at",
        )
        .rename(key)
    )
    columns = list(candidates.columns)
    joined = candidates.join(fetched, on=list(key.values()), how="left")
    new_price = (
        pl.when(pl.col("buy_price_type") == "card")
        .then(pl.col("new_card"))
        .otherwise(pl.col("new_offer"))
    )
    usable = pl.col("fetched_at").is_not_null() & (
        pl.col("observed_at").is_null() | (pl.col("fetched_at") >= pl.col("observed_at"))
    )
    rejection = (
        pl.when(new_price.fill_null(0) <= 0)
        .then(pl.lit("price gone"))
        .when(~pl.col("new_in_stock").fill_null(False))
        .then(pl.lit("out of stock"))
        .when(new_price > thresholds.glitch_ratio_low * pl.col("ref_price"))
        .then(pl.lit("price recovered"))
    )
    judged = joined.with_columns(usable=usable, rejection=rejection, new_price=new_price)
    confirmed = judged.filter(pl.col("usable") & pl.col("rejection").is_null())
    refreshed = (
        with_margin(
            confirmed.lazy().with_columns(
                buy_price=pl.col("new_price").cast(pl.Int64), observed_at=pl.col("fetched_at")
            ),
            thresholds,
        )
        .with_columns(severity=_severity(pl.col("buy_price") / pl.col("ref_price"), thresholds))
        .collect()
        .select(columns)
    )
    if "needs_confirmation" in columns:
        refreshed = refreshed.with_columns(needs_confirmation=pl.lit(False))
    return Confirmation(
        confirmed=refreshed,
        rejected=judged.filter(pl.col("usable") & pl.col("rejection").is_not_null()).select(
            *columns, "rejection"
        ),
        pending=judged.filter(~pl.col("usable")).select(columns),
    )


__all__ = [
    "CONFIRM_SEVERITIES",
    "CONFIRM_TYPES",
    "GLITCH_DETAIL_SCHEMA",
    "GLITCH_TYPES",
    "SERIES",
    "Confirmation",
    "confirm_glitches",
    "find_glitches",
    "glitch_details",
    "glitch_panel",
    "market_points",
    "must_confirm",
    "needs_confirmation",
    "score_series",
    "window_stats",
]
