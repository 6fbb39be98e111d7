"""Every listing's prices and stock, day by day: everyday levels and their permanent
shifts, promotions, event days, store sales, stock-outs, price matching, list and card
prices; and which of those dynamics is on in each cell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from arbx_dagster.bench.retail_market.catalogue import Listings
from arbx_dagster.bench.retail_market.config import (
    HIDES_PRICE_WHEN_OUT,
    PROMOTION_DAY_WEIGHTS,
    PROMOTION_DAYS,
    STORES,
    RetailMarketConfig,
)
from arbx_dagster.bench.retail_market.shelf import (
    at_spell_start,
    below_990,
    lagged,
    nearest_990,
    spells,
)


@dataclass
class PriceBook:
    """Listing x day matrices; prices 0 = not shown."""

    regular: np.ndarray
    offer: np.ndarray
    listed: np.ndarray
    card: np.ndarray
    in_stock: np.ndarray
    tags: dict[str, np.ndarray]


def _regular_levels(
    config: RetailMarketConfig, base: np.ndarray, ls: Listings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The everyday price path of every listing, and where a permanent cut happened."""
    size, days = ls.product.size, config.days
    store_factor = np.exp(np.clip(rng.normal(0, config.store_dispersion, size), -0.15, 0.15))
    cheap_store = rng.integers(0, len(STORES))  # one store is structurally a little cheaper
    store_factor *= np.where(ls.store == cheap_store, 0.95, 1.0)

    def moves(shape: tuple[int, int], rate: float, cuts: float, deepest: float) -> np.ndarray:
        happens = rng.random(shape) < rate
        happens[:, 0] = False
        cut = rng.random(shape) < cuts
        size_ = np.where(cut, -rng.uniform(0.05, deepest, shape), rng.uniform(0.05, 0.2, shape))
        return np.where(happens, np.log1p(size_), 0.0)

    # A store's own repricing keeps it within about 15 % of the product's price elsewhere
    # (competitors watch each other); a product's price (a supplier's list, a model ageing)
    # mostly falls, at every store.
    own = moves((size, days), config.shift_rate, 0.55, 0.25)
    drift = np.clip(np.cumsum(own, axis=1), -0.15, 0.15)
    product = np.clip(
        np.cumsum(moves((base.size, days), config.product_shift_rate, 0.75, 0.35), axis=1),
        np.log(0.5),  # a product's price may halve over months, not vanish
        np.log(1.3),
    )
    lag = rng.integers(0, 5, size)  # stores follow a supplier's new price within days
    path = drift + lagged(product[ls.product], lag)
    regular = nearest_990(base[ls.product, None] * store_factor[:, None] * np.exp(path))
    cuts = np.diff(path, axis=1, prepend=path[:, :1]) < 0
    return regular, cuts


def _event_windows(config: RetailMarketConfig, rng: np.random.Generator) -> list[tuple]:
    """(name, first day index, last day index) of the market-wide events in the series:
    CyberDay and CyberMonday on the organisers' dates (Monday to Wednesday of the first
    week of June and October), and one unannounced two-day sale no calendar knows."""
    days, found = config.days, []
    for year in range(config.start.year, (config.start + timedelta(days)).year + 1):
        for name, month in (("CyberDay", 6), ("CyberMonday", 10)):
            first = date(year, month, 1)
            monday = first + timedelta(days=(7 - first.weekday()) % 7)
            found.append((name, (monday - config.start).days, 2))
    secret = int(rng.integers(days // 6, max(days - days // 18, days // 6 + 1)))
    found.append(("Aniversario (unannounced)", secret, 1))
    return [
        (name, first, min(first + length, days - 1))
        for name, first, length in found
        if 0 <= first < days
    ]


def _promotions(
    config: RetailMarketConfig, regular: np.ndarray, cuts: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Offers with promotions (10-50 % off the current price, a day to two weeks; some a few
    weeks after a permanent cut), and where one runs."""
    shape, days = regular.shape, regular.shape[1]
    starts = rng.random(shape) < config.promotion_rate
    follows = cuts & (rng.random(shape) < config.promotion_after_cut)
    delay = rng.integers(5, 25, shape)
    rows, cols = np.nonzero(follows)
    later = cols + delay[rows, cols]
    keep = later < days
    starts[rows[keep], later[keep]] = True
    durations = rng.choice(PROMOTION_DAYS, shape, p=PROMOTION_DAY_WEIGHTS)
    depth = rng.choice(np.arange(0.10, 0.501, 0.05), shape)
    on_promo, last = spells(starts, durations)
    offer = np.where(on_promo, below_990(regular * (1 - at_spell_start(depth, last))), regular)
    return offer, on_promo


def _events(
    config: RetailMarketConfig,
    n_products: int,
    ls: Listings,
    regular: np.ndarray,
    offer: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple]]:
    """Offers on event days (most products 15-50 % off at every store) and in the weeks
    before them (some listings raised 10-25 %, the "fake discount"); where each happens."""
    size, column = ls.product.size, np.arange(config.days)[None, :]
    events = _event_windows(config, rng)
    on_event = np.zeros(offer.shape, dtype=bool)
    inflated = np.zeros(offer.shape, dtype=bool)
    for _, first, last_day in events:
        joins = (rng.random(n_products) < config.event_participation)[ls.product]
        cut = rng.uniform(0.15, 0.5, n_products)[ls.product] + rng.normal(0, 0.03, size)
        window = (column >= first) & (column <= last_day) & joins[:, None]
        event_price = below_990(regular * (1 - np.clip(cut, 0.1, 0.5)[:, None]))
        offer = np.where(window, np.minimum(offer, event_price), offer)
        on_event |= window
        fakes = joins & (rng.random(size) < config.fake_discount_rate)
        lead = rng.integers(7, 21, size)
        before = (column >= first - lead[:, None]) & (column < first) & fakes[:, None]
        raised = nearest_990(regular * rng.uniform(1.10, 1.25, size)[:, None])
        offer = np.where(before, np.maximum(offer, raised), offer)
        inflated |= before
    return offer, on_event, inflated, events


def _store_sales(
    config: RetailMarketConfig,
    category: np.ndarray,
    ls: Listings,
    regular: np.ndarray,
    offer: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Store-only category sales ("semana del TV" at one store: 15-40 % off, 2-4 days)."""
    column = np.arange(config.days)[None, :]
    on_sale = np.zeros(offer.shape, dtype=bool)
    for store in range(len(STORES)):
        for _ in range(config.store_sales):
            chosen = rng.choice(sorted(set(category)))
            first = int(rng.integers(0, config.days - 4))
            span = int(rng.integers(2, 5))
            depth = rng.uniform(0.15, 0.40)
            listings = (ls.store == store) & (category == chosen)
            cells = listings[:, None] & (column >= first) & (column < first + span)
            offer = np.where(cells, np.minimum(offer, below_990(regular * (1 - depth))), offer)
            on_sale |= cells
    return offer, on_sale


def _match_prices(
    config: RetailMarketConfig,
    ls: Listings,
    regular: np.ndarray,
    offer: np.ndarray,
    in_stock: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Offers of the listings whose store follows the cheapest other in-stock store of the
    day before, down to 60 % of their own regular price; where they did. Day by day: each
    day's match depends on the day before's."""
    matcher = rng.random(ls.product.size) < config.match_rate
    matched = np.zeros(offer.shape, dtype=bool)
    column = np.arange(config.days)[None, :]
    exists = (column >= ls.first[:, None]) & (column <= ls.last[:, None])
    unseen = np.iinfo(np.int64).max
    for d in range(1, config.days):
        visible = np.where(exists[:, d - 1] & in_stock[:, d - 1], offer[:, d - 1], unseen)
        leader = _cheapest_other(ls.product, visible)
        follow = matcher & (leader < offer[:, d]) & (leader >= 0.6 * regular[:, d])
        offer[:, d] = np.where(follow, leader, offer[:, d])
        matched[:, d] = follow
    return offer, matched


def _list_prices(regular: np.ndarray, offer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crossed-out price: the regular price plus a store markup; half the listings keep
    the highest one they ever showed (a permanent cut then reads as a discount)."""
    size = regular.shape[0]
    markup = rng.choice([0.0, 0.0, 0.1, 0.2, 0.3], size)
    listed = nearest_990(regular * (1 + markup[:, None]))
    sticky = rng.random(size) < 0.5
    listed = np.where(sticky[:, None], np.maximum.accumulate(listed, axis=1), listed)
    return np.maximum(listed, offer)


def _card_prices(
    config: RetailMarketConfig, offer: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Card prices (0: not shown): a few percent under the offer while the card promotion is
    on; card-only dips 20-50 % under the offer for a few days; where the dips are."""
    shape = offer.shape
    shows_card = rng.random(shape[0]) < config.card_rate
    card_on, last = spells(rng.random(shape) < 1 / 10, rng.integers(3, 20, shape))
    card_off = at_spell_start(rng.choice([0.03, 0.05, 0.08, 0.10, 0.15], shape), last)
    card = np.where(shows_card[:, None] & card_on, below_990(offer * (1 - card_off)), 0)
    dip, last = spells(rng.random(shape) < config.card_dip_rate, rng.integers(1, 5, shape))
    dip &= shows_card[:, None]
    dip_price = below_990(offer * (1 - at_spell_start(rng.uniform(0.2, 0.5, shape), last)))
    card = np.where(dip, np.where(card > 0, np.minimum(card, dip_price), dip_price), card)
    return np.where(card >= offer, 0, card), dip


def price_book(
    config: RetailMarketConfig,
    products: pl.DataFrame,
    ls: Listings,
    rng: np.random.Generator,
) -> tuple[PriceBook, list[tuple]]:
    """Every listing's prices and stock, day by day, and the dynamics going on."""
    regular, cuts = _regular_levels(config, products["base"].to_numpy(), ls, rng)
    offer, on_promo = _promotions(config, regular, cuts, rng)
    offer, on_event, inflated, events = _events(config, products.height, ls, regular, offer, rng)
    category = products["category"].to_numpy()[ls.product]
    offer, on_sale = _store_sales(config, category, ls, regular, offer, rng)
    shape = offer.shape
    out, _ = spells(rng.random(shape) < config.stockout_rate, rng.integers(1, 11, shape))
    offer, matched = _match_prices(config, ls, regular, offer, ~out, rng)
    listed = _list_prices(regular, offer, rng)
    card, dip = _card_prices(config, offer, rng)
    hides = np.isin(ls.store, [STORES.index(s) for s in HIDES_PRICE_WHEN_OUT])[:, None] & out
    offer, card = np.where(hides, 0, offer), np.where(hides, 0, card)

    recent = np.zeros(shape, dtype=bool)
    for lag in range(21):  # within three weeks after a permanent cut
        recent[:, lag:] |= cuts[:, : config.days - lag]
    age = np.arange(config.days)[None, :] - ls.first[:, None]
    tags = {
        "promotion": on_promo,
        "event": on_event,
        "store_sale": on_sale,
        "card_dip": dip,
        "matched": matched,
        "inflated": inflated,
        "recent_shift": recent,
        "out_of_stock": out,
        "new_listing": age < 7,
    }
    return PriceBook(regular, offer, listed, card, ~out, tags), events


def _cheapest_other(product: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Per listing, the lowest ``price`` among the other listings of its product."""
    order = np.lexsort((price, product))
    sorted_product, sorted_price = product[order], price[order]
    head = np.r_[True, sorted_product[1:] != sorted_product[:-1]]
    group_start = np.maximum.accumulate(np.where(head, np.arange(order.size), 0))
    first = sorted_price[group_start]
    second_index = np.minimum(group_start + 1, order.size - 1)
    has_second = (second_index < order.size) & (sorted_product[second_index] == sorted_product)
    second = np.where(has_second, sorted_price[second_index], np.iinfo(np.int64).max)
    is_first = np.arange(order.size) == group_start
    result = np.empty_like(price)
    result[order] = np.where(is_first, second, first)
    return result
