"""What the simulator plants on purpose, and labels: cross-store gaps, price glitches, bad rows.

* **Gaps** — one store sells a multi-store product 15-40 % below the others for 3-14 days.
  Only where the gap is worth acting on (about CLP 20.000 or more at the others' price), never
  on event days, with every listing of the product in stock meanwhile. The cheap offer is
  ``floor_990(normal * (1 - discount))``; ``discount`` is what ``truth_gaps`` reports.
* **Glitches** — an offer (sometimes a card) price falls to 1-33 % of normal for one or two
  observations, like the real cases: a digit lost (1.299.990 -> 129.990), two zeros lost
  (-> 12.999), a wrong percentage, or an absurd CLP 4. Never on event or gap days, never in
  a listing's first ``MIN_HISTORY_DAYS`` (nothing to compare with), always in stock. An offer
  glitch hides the card price (it would otherwise sit above the offer).
* **Malformed rows** — what broken parsers and feeds produce; disjoint from the above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from arbx_dagster.domain.simulator.prices import Layout, PriceBook, floor_990, to_990

MIN_GAP, MAX_GAP = 0.15, 0.40
MIN_GAP_CLP = 20_000  # planted gaps are worth buying
ORDINARY_SPREAD = 0.06  # see prices.SPREAD_FLOOR
GAP_DAYS = (3, 14)
MIN_HISTORY_DAYS = 10
CARD_GLITCH_SHARE = 0.2
TWO_DAY_GLITCH_SHARE = 0.35
TINY_PRICES = np.array([1, 4, 10, 99, 990])
MAX_GLITCH_RATIO = 0.45

DEFECTS: dict[str, str] = {  # defect -> field it breaks
    "negative_price": "price_offer",
    "zero_price": "price_offer",
    "absurd_price": "price_offer",
    "wrong_currency": "currency",
    "missing_sku": "sku",
    "missing_name": "name",
    "offer_above_list": "price_offer",
}
USD_PER_CLP = 1 / 950


@dataclass(frozen=True)
class PlantedGaps:
    product: np.ndarray
    listing: np.ndarray  # the cheap listing
    first: np.ndarray  # day index, inclusive
    last: np.ndarray
    discount: np.ndarray
    product_days: np.ndarray  # (P, D): a gap runs on the product that day


@dataclass(frozen=True)
class PlantedGlitches:
    listing: np.ndarray  # one entry per glitched observation
    day: np.ndarray
    price_type: np.ndarray  # "offer" / "card"
    true_price: np.ndarray
    glitch_price: np.ndarray


def plant_gaps(
    book: PriceBook, layout: Layout, rng: np.random.Generator, *, rate: float, active_at_end: float
) -> PlantedGaps:
    """Cut one new listing of ``rate`` of the multi-store products below the others."""
    prod, days = layout.product_of, layout.days
    n_products = layout.list_price.size
    new_listings = np.bincount(prod[layout.is_new], minlength=n_products)
    needed = np.maximum(MIN_GAP, ORDINARY_SPREAD + MIN_GAP_CLP / (0.75 * layout.list_price))
    needed = np.ceil(needed * 100) / 100
    candidates = np.flatnonzero((new_listings >= 2) & (needed <= MAX_GAP))
    n_gaps = min(round(rate * int((new_listings >= 2).sum())), candidates.size)
    chosen = np.sort(rng.choice(candidates, size=n_gaps, replace=False))
    cheap = _one_new_listing_each(rng, prod, layout.is_new, chosen)
    first, last = _gap_days(rng, book.event_day, _latest_start(layout)[chosen], days, active_at_end)
    discount = np.maximum(np.round(rng.uniform(needed[chosen], MAX_GAP), 2), needed[chosen])
    keep = last >= 0
    chosen, cheap, first, last, discount = (a[keep] for a in (chosen, cheap, first, last, discount))

    running = _between(first, last, days)
    cut = 1 - discount[:, None]
    new_offer = np.where(running, floor_990(book.price_offer[cheap] * cut), book.price_offer[cheap])
    card = book.price_card[cheap]
    card = np.where(running & (card > 0), np.minimum(floor_990(card * cut), new_offer), card)
    book.price_offer[cheap], book.price_card[cheap] = new_offer, card
    product_days = np.zeros((n_products, days), dtype=bool)
    product_days[chosen] = running
    book.in_stock |= product_days[prod]
    return PlantedGaps(chosen, cheap, first, last, discount, product_days)


def _one_new_listing_each(
    rng: np.random.Generator, prod: np.ndarray, is_new: np.ndarray, products: np.ndarray
) -> np.ndarray:
    if products.size == 0:
        return np.zeros(0, dtype=np.int64)
    key = np.where(is_new, rng.random(prod.size), np.inf)
    order = np.lexsort((key, prod))
    return order[np.searchsorted(prod[order], products)]


def _latest_start(layout: Layout) -> np.ndarray:
    latest = np.zeros(layout.list_price.size, dtype=np.int64)
    np.maximum.at(latest, layout.product_of, layout.start_day)
    return latest


def _gap_days(
    rng: np.random.Generator,
    event_day: np.ndarray,
    earliest: np.ndarray,
    days: int,
    active_at_end: float,
) -> tuple[np.ndarray, np.ndarray]:
    """First/last day of each gap, inside one event-free run; last = -1 when none fits."""
    index = np.arange(days)
    last_allowed = np.maximum.accumulate(np.where(event_day, -1, index))
    run_start = np.maximum.accumulate(np.where(event_day, index, -1)) + 1
    n = earliest.size
    length = rng.integers(GAP_DAYS[0], GAP_DAYS[1] + 1, n)
    at_end = rng.random(n) < active_at_end
    last = np.where(at_end, days - 1, rng.integers(np.minimum(earliest, days - 1), days))
    last = last_allowed[last]
    first = np.maximum.reduce([last - length + 1, run_start[np.maximum(last, 0)], earliest])
    last = np.where(last >= earliest, last, -1)
    return first, last


def _between(first: np.ndarray, last: np.ndarray, days: int) -> np.ndarray:
    day = np.arange(days)[None, :]
    return (day >= first[:, None]) & (day <= last[:, None])


def plant_glitches(
    book: PriceBook,
    layout: Layout,
    gap_days: np.ndarray,
    rng: np.random.Generator,
    *,
    rate: float,
    at_end: float,
) -> PlantedGlitches:
    """Glitch ``rate`` of the listings once, on one or two consecutive days."""
    n_listings, days = layout.product_of.size, layout.days
    chosen = np.sort(rng.choice(n_listings, size=round(rate * n_listings), replace=False))
    on_card = layout.has_card[chosen] & (rng.random(chosen.size) < CARD_GLITCH_SHARE)
    day = np.arange(days)[None, :]
    eligible = (
        book.exists[chosen]
        & ~book.event_day[None, :]
        & ~gap_days[layout.product_of[chosen]]
        & (day >= layout.start_day[chosen][:, None] + MIN_HISTORY_DAYS)
        & np.where(on_card[:, None], book.price_card[chosen] > 0, True)
    )
    first = _glitch_day(rng, eligible, at_end)
    second = _neighbour_day(rng, eligible, first)
    found = first >= 0
    glitch = np.flatnonzero(found)
    listing = np.concatenate([chosen[glitch], chosen[glitch][second[glitch] >= 0]])
    cell_day = np.concatenate([first[glitch], second[glitch][second[glitch] >= 0]])
    which = np.concatenate([glitch, glitch[second[glitch] >= 0]])
    card = on_card[which]
    true_price = np.where(
        card, book.price_card[listing, cell_day], book.price_offer[listing, cell_day]
    )
    glitch_price = _glitch_prices(rng, true_price, which, chosen.size)
    book.price_offer[listing, cell_day] = np.where(
        card, book.price_offer[listing, cell_day], glitch_price
    )
    book.price_card[listing, cell_day] = np.where(card, glitch_price, 0)
    book.in_stock[listing, cell_day] = True
    return PlantedGlitches(
        listing=listing,
        day=cell_day,
        price_type=np.where(card, "card", "offer"),
        true_price=true_price,
        glitch_price=glitch_price,
    )


def _glitch_day(rng: np.random.Generator, eligible: np.ndarray, at_end: float) -> np.ndarray:
    """A random eligible day per row (the last day for a share ``at_end``); -1 if none."""
    keys = np.where(eligible, rng.random(eligible.shape), -1.0)
    pick = keys.argmax(axis=1)
    on_last = eligible[:, -1] & (rng.random(eligible.shape[0]) < at_end)
    day = np.where(on_last, eligible.shape[1] - 1, pick)
    return np.where(eligible.any(axis=1), day, -1)


def _neighbour_day(rng: np.random.Generator, eligible: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The next (else previous) eligible day for a two-day glitch; -1 for one-day glitches."""
    rows, days = np.arange(first.size), eligible.shape[1]
    two = (rng.random(first.size) < TWO_DAY_GLITCH_SHARE) & (first >= 0)
    after, before = first + 1, first - 1
    can_after = (after < days) & eligible[rows, np.clip(after, 0, days - 1)]
    can_before = (before >= 0) & eligible[rows, np.clip(before, 0, days - 1)]
    return np.where(two & can_after, after, np.where(two & can_before, before, -1))


def _glitch_prices(
    rng: np.random.Generator, true_price: np.ndarray, which: np.ndarray, n_glitches: int
) -> np.ndarray:
    """The wrong price: a lost digit, two lost zeros, a wrong percentage or an absurd one."""
    mode = rng.choice(4, n_glitches, p=[0.35, 0.2, 0.3, 0.15])[which]
    ratio = rng.uniform(0.12, 0.33, n_glitches)[which]
    tiny = rng.choice(TINY_PRICES, n_glitches)[which]
    price = np.select(
        [mode == 0, mode == 1, mode == 2],
        [to_990(true_price / 10), true_price // 100, floor_990(true_price * ratio)],
        tiny,
    )
    return np.clip(price, 1, np.floor(MAX_GLITCH_RATIO * true_price)).astype(np.int64)


def plant_malformed(
    observations: pl.DataFrame, eligible: np.ndarray, rng: np.random.Generator, *, rate: float
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Break ``rate`` of the rows (only where ``eligible``); return them and their labels."""
    candidates = np.flatnonzero(eligible)
    n = min(round(rate * observations.height), candidates.size)
    rows = np.sort(rng.choice(candidates, size=n, replace=False))
    names = np.array(list(DEFECTS))
    defects = names[rng.integers(0, names.size, n)]
    truth = (
        observations.select("retailer", "sku", "observed_at")[rows]
        .with_columns(
            row=pl.Series(rows.astype(np.int64)),
            defect=pl.Series(defects, dtype=pl.String),
        )
        .with_columns(field=pl.col("defect").replace_strict(DEFECTS, return_dtype=pl.String))
        .select("row", "retailer", "sku", "observed_at", "defect", "field")
    )
    if n == 0:
        return observations, truth
    defect = (
        pl.repeat(None, observations.height, dtype=pl.String, eager=True)
        .alias("defect")
        .scatter(rows, defects)
    )
    broken = observations.with_columns(defect).with_columns(**_breakages(pl.col("defect")))
    return broken.drop("defect"), truth


def _breakages(defect: pl.Expr) -> dict[str, pl.Expr]:
    offer, listed, card = pl.col("price_offer"), pl.col("price_list"), pl.col("price_card")
    factor = (
        pl.when(offer * 1_000 > 100_000_000)
        .then(1_000)
        .when(offer * 100_000 > 100_000_000)
        .then(100_000)
        .otherwise(1_000_000)
    )
    usd = defect == "wrong_currency"

    def in_usd(price: pl.Expr) -> pl.Expr:
        return (price * USD_PER_CLP).round().cast(pl.Int64).clip(lower_bound=1)

    return {
        "price_offer": pl.when(defect == "negative_price")
        .then(-offer)
        .when(defect == "zero_price")
        .then(0)
        .when(defect == "absurd_price")
        .then(offer * factor)
        .when(defect == "offer_above_list")
        .then(listed * 3)
        .when(usd)
        .then(in_usd(offer))
        .otherwise(offer),
        "price_list": pl.when(defect == "absurd_price")
        .then(listed * factor)
        .when(usd)
        .then(in_usd(listed))
        .otherwise(listed),
        "price_card": pl.when(defect == "absurd_price")
        .then(card * factor)
        .when(defect == "offer_above_list")
        .then(None)
        .when(usd)
        .then(in_usd(card))
        .otherwise(card),
        "currency": pl.when(usd).then(pl.lit("USD")).otherwise(pl.col("currency")),
        "sku": pl.when(defect == "missing_sku").then(None).otherwise(pl.col("sku")),
        "name": pl.when(defect == "missing_name").then(None).otherwise(pl.col("name")),
    }
