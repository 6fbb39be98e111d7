"""Daily price paths: listing x day matrices of list, offer and card prices and stock.

How the paths are shaped, and why:

* Each product has one market path: its list price times an everyday discount that holds
  for a couple of weeks and then jumps (retail prices are step functions, not random walks).
* Each listing follows that path times a small store factor (within about +-2 %, sometimes a
  store-only sale of 3-5 %), also step-shaped. After rounding, every new listing's offer is
  lifted to at least ``SPREAD_FLOOR`` of the product's highest offer that day, so ordinary
  noise never opens an 8 % cross-store gap: only planted gaps do.
* On market-wide events (CyberDay, Black Friday) a share of products is cut by 10-30 % at
  every store at once; some listings inflate their crossed-out list price in the days
  before (the "fake discount" consumers complain about). Card prices get an extra 5 %.
* Card prices are the offer less 3-10 %, shown only while the store runs a card promotion.
* Stock-outs come in spells of 1-6 days.

Prices are integers ending in 990 (steps of 1.000 below 200.000 CLP, 10.000 above). A price
of 0 inside these matrices means "not shown"; it becomes null in the observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SPREAD_FLOOR = 0.94  # ordinary offers stay within 6 % of the product's highest offer
DISCOUNT_LEVELS = np.array([0.0, 0.05, 0.10, 0.15, 0.20])
DISCOUNT_WEIGHTS = np.array([0.35, 0.2, 0.2, 0.15, 0.1])
EVENT_DEPTHS = np.array([0.10, 0.15, 0.20, 0.25, 0.30])
EVENT_CARD_EXTRA = 0.05
CARD_DISCOUNTS = np.array([0.03, 0.05, 0.07, 0.10])
LIST_MARKUPS = np.array([0.0, 0.0, 0.05, 0.10, 0.15, 0.20, 0.30])
FAKE_MARKUPS = np.array([0.10, 0.15, 0.20, 0.25])
STORE_NOISE = np.arange(-0.02, 0.0201, 0.005)
STORE_SALES = np.array([0.03, 0.04, 0.05])


def _step(value: np.ndarray) -> np.ndarray:
    return np.where(value >= 200_000, 10_000, 1_000)


def to_990(value: np.ndarray | float) -> np.ndarray:
    """Nearest price ending in 990 (at least 990)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.round((value + 10) / step) * step - 10, 990).astype(np.int64)


def floor_990(value: np.ndarray | float) -> np.ndarray:
    """Largest price ending in 990 that is <= ``value`` (990 at least)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.floor((value + 10) / step) * step - 10, 990).astype(np.int64)


def ceil_990(value: np.ndarray | float) -> np.ndarray:
    """Smallest price ending in 990 that is >= ``value``."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.ceil((value + 10) / step) * step - 10, 990).astype(np.int64)


def step_process(
    rng: np.random.Generator,
    shape: tuple[int, int],
    change_prob: float,
    draw: Callable[[tuple[int, int]], np.ndarray],
) -> np.ndarray:
    """Rows of piecewise-constant values: each day starts a new level with ``change_prob``."""
    changes = rng.random(shape) < change_prob
    changes[:, 0] = True
    segment = np.cumsum(changes, axis=1) - 1
    return np.take_along_axis(draw(shape), segment, axis=1)


@dataclass(frozen=True)
class Layout:
    """What the price paths need to know about products and listings."""

    list_price: np.ndarray  # (P,) product list price
    product_of: np.ndarray  # (L,) product index of each listing
    is_new: np.ndarray  # (L,) condition == "new"
    has_card: np.ndarray  # (L,) the listing's store shows card prices for it
    start_day: np.ndarray  # (L,) first day the listing is observed
    days: int


@dataclass(frozen=True)
class EventWindow:
    name: str
    first: int  # day index, clipped to the window
    last: int


@dataclass
class PriceBook:
    """Listing x day matrices (L, D). Prices: int64, 0 = not shown."""

    price_list: np.ndarray
    price_offer: np.ndarray
    price_card: np.ndarray
    in_stock: np.ndarray
    stock_qty: np.ndarray
    exists: np.ndarray
    event_day: np.ndarray  # (D,) bool: a market-wide event is running


def simulate_prices(
    layout: Layout,
    events: list[EventWindow],
    rng: np.random.Generator,
    *,
    participation: float,
    fake_discount_rate: float,
    refurbished_discount: float,
    stockout_rate: float,
) -> PriceBook:
    n_products, n_listings, days = layout.list_price.size, layout.product_of.size, layout.days
    prod = layout.product_of
    market = 1.0 - step_process(
        rng,
        (n_products, days),
        1 / 14,
        lambda s: rng.choice(DISCOUNT_LEVELS, s, p=DISCOUNT_WEIGHTS),
    )
    event_cut, joined, event_day = _event_cuts(rng, n_products, days, events, participation)
    offer = to_990(
        layout.list_price[prod, None]
        * (market * event_cut)[prod]
        * _store_factor(rng, n_listings, days)
    )
    offer = _lift_to_floor(offer, prod, layout.is_new, n_products)
    if refurbished_discount > 0:
        offer = np.where(layout.is_new[:, None], offer, to_990(offer * (1 - refurbished_discount)))
    listed = _list_prices(rng, layout, events, joined, fake_discount_rate)
    card = _card_prices(rng, offer, layout.has_card, joined[prod])
    in_stock, stock_qty = _stock(rng, n_listings, days, stockout_rate)
    return PriceBook(
        price_list=np.maximum(listed, offer),
        price_offer=offer,
        price_card=card,
        in_stock=in_stock,
        stock_qty=stock_qty,
        exists=np.arange(days)[None, :] >= layout.start_day[:, None],
        event_day=event_day,
    )


def _event_cuts(
    rng: np.random.Generator,
    n_products: int,
    days: int,
    events: list[EventWindow],
    participation: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multiplier (P, D), which products take part on each day (P, D), and event days (D,)."""
    cut = np.ones((n_products, days))
    joined = np.zeros((n_products, days), dtype=bool)
    event_day = np.zeros(days, dtype=bool)
    for event in events:
        takes_part = rng.random(n_products) < participation
        depth = np.where(takes_part, rng.choice(EVENT_DEPTHS, n_products), 0.0)
        window = slice(event.first, event.last + 1)
        cut[:, window] *= (1 - depth)[:, None]
        joined[:, window] |= takes_part[:, None]
        event_day[window] = True
    return cut, joined, event_day


def _store_factor(rng: np.random.Generator, n_listings: int, days: int) -> np.ndarray:
    def draw(shape: tuple[int, int]) -> np.ndarray:
        sale = rng.random(shape) < 0.2
        return np.where(sale, -rng.choice(STORE_SALES, shape), rng.choice(STORE_NOISE, shape))

    return 1.0 + step_process(rng, (n_listings, days), 1 / 9, draw)


def _lift_to_floor(
    offer: np.ndarray, prod: np.ndarray, is_new: np.ndarray, n_products: int
) -> np.ndarray:
    """Keep every new listing's offer within ``SPREAD_FLOOR`` of its product's highest offer."""
    highest = np.zeros((n_products, offer.shape[1]), dtype=np.int64)
    np.maximum.at(highest, prod[is_new], offer[is_new])
    floor = ceil_990(SPREAD_FLOOR * highest[prod])
    return np.where(is_new[:, None], np.maximum(offer, floor), offer)


def _list_prices(
    rng: np.random.Generator,
    layout: Layout,
    events: list[EventWindow],
    joined: np.ndarray,
    fake_discount_rate: float,
) -> np.ndarray:
    """Crossed-out prices: the product's list price plus a store markup, inflated pre-event."""
    prod = layout.product_of
    n_listings, days = prod.size, layout.days
    markup = 1.0 + rng.choice(LIST_MARKUPS, n_listings)
    inflation = np.ones((n_listings, days))
    day = np.arange(days)[None, :]
    for event in events:
        fakes = joined[prod, event.first] & (rng.random(n_listings) < fake_discount_rate)
        lead = rng.integers(7, 15, n_listings)
        window = (day >= (event.first - lead)[:, None]) & (day <= event.last) & fakes[:, None]
        inflation = np.where(
            window, inflation * (1 + rng.choice(FAKE_MARKUPS, n_listings))[:, None], inflation
        )
    return to_990(layout.list_price[prod, None] * markup[:, None] * inflation)


def _card_prices(
    rng: np.random.Generator, offer: np.ndarray, has_card: np.ndarray, event_joined: np.ndarray
) -> np.ndarray:
    shape = offer.shape
    discount = step_process(rng, shape, 1 / 10, lambda s: rng.choice(CARD_DISCOUNTS, s))
    promo_on = step_process(rng, shape, 1 / 12, lambda s: rng.random(s) < 0.75)
    discount = discount + EVENT_CARD_EXTRA * event_joined
    card = np.minimum(floor_990(offer * (1 - discount)), offer)
    return np.where(has_card[:, None] & promo_on, card, 0)


def _stock(
    rng: np.random.Generator, n_listings: int, days: int, stockout_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    day = np.arange(days)[None, :]
    starts = rng.random((n_listings, days)) < stockout_rate
    ends = np.where(starts, day + rng.integers(1, 7, (n_listings, days)), -1)
    out = np.maximum.accumulate(ends, axis=1) > day
    base = rng.integers(3, 120, n_listings)[:, None]
    qty = np.maximum(base + rng.integers(-2, 3, (n_listings, days)), 1)
    return ~out, np.where(out, 0, qty)
