"""The references a price is judged against by the glitch detector (rules in ``glitches.py``).

All of them are computed *before* the moment judged: a listing's own daily closes of the
days before, and the other stores' latest prices at or before that instant.

* **common price** — the lower median of the closes of the ``WINDOW_DAYS`` (90) days before.
  Slow on purpose: promotions (a minority of days) and a price inflated for a few weeks
  before an event (the "fake discount") do not move it.
* **recent price** — the lower median of the last ``RECENT_CLOSES`` (7) priced closes. A
  mistaken price is fixed within hours or days, so it can never be more than three of those
  seven closes and never moves their median; a price that held on four of the last seven
  closes is the listing's price now. This is how the reference follows a permanent level
  shift (in at most four days, however deep; the next day when it is no deeper than a sale,
  see the last price) while a two- or three-day glitch stays a glitch on each day.
* **last price** — the last close; **charged price** — the latest of the recent closes not
  at a glitch's depth (above ``glitch_ratio_low`` of the lower of the common and recent
  prices): what the store last charged, a mistake's close being none. A recent median the
  listing has since left upwards (a sale of four or five days that ended) is not its price
  now: the recent price counts as no lower than the charged price.
* The **own reference** is the lower of the two — the conservative one: just after a cut,
  the new level; just after a raise or during a pre-event inflation, the old level; for a
  listing that spends most days on sale, the sale price. The charged price — a sale's or a
  new level's price, never a glitch's — lowers it further, so a sale that follows a price
  cut the next day is measured against the cut, not the level before it, while a glitch of
  several days stays a glitch on each of them, and a second mistake the day after a first
  one is measured against what the store charged before it.
* **event baseline** — on CyberDay / CyberMonday / Black Friday days
  (``market_events.py``), the lower median of the closes of the 30 days before the event,
  which caps the own reference (a median, so a glitch or a sale in that month does not
  become the baseline).
* **others** — the same product at the *other* retailers (in stock or not, seen within
  ``MARKET_SEEN_HOURS_BEYOND_FRESH`` hours beyond the freshness cut-off — any shown recent
  price is evidence of the market level, and a store's price does not stop being what the
  product sells for because a scrape or two of it failed): per retailer its cheapest listing,
  then the lower median across retailers (an actual store's price, so it can be named; with
  two other stores it is the cheaper one). A store at or below ``FAR_BELOW`` (15 %) of the
  listing's own reference is left out: no sale, event or market move goes 85 % below a
  normal price, so that store is glitching itself and says nothing about the market.
* **market move** — how far the listing's retailer x category sits below its own references
  (the usual level, or what the store charged the day before, see above) that day: the
  median over its listings of log(price / own reference), drops only, when at least
  ``MIN_SEGMENT_LISTINGS`` listings say. CyberDay, a store-wide sale or a scraper bug
  move a whole segment; the own reference is scaled by that move, so a listing that merely
  followed its segment down is not a glitch, while one that fell far below it still is.

Retail prices are step functions: a listing has a handful of price *levels*, each seen on
many days. The 90-day median is a function of how many days of the window each level was
seen, which cumulative counts per level give through as-of joins — so scoring every day of
months of history (the benchmark) costs windows x levels rows, not windows x days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.opportunities import is_fresh, max_price_age_hours, shown
from arbx_dagster.domain.schema import conform

WINDOW_DAYS = 90
RECENT_CLOSES = 7
# Closes at a new price after which it is the listing's price: a majority of the recent ones.
LEVEL_ADOPTED_AFTER = RECENT_CLOSES // 2 + 1
MIN_SEGMENT_LISTINGS = 3  # fewer listings say nothing about a market-wide move
FAR_BELOW = 0.15  # no sale, event or market move takes 85 % off a normal price
# Another store's price still speaks for the market two missed daily scrapes after it stopped
# being fresh enough to buy at: a failed run or a blocked page must not leave a listing judged
# without the market it sells in (a deep own drop with no other store seen is flagged).
MARKET_SEEN_HOURS_BEYOND_FRESH = 48.0

KEY = ["retailer", "sku"]
WINDOW = ["retailer", "sku", "current_day"]

WINDOW_STATS_SCHEMA: dict[str, pl.DataType] = {
    **{k: pl.String() for k in KEY},
    "current_day": pl.Date(),
    "common_price": pl.Int64(),
    "recent_price": pl.Int64(),
    "last_price": pl.Int64(),
    "charged_price": pl.Int64(),
    "history_days": pl.Int32(),
    "event_baseline": pl.Int64(),
}


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


def _lower_median(per_level: pl.DataFrame) -> pl.DataFrame:
    """Per window, the lower median of its closes, each level counting ``n`` days: an actual
    price of the listing, and of two middle ones the lower (the conservative one)."""
    ordered = per_level.sort("wid", "p").with_columns(
        seen=pl.col("n").cum_sum().over("wid"), total=pl.col("n").sum().over("wid")
    )
    return ordered.group_by("wid").agg(
        common_price=pl.col("p").filter(pl.col("seen") >= (pl.col("total") + 1) // 2).first()
    )


def window_stats(
    windows: pl.DataFrame,
    history: pl.DataFrame,
    column: str,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    *,
    low: float,
) -> pl.DataFrame:
    """Own-history references per (retailer, sku, current_day) window of ``column``'s closes
    (``WINDOW_STATS_SCHEMA``); windows with no priced day in their 90 days are absent.
    ``low``: the glitch depth (``glitch_ratio_low``) a close must stay above to count as a
    price the store charged (``charged_price``)."""
    windows = windows.select(WINDOW).unique()
    if windows.is_empty() or history.is_empty():
        return pl.DataFrame(schema=WINDOW_STATS_SCHEMA)
    ids = windows.select(KEY).unique().with_row_index("lid")
    # One close per listing and day (the PRICE_HISTORY_SCHEMA key); k counts days so far.
    closes = (
        history.filter(shown(column))
        .join(ids, on=KEY, how="inner")
        .select("lid", "day", p=pl.col(column).cast(pl.Int64))
        .with_columns(k=pl.col("day").rank("ordinal").over("lid").cast(pl.Int64))
        .sort("day")
    )
    # Windows are the days (current_day - 90, current_day - 1]: ``lo`` excluded, ``hi`` included.
    wins = (
        windows.join(ids, on=KEY)
        .with_row_index("wid")
        .with_columns(
            hi=pl.col("current_day") - timedelta(days=1),
            lo=pl.col("current_day") - timedelta(days=WINDOW_DAYS + 1),
        )
    )
    wins = (
        _asof(wins, closes.select("lid", "day", k_hi="k"), "hi", ["lid"])
        .filter(pl.col("day") > pl.col("lo"))  # at least one priced day in the window
        .drop("day")
    )
    per_level = _level_counts(wins, closes)
    days = per_level.group_by("wid").agg(history_days=pl.col("n").sum())
    common = _lower_median(per_level)
    recent_price = pl.col("p").sort().get((pl.len() - 1) // 2)  # the lower median
    usual = pl.min_horizontal(pl.col("common_price").first(), recent_price)
    recent = (
        wins.select("wid", "lid", "k_hi", "lo")
        .join(pl.DataFrame({"back": range(RECENT_CLOSES)}, schema={"back": pl.Int64}), how="cross")
        .with_columns(k=pl.col("k_hi") - pl.col("back"))
        .join(closes.select("lid", "k", "day", "p"), on=["lid", "k"], how="inner")
        .filter(pl.col("day") > pl.col("lo"))
        .join(common, on="wid")
        .sort("wid", "back")
        .group_by("wid")
        .agg(
            recent_price=recent_price,
            last_price=pl.col("p").filter(pl.col("back") == 0).first(),
            # the latest close not at a glitch's depth below the usual level
            charged_price=pl.col("p").filter(pl.col("p") > low * usual).first(),
        )
    )
    stats = (
        wins.join(common, on="wid").join(recent, on="wid").join(days, on="wid").join(ids, on="lid")
    )
    return conform(_with_event_baseline(stats, closes, calendar), WINDOW_STATS_SCHEMA)


def point_window_stats(
    current: pl.LazyFrame,
    history: pl.DataFrame,
    column: str,
    calendar: EventCalendar,
    thresholds: Thresholds,
) -> pl.DataFrame:
    """``window_stats`` of the windows of ``current``'s points."""
    windows = current.select(WINDOW).unique().collect()
    return window_stats(windows, history, column, calendar, low=thresholds.glitch_ratio_low)


def with_own_base(current: pl.LazyFrame, stats: pl.DataFrame, low: float) -> pl.LazyFrame:
    """Points with their history's references and ``own_base``: the lower of the 90-day and
    recent medians (the recent one no lower than the charged price), and of the last price
    the store charged (``charged_price``: the latest recent close above ``low`` x the lower
    median, a glitch's close being none). The own reference before the
    segment's move, which is measured against it: a segment's move is how far it sits below
    what its listings charged."""
    # A recent level the listing has since left (the last price it charged back above it: a
    # sale that ended) is not its price now; that last price is. A glitch's close is not a
    # price the store charged: the one before it is.
    last = pl.col("charged_price")
    recent_now = pl.max_horizontal("recent_price", last)
    medians = pl.min_horizontal("common_price", recent_now)
    charged = last > low * medians
    return current.join(stats.lazy(), on=WINDOW, how="left").with_columns(
        own_base=pl.when(charged).then(pl.min_horizontal(medians, last)).otherwise(medians)
    )


def _level_counts(wins: pl.DataFrame, closes: pl.DataFrame) -> pl.DataFrame:
    """``wid, p, n``: on how many days of each window each price level was the close."""
    occurrences = closes.with_columns(  # days at this level so far
        c=pl.col("day").rank("ordinal").over("lid", "p").cast(pl.Int64)
    )
    levels = occurrences.group_by("lid", "p").agg(
        first=pl.col("day").min(), last=pl.col("day").max()
    )
    per_level = (
        wins.select("wid", "lid", "hi", "lo")
        .join(levels, on="lid", how="inner")
        .filter((pl.col("first") <= pl.col("hi")) & (pl.col("last") > pl.col("lo")))
        .drop("first", "last")
    )
    level_occ = occurrences.select("lid", "p", "day", "c").sort("day")
    per_level = _asof(per_level, level_occ.rename({"c": "c_hi"}), "hi", ["lid", "p"]).drop("day")
    per_level = _asof(per_level, level_occ.rename({"c": "c_lo"}), "lo", ["lid", "p"]).drop("day")
    return per_level.select("wid", "p", n=pl.col("c_hi") - pl.col("c_lo").fill_null(0)).filter(
        pl.col("n") > 0
    )


def _with_event_baseline(
    stats: pl.DataFrame, closes: pl.DataFrame, calendar: EventCalendar
) -> pl.DataFrame:
    """Add ``event_baseline``: on an event day, the lower median close of the 30 days before."""
    if stats.is_empty():
        return stats.with_columns(event_baseline=pl.lit(None, dtype=pl.Int64))
    first = stats["current_day"].min() - timedelta(days=WINDOW_DAYS)  # type: ignore[operator]
    last = stats["current_day"].max()
    events = calendar.events(first, last)  # type: ignore[arg-type]
    stats = stats.with_columns(
        event_start=calendar.event_start(pl.col("current_day"), first, last)  # type: ignore[arg-type]
    )
    if not events:
        return stats.with_columns(event_baseline=pl.lit(None, dtype=pl.Int64))
    baselines = pl.concat(
        [
            closes.filter(pl.col("day").is_between(e.baseline_start, e.start, closed="left"))
            .group_by("lid")
            .agg(event_baseline=pl.col("p").sort().get((pl.len() - 1) // 2))
            .with_columns(event_start=pl.lit(e.start))
            for e in events
        ]
    )
    return stats.join(baselines, on=["lid", "event_start"], how="left")


def others_reference(points: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Per point (``pid``): the lower median of the other retailers' cheapest recent price
    (seen within ``MARKET_SEEN_HOURS_BEYOND_FRESH`` beyond the freshness cut-off), leaving
    out a store at or below ``FAR_BELOW`` of the point's own reference (``own_ref``, when
    known): no sale or market move goes that far, so that store is glitching itself."""
    group = ["panel", "canonical_id"]
    recent = replace(
        thresholds,
        max_price_age_hours=max_price_age_hours(thresholds) + MARKET_SEEN_HOURS_BEYOND_FRESH,
    )
    per_retailer = (
        points.filter(
            pl.col("canonical_id").is_not_null()
            & is_fresh(pl.col("last_seen"), pl.col("as_of"), recent)
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
    glitching = (pl.col("others_price") <= FAR_BELOW * pl.col("own_ref")).fill_null(False)
    return (
        points.select("pid", "retailer", "own_ref", *group)
        .join(per_retailer, on=group, how="inner")
        .filter((pl.col("others_retailer") != pl.col("retailer")) & ~glitching)
        .sort("pid", "others_price", "others_retailer")
        .with_columns(pos=pl.int_range(pl.len()).over("pid"), n=pl.len().over("pid"))
        .filter(pl.col("pos") == (pl.col("n") - 1) // 2)
        .select("pid", "others_retailer", "others_price", "others_match")
    )


SEGMENT = ["panel", "retailer", "category", "current_day"]


def _segment_move(change: pl.Expr) -> pl.Expr:
    """The move of a segment from its listings' log(price / reference) (used ``over`` or
    in an aggregation): their median when a drop and enough listings say, else 0."""
    return (
        pl.when(change.is_not_null().sum() >= MIN_SEGMENT_LISTINGS)
        .then(change.median().clip(upper_bound=0.0))
        .otherwise(0.0)
    )


def segment_moves(changes: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """``SEGMENT + move`` from per-listing ``change`` rows (``SEGMENT + change``): the
    moves :func:`market_move` would find over the same listings."""
    return changes.lazy().group_by(SEGMENT).agg(move=_segment_move(pl.col("change")))


def market_move(
    scored: pl.LazyFrame, reference: str, moves: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """Add ``move``: the median log(price / ``reference``) of the listing's retailer x
    category that day, when it is a drop and the segment has enough listings with a history
    (else 0). ``moves`` (``SEGMENT + move``) are used instead when given: the segments'
    moves over listings beyond the ones scored (an incremental pass).

    Measured against each listing's own reference rather than yesterday's close, so an event
    or a scraper bug that began yesterday is still recognised on its second day.
    """
    if moves is not None:
        return scored.join(
            moves, on=SEGMENT, how="left", nulls_equal=True, maintain_order="left"
        ).with_columns(pl.col("move").fill_null(0.0))
    change = (pl.col("price") / pl.col(reference)).log()
    return scored.with_columns(move=_segment_move(change).over(SEGMENT))


__all__ = [
    "FAR_BELOW",
    "LEVEL_ADOPTED_AFTER",
    "MARKET_SEEN_HOURS_BEYOND_FRESH",
    "MIN_SEGMENT_LISTINGS",
    "RECENT_CLOSES",
    "SEGMENT",
    "WINDOW_DAYS",
    "WINDOW_STATS_SCHEMA",
    "market_move",
    "others_reference",
    "point_window_stats",
    "segment_moves",
    "window_stats",
    "with_own_base",
]
