"""Price glitches: a price published by mistake, told apart from promotions and level shifts.

Chilean stores have been made to honour mistaken prices, so a real glitch is worth a lot and
a false alarm costs trust. What tells a mistake from an ordinary low price:

* **Depth.** An ordinary promotion — a sale, CyberDay, a card-only deal, a competitor's price
  matched — takes at most half off the regular price. A mistake goes far deeper: a lost
  digit is 10 % of the price, a pack sold at its unit's price a third or less, a price typed
  in US dollars 0.1 %. A price is a glitch candidate only at or below ``glitch_ratio_low``
  (40 %) of a reference: below half by a margin, because sale prices are rounded down to a
  shelf price (...990), which on a 10.000-40.000 CLP product takes up to another ten points,
  and a reference is an estimate of the regular price, not the price itself.
* **Duration.** A mistake is fixed within hours or days (three at most); a price that holds
  for longer is the listing's price. The own reference is the lower of the 90-day median
  close and the median of the last seven closes (``glitch_references.py``):
  a glitch of one to three days cannot move that median, so it is flagged on each of its
  days; a permanent price cut becomes the reference after four days, and a promotion that
  follows a permanent cut is measured against the new level — from the day after the cut
  when the cut was no glitch itself (above ``glitch_ratio_low`` of the reference): the
  last close is then what the store charged, a sale's or a new level's price, and a price
  at least ``glitch_ratio_low`` of it is at most a sale on top of it. A sale that filled
  most of the last closes but has ended is no longer the price: the recent median counts
  as no lower than the last close.
* **The list price.** A promotion leaves the crossed-out list price ("precio normal") as it
  was; a permanent cut lowers it. A list price below the own reference is the new regular
  price from its first day (unless it is at a glitch's depth itself: a whole price block
  mistyped), so a sale on the day of a cut is measured against the cut.
* **The market.** The same product at the other stores that day, and the listing's segment
  (retailer x category, which a CyberDay or a store-wide sale moves as a whole).

The rule, with ``low = glitch_ratio_low`` and each reference as in ``glitch_references.py``
(the own reference scaled by the segment's move and capped by the pre-event level on event
days and by a lower list price; the other stores' price leaving out a store at 15 % or less
of the listing's own reference, which is glitching itself):

* **own history** (``MIN_HISTORY_DAYS`` = 7 priced days or more): flagged when
  ``price <= low x own`` and the other stores agree — ``price <= low x others`` — or no
  other store is seen in the last days (``glitch_references.py``). Stores all that low
  together are the market moving (an event, a supplier's cut, stores matching each other),
  not a mistake.
* **little or no history** (a listing's first days, or the market's): the same test with
  what history there is, *or* one reference alone at ``alone = low x (1 - STORE_SPREAD)``
  (30 %): the other stores, ``price <= alone x others``, or, when no other store is seen,
  the listing's own crossed-out list price, ``price <= alone x list``. Either may sit
  ``STORE_SPREAD`` (25 %) above this listing's regular price — a store cheaper than the
  rest, a list price with the store's markup — so alone it must say more: half off a
  regular price with a list at most 30 % over it (0.5 / 1.3 = 38 % of the list) is never
  flagged. Two of them agreeing say enough together: the other stores at ``low`` and the
  list price at ``alone`` (``stores+list price``). So a price at or below 15 % of every
  other store's is flagged with little history or none — and with a history, unless that
  history has itself been as low for days (the listing's own price then, or another
  product matched by mistake) — and a two- or three-day glitch that started on a
  listing's first day is flagged on each day.
* **no shelf price is under ``MIN_SHELF_PRICE_CLP`` (100 CLP)**: such a price is a glitch
  with or without any reference, unless the listing's whole segment fell that far (a scraper
  or feed fault, which the data-quality checks report).

Each test only gets more true as the price falls, so a deeper price is never less of a
glitch, and its severity never lower.

Every glitch must be in stock (decision: an out-of-stock listing's price is not an
opportunity — nobody can buy it, and a re-fetch that finds it sold out rejects a candidate;
if the store restocks at the mistaken price, that observation is judged like any other, and
the benchmark leaves out-of-stock observations out of its score the same way) and **fresh**:
a price last seen more than ``MAX_PRICE_AGE_HOURS`` before the evaluation (or of unknown age)
never makes a glitch.

The reference reported depends on what is known, never on the price judged (so a deeper
price never gets a milder severity): with an established history, the lower of the own and
the other stores' references (the conservative one); with little history, the other stores'
price, else the listing's list price, else what history there is. ``ref_retailer`` names
the store when it is another store's price, and is null when it is the listing's own.
``evidence`` says which references spoke: ``history``, ``history+stores``, ``stores``,
``stores+list price``, ``list price`` or ``shelf floor``. Severity by ``price /
reference``: at or below ``glitch_ratio_high`` 'high', ``glitch_ratio_medium`` 'medium',
otherwise 'low' (a price under the shelf floor: 'high').
Depth (``price / reference - 1``, e.g. -99.9 %) is what a glitch is shown with; ROI is capped
at ``GLITCH_ROI_CAP_PCT`` (a glitch bought for 1 CLP has no meaningful ROI).

A high-severity glitch must be re-fetched before it alerts, and so must a ``pack_size`` or
``currency`` one whatever its severity (it is likelier a misread page than a price the store
published): ``glitch_confirmation.py``.

**Unit, pack and currency mistakes are glitches, never silently rescaled.** The store showed
that price and may have to honour it; what went wrong is told in ``glitch_type`` (and in the
``reason`` text), checked against the reference in this order, within ``SCALE_TOLERANCE``:

* ``pack_size``   — the title names a pack of n (``Pack 6``, ``12 unidades``, ``x6``) and
  price x n matches: a pack sold at the unit price;
* ``digit_slip``  — price x 10 or x 100 matches: a lost digit (1.299.990 -> 129.990) or two;
* ``thousands``   — price x 1000 matches: entered in thousands of CLP (1.299.990 -> 1.300);
* ``currency``    — reference / price between 600 and 1.300: a price typed in US dollars;
* ``implausible`` — below the currency's ``implausible_below`` (CLP 1.000) with no pattern:
  the "CLP 4" headphones;
* ``deep_discount`` — none of the above.

(``glitch_kinds.py``: the type, severity, depth and capped ROI; ``glitch_reasons.py``: the
``reason`` text.)

Offer and card prices are separate series: each is evaluated on its own history and against
the same price type at the other stores, never mixed; card glitches say
``buy_price_type='card'``. A card price must also be ``<= low x`` the listing's own current
offer (when shown): a card-only deal is at most half off the offer, and a card price that
merely follows its offer down is judged by the offer series. With little card history (a
card price is often shown only during card promotions) the offer is the card's own
reference.

Detection ignores the margin (the benchmark measures detection); what the pipeline *lists*
(:func:`glitch_details`, :func:`find_glitches`) keeps the glitches whose margin reaches
``min_margin_clp``, as for spreads. Margin and ROI use the spread cost model. Confidence =
freshness x support x corroboration: support is ``min(1, history days / 30)`` when the
listing's own history spoke, 1 when the other stores did, ``LONE_PAGE_SUPPORT`` when only
the listing's own page (list price, shelf floor) did; corroboration is ``0.75 + 0.25 x match
probability`` when another retailer confirmed the price is abnormal, ``0.75`` otherwise. Ids
hash ``glitch|canonical_id|retailer|sku|price_type``: offer and card glitches of one listing
are separate opportunities.

Everything is vectorised over a *panel* of points (see ``opportunities.py``): the pipeline
scores one point per listing (:func:`find_glitches`); the benchmark scores every listing on
every day, walking forward, with the same code (:func:`glitch_panel`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_confirmation import needs_confirmation
from arbx_dagster.domain.glitch_kinds import glitch_type, pack_size, priced_glitches
from arbx_dagster.domain.glitch_reasons import REASON_COLUMNS, glitch_reason
from arbx_dagster.domain.glitch_references import (
    market_move,
    others_reference,
    point_window_stats,
    window_stats,
    with_own_base,
)
from arbx_dagster.domain.history import day_of, market_day
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.money import CURRENCIES, currency
from arbx_dagster.domain.opportunities import (
    DETAIL_SCHEMA,
    as_panel,
    enabled_listings,
    freshness,
    is_fresh,
    opportunity_id,
    shown,
    text_map,
)
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform, empty

MIN_HISTORY_DAYS = 7
STORE_SPREAD = 0.25  # how far another store's price or a list price may sit above the regular
MIN_SHELF_PRICE_CLP = CURRENCIES["CLP"].shelf_floor  # nothing in a store sells for less
FULL_SUPPORT_DAYS = 30
LONE_PAGE_SUPPORT = 0.5
UNCORROBORATED = 0.75

SERIES: dict[str, str] = {"offer": "price_offer", "card": "price_card"}

GLITCH_DETAIL_SCHEMA: dict[str, pl.DataType] = {
    **DETAIL_SCHEMA,
    "glitch_type": pl.String(),
    "evidence": pl.String(),
    "common_price": pl.Int64(),  # the lower median of the 90 days' closes
    "recent_price": pl.Int64(),  # the lower median of the last seven closes
    "last_price": pl.Int64(),  # the last close (what the store charged the day before)
    "others_price": pl.Int64(),
    "list_price": pl.Int64(),
    "event_baseline": pl.Int64(),
    "history_days": pl.Int32(),
    "depth_pct": pl.Float64(),  # 100 x (price / reference - 1): -99.9 for 1 CLP vs 90.000
    "needs_confirmation": pl.Boolean(),
}


def market_points(
    market: pl.DataFrame | pl.LazyFrame, thresholds: Thresholds, now: datetime
) -> pl.LazyFrame:
    """Current listings as one panel evaluated at ``now``, each with the day its price is of."""
    return enabled_listings(as_panel(market, now), thresholds).with_columns(
        current_day=market_day(pl.col("last_seen")).fill_null(day_of(now))
    )


def _established() -> pl.Expr:
    """A listing with enough priced days for its own history to speak alone."""
    return pl.col("history_days") >= MIN_HISTORY_DAYS


def _priced_points(points: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """The points showing a price in ``column`` (as ``price``), each with a ``pid``."""
    current = points.filter(shown(column)).with_columns(price=pl.col(column).cast(pl.Int64))
    current = current.with_row_index("pid")
    if "price_list" not in current.collect_schema().names():
        current = current.with_columns(price_list=pl.lit(None, dtype=pl.Int64))
    return current


def _with_own_reference(
    current: pl.LazyFrame,
    stats: pl.DataFrame,
    price_type: str,
    moves: pl.LazyFrame | None,
    low: float,
) -> pl.LazyFrame:
    """Points with their history's references and ``own_ref``: ``own_base``, moved with
    the segment, capped by the pre-event level on event days and by the listing's list price
    when that is lower but no glitch itself (for a card price with little history, also by
    its own offer)."""
    own = (
        with_own_base(current, stats, low)
        .pipe(market_move, "own_base", moves)
        .with_columns(
            # The own reference follows the segment's move that day; on event days the
            # pre-event level caps it.
            own_ref=pl.min_horizontal(
                pl.col("own_base") * pl.col("move").exp(), pl.col("event_baseline")
            ),
            history_days=pl.col("history_days").fill_null(0),
        )
    )
    # The store's own list price ("precio normal") below the reference says the regular price
    # was cut (a promotion leaves it unchanged): the reference follows it at once, unless it
    # is at a glitch's depth itself (a whole price block mistyped, list price included).
    listed = pl.col("price_list")
    own = own.with_columns(
        own_ref=pl.when(listed > low * pl.col("own_ref"))
        .then(pl.min_horizontal("own_ref", listed))
        .otherwise(pl.col("own_ref"))
    )
    if price_type == "card":  # with little card history, the own offer is the card's reference
        offer_ref = pl.when(shown("price_offer")).then(pl.col("price_offer"))
        own = own.with_columns(
            own_ref=pl.when(_established())
            .then(pl.col("own_ref"))
            .otherwise(pl.min_horizontal("own_ref", offer_ref))
        )
    return own


def _evidence(thresholds: Thresholds) -> tuple[pl.Expr, pl.Expr]:
    """(which references flag the point — null when none does —, whether the other stores
    do) over scored points; the rule in the module docstring."""
    low = thresholds.glitch_ratio_low
    price, others = pl.col("price"), pl.col("others_price")
    established = _established()
    own_says = price <= low * pl.col("own_ref")
    seen_elsewhere = others.is_not_null()
    others_say = price <= low * others
    alone = low * (1 - STORE_SPREAD)  # one reference speaking alone must say more
    stores_alone = price <= alone * others
    list_alone = price <= alone * pl.col("price_list")
    # A whole segment that deep is a scraper or feed fault, not a price anyone published.
    floor = currency(thresholds.currency).shelf_floor
    below_shelf = (price < floor) & (pl.col("move") > math.log(low))
    by_own = own_says & (others_say | ~seen_elsewhere)
    evidence = (
        pl.when(by_own & (established | ~stores_alone.fill_null(False)))
        .then(pl.when(others_say).then(pl.lit("history+stores")).otherwise(pl.lit("history")))
        .when(~established & stores_alone)
        .then(pl.lit("stores"))
        .when(~established & others_say & list_alone)
        .then(pl.lit("stores+list price"))
        .when(~established & ~seen_elsewhere & list_alone)
        .then(pl.lit("list price"))
        .when(below_shelf)
        .then(pl.lit("shelf floor"))
    )
    return evidence, others_say


def _card_apart(price_type: str, low: float) -> pl.Expr:
    """A card price is judged against its own offer too: a card-only deal is at most half off."""
    offer_ref = pl.when(shown("price_offer")).then(pl.col("price_offer"))
    return pl.lit(price_type != "card") | offer_ref.is_null() | (pl.col("price") <= low * offer_ref)


def score_series(
    points: pl.LazyFrame,
    history: pl.DataFrame,
    thresholds: Thresholds,
    price_type: str,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    moves: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Every point showing a ``price_type`` price, with its references, ``evidence`` and
    ``is_glitch`` (the rule in the module docstring); ``moves``: the segments' moves when
    they are known beyond these points (``SEGMENT_MOVE_SCHEMA`` rows of this price type).

    ``points``: panel rows (``panel, as_of, current_day`` plus the market columns). An
    optional boolean ``judged`` column marks the points to judge; the others are context
    only (the other stores' prices and the segment's move at that moment), never flagged.
    """
    column = SERIES[price_type]
    current = _priced_points(points, column)
    stats = point_window_stats(current, history, column, calendar, thresholds)
    if moves is not None:
        moves = moves.filter(pl.col("price_type") == price_type).drop("price_type")
    own = _with_own_reference(current, stats, price_type, moves, thresholds.glitch_ratio_low)
    # The other stores' price (but one far below this listing's own reference, glitching
    # itself). Stores all far below their own history together are the market dropping (an
    # event, a supplier's cut, stores matching each other): they vouch for each other.
    scored = own.join(others_reference(own, thresholds), on="pid", how="left")
    evidence, others_say = _evidence(thresholds)
    flagged = (
        evidence.is_not_null()
        & _card_apart(price_type, thresholds.glitch_ratio_low)
        & pl.col("in_stock").fill_null(False)
        & is_fresh(pl.col("last_seen"), pl.col("as_of"), thresholds)
    ).fill_null(False)
    if "judged" in points.collect_schema().names():
        flagged = flagged & pl.col("judged")
    return scored.with_columns(
        price_type=pl.lit(price_type),
        others_confirm=others_say.fill_null(False),
        evidence=evidence,
        is_glitch=flagged,
    )


def _reference(price_type: str) -> tuple[pl.Expr, pl.Expr]:
    """(reference price, its retailer) of a flagged point. It depends on what is known, never
    on the price judged, so a deeper price never gets a milder severity: with an established
    history, the lower of the own reference and the other stores' (the conservative one);
    with little history, the other stores' price, else the listing's own list price, else
    what history there is (a listing's first days may hold the mistake itself) — for a card
    price, its own offer before its list price."""
    own = pl.col("own_ref").round(0).cast(pl.Int64)
    others, listed = pl.col("others_price"), pl.col("price_list")
    established = _established()
    first_days = [others, own, listed] if price_type == "card" else [others, listed, own]
    price = (
        pl.when(established).then(pl.min_horizontal(own, others)).otherwise(pl.coalesce(first_days))
    )
    price = pl.coalesce(price, pl.col("price"))  # only the shelf floor spoke
    from_stores = others.is_not_null() & (price == others) & (~established | (others < own))
    return price, pl.when(from_stores).then(pl.col("others_retailer"))


def _confidence() -> pl.Expr:
    """Freshness x support x corroboration (module docstring) of a flagged point."""
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
    evidence = pl.col("evidence")
    support = (
        pl.when(evidence.str.starts_with("history"))
        .then((pl.col("history_days") / FULL_SUPPORT_DAYS).clip(upper_bound=1.0))
        .when(evidence.str.starts_with("stores"))
        .then(1.0)
        .otherwise(LONE_PAGE_SUPPORT)
    )
    return freshness(pl.col("last_seen"), pl.col("as_of")) * support * corroboration


def _flagged_rows(scored: pl.LazyFrame, price_type: str) -> pl.LazyFrame:
    """The flagged points as glitch rows: buy side, reference and evidence columns."""
    ref_price, ref_retailer = _reference(price_type)
    return (
        scored.filter(pl.col("is_glitch"))
        .with_columns(pack=pack_size(pl.col("name")))
        .select(
            "panel",
            "canonical_id",
            "category",
            "evidence",
            "common_price",
            "recent_price",
            "last_price",
            "others_retailer",
            "others_price",
            "event_baseline",
            "history_days",
            "pack",
            list_price="price_list",
            product_name="name",
            buy_retailer="retailer",
            buy_sku="sku",
            buy_url="url",
            buy_price="price",
            buy_price_type="price_type",
            ref_retailer=ref_retailer,
            ref_price=ref_price,
            confidence=_confidence(),
            observed_at=pl.col("last_seen"),
        )
    )


def _report(scored: pl.LazyFrame, thresholds: Thresholds, price_type: str) -> pl.LazyFrame:
    """Opportunity rows (OPPORTUNITY_SCHEMA + details + ``panel``) of the flagged points."""
    return (
        priced_glitches(_flagged_rows(scored, price_type), thresholds)
        .with_columns(
            kind=pl.lit("glitch"),
            glitch_type=glitch_type(
                pl.col("buy_price"), pl.col("ref_price"), pl.col("pack"), thresholds.currency
            ),
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
            reason=text_map(partial(glitch_reason, code=thresholds.currency), *REASON_COLUMNS),
        )
    )


# What an incremental pass keeps per listing and series to know its segment's move.
SEGMENT_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "price_type": pl.String(),
    "canonical_id": pl.String(),
    "category": pl.String(),
    "current_day": pl.Date(),
    "change": pl.Float64(),  # log(price / own reference before the segment's move)
}
SEGMENT_MOVE_SCHEMA: dict[str, pl.DataType] = {
    **{c: SEGMENT_CHANGE_SCHEMA[c] for c in ("retailer", "category", "current_day")},
    "panel": pl.Int64(),
    "price_type": pl.String(),
    "move": pl.Float64(),
}


@dataclass(frozen=True)
class GlitchScan:
    glitches: pl.DataFrame  # OPPORTUNITY_SCHEMA + GLITCH_DETAIL_SCHEMA + panel, most severe first
    changes: pl.DataFrame  # SEGMENT_CHANGE_SCHEMA + panel: every point with an own reference


def _changes(scored: pl.LazyFrame) -> pl.LazyFrame:
    keys = [c for c in SEGMENT_CHANGE_SCHEMA if c != "change"]
    return scored.select(
        "panel", *keys, change=(pl.col("price") / pl.col("own_base")).log()
    ).filter(pl.col("change").is_not_null())


def glitch_scan(
    points: pl.LazyFrame,
    history: pl.DataFrame,
    thresholds: Thresholds,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    moves: pl.LazyFrame | None = None,
) -> GlitchScan:
    """Glitches of both series for every point of a panel, whatever their margin, and each
    point's change against its own reference (what the segments' moves are made of)."""
    columns = {**OPPORTUNITY_SCHEMA, **GLITCH_DETAIL_SCHEMA, "panel": pl.Int64()}
    change_columns = {**SEGMENT_CHANGE_SCHEMA, "panel": pl.Int64()}
    scored = {t: score_series(points, history, thresholds, t, calendar, moves) for t in SERIES}
    # Both series in one collect: their shared inputs are computed once, and in parallel.
    frames = pl.collect_all(
        [_report(scored[t], thresholds, t) for t in SERIES] + [_changes(s) for s in scored.values()]
    )
    glitches = pl.concat([conform(f, columns) for f in frames[: len(SERIES)]]).sort(
        pl.col("buy_price") / pl.col("ref_price"), "opportunity_id"
    )
    changes = pl.concat([conform(f, change_columns) for f in frames[len(SERIES) :]])
    return GlitchScan(glitches, changes)


def glitch_panel(
    points: pl.LazyFrame,
    history: pl.DataFrame,
    thresholds: Thresholds,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Glitches of both series for every point of a panel (the detector behind everything),
    whatever their margin.

    Returns OPPORTUNITY_SCHEMA + GLITCH_DETAIL_SCHEMA columns + ``panel``, most severe first.
    """
    return glitch_scan(points, history, thresholds, calendar).glitches


def market_glitches(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    moves: pl.LazyFrame | None = None,
) -> GlitchScan:
    """The market's glitches with their evidence (``GLITCH_DETAIL_SCHEMA``) that clear the
    minimum margin, and every listing's change (:func:`glitch_scan`); ``moves`` as in
    :func:`score_series`."""
    columns = {**OPPORTUNITY_SCHEMA, **GLITCH_DETAIL_SCHEMA}
    if market.is_empty():
        return GlitchScan(empty(columns), empty(SEGMENT_CHANGE_SCHEMA))
    points = market_points(market, thresholds, now)
    scan = glitch_scan(points, history, thresholds, calendar, moves)
    # Listed like spreads: only what clears the minimum margin.
    found = scan.glitches.filter(pl.col("margin_clp") >= thresholds.min_margin_clp)
    return GlitchScan(conform(found, columns), conform(scan.changes, SEGMENT_CHANGE_SCHEMA))


def market_changes(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Each listing's change against its own reference, per price series
    (``SEGMENT_CHANGE_SCHEMA``): what the segments' moves are the median of, without
    judging anything."""
    if market.is_empty():
        return empty(SEGMENT_CHANGE_SCHEMA)
    points = market_points(market, thresholds, now)
    frames = []
    for price_type, column in SERIES.items():
        current = _priced_points(points, column)
        stats = point_window_stats(current, history, column, calendar, thresholds)
        own = with_own_base(current, stats, thresholds.glitch_ratio_low).with_columns(
            price_type=pl.lit(price_type)
        )
        frames.append(_changes(own))
    return pl.concat([conform(f, SEGMENT_CHANGE_SCHEMA) for f in pl.collect_all(frames)])


def glitch_details(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """:func:`find_glitches` with the evidence columns (``GLITCH_DETAIL_SCHEMA``)."""
    return market_glitches(history, market, thresholds, now, calendar).glitches


def find_glitches(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """Glitches in the offer and card series of every enabled listing whose margin reaches
    ``min_margin_clp`` (rule in the module docstring)."""
    if market.is_empty():
        return empty(OPPORTUNITY_SCHEMA)
    return conform(glitch_details(history, market, thresholds, now, calendar), OPPORTUNITY_SCHEMA)


__all__ = [
    "GLITCH_DETAIL_SCHEMA",
    "MIN_SHELF_PRICE_CLP",
    "SEGMENT_CHANGE_SCHEMA",
    "SEGMENT_MOVE_SCHEMA",
    "SERIES",
    "GlitchScan",
    "find_glitches",
    "glitch_details",
    "glitch_panel",
    "glitch_scan",
    "market_changes",
    "market_glitches",
    "market_points",
    "score_series",
    "window_stats",
]
