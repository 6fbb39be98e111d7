"""A second market generator for ``arbx bench glitches``, written apart from the detector.

The simulator (``domain/simulator``) and the glitch detector grew up together; a detector
that only ever meets its sibling's markets can pass by learning its habits. This generator
is written from what Chilean department stores do, not from the detector's rules: nothing
here imports the detector or its thresholds, and its numbers are its own.

**What the stores do.** Falabella, Ripley and Paris carry overlapping catalogues; each
product has a price that depends on the store (a few percent apart, one store sometimes
structurally cheaper). Prices are steps ending in 990. Over the months:

* *permanent level shifts* — a listing's price, or a product's price at every store (a
  supplier's new price list, followed with a lag of days), moves for good: mostly cuts of
  5-35 %, sometimes raises;
* *promotions* — 10-50 % off the current price for a day to two weeks, the crossed-out list
  price unchanged, often (in some scenarios: usually) a few weeks after a permanent cut;
* *event days* — CyberDay and CyberMonday (the organisers' dates) and one unannounced
  market-wide sale nobody's calendar knows; most products 15-50 % off at every store,
  some stores raising prices in the weeks before (the "fake discount"); and store-only
  category weeks (every TV at one store 15-40 % off for a few days);
* *card prices* — the store card's price a few percent under the offer when shown, and
  card-only dips 20-50 % under the offer for a few days while the offer stays put;
* *stock-outs* — spells of days; Paris hides the price meanwhile, the others keep it;
* *price matching* — some listings follow the cheapest competitor's price of the day
  before, down to 60 % of their own regular price (a pricing engine will not sell at a
  loss);
* *late listings* (appear mid-series) and *delistings*; one crawl a day per store in its
  own hours, sometimes a missed crawl, sometimes a second one later the same day.

**What goes wrong** (labelled ``is_glitch`` on every observation that shows it): a digit
dropped anywhere in the price (1.299.990 -> 129.990 or 299.990), two zeros lost, the price
typed in thousands or US dollars, 1 CLP (or 10, 100, 990 placeholders), 90 % off, a
discount typed ten times too deep (7 % -> 70 %), a pack priced at its unit's price, an
accessory's price on a big-ticket product, and a whole price block (list, offer, card)
losing a digit. On the offer, sometimes on the card price only; for hours, a day, or two
or three days (the same or a different wrong value each day); on any day of a listing's
life, including its first, event days, promotions and stock-outs.

Each observation also carries ``dynamics``, the ordinary things going on around it
(``promotion``, ``event``, ``store_sale``, ``card_dip``, ``matched``, ``inflated``,
``recent_shift``, ``out_of_stock``, ``new_listing``), so the bench can say which of them a
false alarm came from; and each glitch its ``mechanism``, ``glitch_day`` (1, 2, 3) and
whether it showed on the listing's first day.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

STORES = ("falabella", "ripley", "paris")
TZ = ZoneInfo("America/Santiago")
CRAWL_HOUR = {"falabella": 5, "ripley": 9, "paris": 15}  # each store's crawl window opens
HIDES_PRICE_WHEN_OUT = ("paris",)


@dataclass(frozen=True)
class Category:
    name: str
    low: int
    high: int
    titles: tuple[str, ...]
    packs: tuple[int, ...] = ()  # pack sizes sold in this category (empty: no packs)


CATEGORIES = (
    Category("televisores", 129_990, 1_999_990, ("Smart TV 50", "Smart TV 65 QLED", "TV 43 LED")),
    Category("celulares", 99_990, 1_499_990, ("Smartphone 128GB", "Smartphone 256GB Pro")),
    Category("computacion", 249_990, 2_499_990, ("Notebook 14", "Notebook Gamer 16")),
    Category("audio", 9_990, 399_990, ("Audifonos Bluetooth", "Parlante Portatil")),
    Category("linea blanca", 149_990, 1_299_990, ("Refrigerador No Frost", "Lavadora 18kg")),
    Category("electrohogar", 14_990, 199_990, ("Freidora de Aire", "Aspiradora Robot")),
    Category("muebles", 49_990, 899_990, ("Sofa 3 Cuerpos", "Escritorio", "Colchon 2 Plazas")),
    Category("juguetes", 4_990, 149_990, ("Set de Bloques", "Muneca", "Auto a Control")),
    Category("vestuario", 5_990, 79_990, ("Polera Algodon", "Zapatillas Running", "Jeans")),
    Category("bebidas", 2_990, 39_990, ("Bebida Lata 350cc", "Agua Mineral 1.5L"), (2, 6, 12, 24)),
    Category("cuidado personal", 1_990, 29_990, ("Shampoo 750ml", "Panales Talla G"), (2, 3, 4)),
)
CATEGORY_WEIGHTS = np.array([10, 10, 8, 10, 8, 10, 6, 8, 8, 6, 6], dtype=float)

# Promotion lengths in days (a weekend, a week, a fortnight) and how often each is chosen.
PROMOTION_DAYS = np.array([1, 2, 3, 4, 5, 7, 10, 14])
PROMOTION_DAY_WEIGHTS = np.array([8, 12, 14, 14, 14, 18, 10, 10]) / 100

# How a mistaken price comes about; weights are of the glitches that can happen to a product.
MECHANISMS = {
    "lost_digit": 0.24,
    "two_zeros_lost": 0.08,
    "thousands": 0.05,
    "placeholder": 0.09,
    "ninety_off": 0.13,
    "discount_typo": 0.11,
    "us_dollars": 0.05,
    "unit_price": 0.12,  # pack products only
    "accessory_price": 0.06,  # big-ticket products only
    "block_lost_digit": 0.07,
}


@dataclass(frozen=True)
class RetailMarketConfig:
    """Rates are per listing and day unless said otherwise."""

    seed: int = 1
    n_products: int = 300
    days: int = 180
    start: date = date(2026, 5, 4)  # 180 days: CyberDay (June) and CyberMonday (October)
    carry_rate: float = 0.8  # chance that a store carries a product
    late_listing_rate: float = 0.10  # listings that appear during the series
    delisting_rate: float = 0.03  # listings that disappear before the end
    store_dispersion: float = 0.05  # log sd of a store's price around the product's
    shift_rate: float = 1 / 120  # a listing's own permanent level shift
    product_shift_rate: float = 1 / 120  # a product's shift at every store (lagged)
    promotion_rate: float = 1 / 30
    promotion_after_cut: float = 0.3  # chance a permanent cut is followed by a promotion
    event_participation: float = 0.7
    fake_discount_rate: float = 0.3  # participating listings raising prices before events
    store_sales: int = 2  # store-only category sales per store
    card_rate: float = 0.6  # listings whose store card price is shown (when on)
    card_dip_rate: float = 1 / 60
    stockout_rate: float = 0.01
    match_rate: float = 0.2  # listings whose store follows the cheapest competitor
    missed_crawl_rate: float = 0.03
    second_crawl_rate: float = 0.07
    glitch_rate: float = 0.3  # glitches per listing over the series
    multi_day_share: float = 0.45  # glitches lasting two or three days
    first_day_share: float = 0.08  # glitches present when a listing first shows up
    card_glitch_share: float = 0.15
    out_of_stock_glitch_share: float = 0.03  # glitches planted on stock-out days


@dataclass
class RetailMarket:
    """``series``: the rows a user would give ``--series`` (plus ``dynamics`` and the glitch
    columns ``mechanism``, ``glitch_day``, ``first_day`` for diagnosis)."""

    series: pl.DataFrame
    config: RetailMarketConfig
    events: list[tuple[str, date, date]] = field(default_factory=list)


# --- prices ----------------------------------------------------------------------------------


def _step(value: np.ndarray) -> np.ndarray:
    """Shelf price steps: 1.290 and 4.490 under 10.000 CLP, 24.990 under 100.000, then
    129.990 / 135.990-like steps of 5.000, and 10.000 over a million."""
    return np.select(
        [value < 10_000, value < 100_000, value < 1_000_000], [100, 1_000, 5_000], 10_000
    )


def nearest_990(value: np.ndarray | float) -> np.ndarray:
    """Nearest shelf price (ending in 90 under 10.000 CLP, in 990 above)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.round((value + 10) / step) * step - 10, 190).astype(np.int64)


def below_990(value: np.ndarray | float) -> np.ndarray:
    """The shelf price at or below ``value`` (how sale prices are set)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.floor((value + 10) / step) * step - 10, 90).astype(np.int64)


def _spells(starts: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are inside a spell, and the start column of that spell (-1: none).

    ``starts`` (L, D) marks spell starts, ``durations`` (L, D) each start's length in days; a
    new start ends the previous spell."""
    days = starts.shape[1]
    column = np.arange(days)[None, :]
    last = np.maximum.accumulate(np.where(starts, column, -1), axis=1)
    length = np.take_along_axis(durations, np.clip(last, 0, None), axis=1)
    return (last >= 0) & (column - last < length), last


def _at_start(values: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per cell, the value drawn at its spell's start."""
    return np.take_along_axis(values, np.clip(last, 0, None), axis=1)


def _lagged(path: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Each row of ``path`` delayed by its ``lag`` days (the first value held)."""
    index = np.clip(np.arange(path.shape[1])[None, :] - lag[:, None], 0, None)
    return np.take_along_axis(path, index, axis=1)


@dataclass
class _Listings:
    product: np.ndarray
    store: np.ndarray  # index in STORES
    first: np.ndarray  # first day listed
    last: np.ndarray  # last day listed


def _catalogue(
    config: RetailMarketConfig, rng: np.random.Generator
) -> tuple[pl.DataFrame, _Listings]:
    n = config.n_products
    category = rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
    low = np.array([c.low for c in CATEGORIES])[category]
    high = np.array([c.high for c in CATEGORIES])[category]
    price = nearest_990(np.exp(rng.uniform(np.log(low), np.log(high))))
    pack = np.array(
        [rng.choice(CATEGORIES[c].packs) if CATEGORIES[c].packs else 0 for c in category]
    )
    pack = np.where(rng.random(n) < 0.5, pack, 0)  # half of them are sold as packs
    names = [
        f"{'Pack ' + str(p) + ' ' if p else ''}{rng.choice(CATEGORIES[c].titles)} {i:04d}"
        for i, (c, p) in enumerate(zip(category, pack, strict=True))
    ]
    products = pl.DataFrame(
        {
            "product_id": [f"p{i:04d}" for i in range(n)],
            "name": names,
            "category": [CATEGORIES[c].name for c in category],
            "base": price,
            "pack": pack,
        }
    )
    carried = rng.random((n, len(STORES))) < config.carry_rate
    carried[~carried.any(axis=1), rng.integers(0, len(STORES))] = True
    product, store = np.nonzero(carried)
    size = product.size
    late = rng.random(size) < config.late_listing_rate
    first = np.where(late, rng.integers(1, max(config.days - 14, 2), size), 0)
    gone = rng.random(size) < config.delisting_rate
    last = np.where(
        gone, np.minimum(first + rng.integers(21, config.days + 21, size), config.days - 1), -1
    )
    last = np.where(last < 0, config.days - 1, last)
    return products, _Listings(product, store, first, last)


@dataclass
class _Book:
    """Listing x day matrices; prices 0 = not shown."""

    regular: np.ndarray
    offer: np.ndarray
    listed: np.ndarray
    card: np.ndarray
    in_stock: np.ndarray
    tags: dict[str, np.ndarray]


def _regular_levels(
    config: RetailMarketConfig, base: np.ndarray, ls: _Listings, rng: np.random.Generator
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
    path = drift + _lagged(product[ls.product], lag)
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
    on_promo, last = _spells(starts, durations)
    offer = np.where(on_promo, below_990(regular * (1 - _at_start(depth, last))), regular)
    return offer, on_promo


def _events(
    config: RetailMarketConfig,
    n_products: int,
    ls: _Listings,
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
    ls: _Listings,
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
    ls: _Listings,
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
    card_on, last = _spells(rng.random(shape) < 1 / 10, rng.integers(3, 20, shape))
    card_off = _at_start(rng.choice([0.03, 0.05, 0.08, 0.10, 0.15], shape), last)
    card = np.where(shows_card[:, None] & card_on, below_990(offer * (1 - card_off)), 0)
    dip, last = _spells(rng.random(shape) < config.card_dip_rate, rng.integers(1, 5, shape))
    dip &= shows_card[:, None]
    dip_price = below_990(offer * (1 - _at_start(rng.uniform(0.2, 0.5, shape), last)))
    card = np.where(dip, np.where(card > 0, np.minimum(card, dip_price), dip_price), card)
    return np.where(card >= offer, 0, card), dip


def _book(
    config: RetailMarketConfig,
    products: pl.DataFrame,
    ls: _Listings,
    rng: np.random.Generator,
) -> tuple[_Book, list[tuple]]:
    """Every listing's prices and stock, day by day, and the dynamics going on."""
    regular, cuts = _regular_levels(config, products["base"].to_numpy(), ls, rng)
    offer, on_promo = _promotions(config, regular, cuts, rng)
    offer, on_event, inflated, events = _events(config, products.height, ls, regular, offer, rng)
    category = products["category"].to_numpy()[ls.product]
    offer, on_sale = _store_sales(config, category, ls, regular, offer, rng)
    shape = offer.shape
    out, _ = _spells(rng.random(shape) < config.stockout_rate, rng.integers(1, 11, shape))
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
    return _Book(regular, offer, listed, card, ~out, tags), events


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


# --- observations and glitches -----------------------------------------------------------------


def _observations(
    config: RetailMarketConfig, ls: _Listings, rng: np.random.Generator
) -> pl.DataFrame:
    """One row per crawl: listing, day and local time (a missed crawl leaves a hole)."""
    days = config.days
    listing, day = np.nonzero(
        (np.arange(days)[None, :] >= ls.first[:, None])
        & (np.arange(days)[None, :] <= ls.last[:, None])
    )
    crawled = rng.random(listing.size) >= config.missed_crawl_rate
    crawled |= day == ls.first[listing]  # a new listing is found when it first shows up
    listing, day = listing[crawled], day[crawled]
    opens = np.array([CRAWL_HOUR[s] for s in STORES])[ls.store[listing]]
    slot = rng.integers(0, 180, ls.product.size)[listing]  # minutes into the crawl window
    minute = opens * 60 + slot + rng.integers(-8, 9, listing.size)
    second = rng.random(listing.size) < config.second_crawl_rate
    extra_minute = minute[second] + rng.integers(240, 480, second.sum())
    frame = pl.DataFrame(
        {
            "listing": np.r_[listing, listing[second]],
            "day": np.r_[day, day[second]],
            "minute": np.clip(np.r_[minute, extra_minute], 0, 24 * 60 - 1),
        }
    )
    return frame.unique(subset=["listing", "day", "minute"]).sort("listing", "day", "minute")


def _glitches(
    config: RetailMarketConfig,
    ls: _Listings,
    book: _Book,
    products: pl.DataFrame,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Planted mistakes: listing, series, start and end minute (from day 0), and the wrong
    value on each of their days."""
    size = ls.product.size
    count = round(config.glitch_rate * size)
    listing = rng.choice(size, count)
    length = np.where(
        rng.random(count) < config.multi_day_share, rng.choice([2, 3], count, p=[0.55, 0.45]), 1
    )
    span = np.maximum(ls.last[listing] - ls.first[listing] - length + 2, 1)
    day = ls.first[listing] + (rng.random(count) * span).astype(np.int64)
    first_day = rng.random(count) < config.first_day_share
    day = np.where(first_day, ls.first[listing], day)
    oos = rng.random(count) < config.out_of_stock_glitch_share
    card = (rng.random(count) < config.card_glitch_share) & (book.card[listing, day] > 0)
    # Mistakes go in while the store updates prices: any hour; the listing's first day from
    # the start. A one-day mistake is often fixed within hours, the others at some hour.
    start = np.where(first_day, 0, rng.integers(0, 24 * 60, count))
    end_in_day = np.where(
        (length == 1) & (rng.random(count) < 0.4),
        np.minimum(start + rng.integers(120, 600, count), 24 * 60 - 1),
        rng.integers(0, 24 * 60, count),
    )
    end_in_day = np.where(length == 1, np.maximum(end_in_day, start), end_in_day)
    pack = products["pack"].to_numpy()[ls.product[listing]]
    big = products["base"].to_numpy()[ls.product[listing]] >= 150_000  # an accessory would show
    rows = []
    for g in range(count):
        mechanism = _mechanism(rng, pack[g] > 0, big[g])
        series = "card" if card[g] else "offer"
        for k in range(length[g]):
            d = day[g] + k
            if d > ls.last[listing[g]]:
                break
            if k and rng.random() < 0.4:
                mechanism = _mechanism(rng, pack[g] > 0, big[g])
            shown = book.card if series == "card" else book.offer
            true = int(
                shown[listing[g], d] or book.offer[listing[g], d] or book.regular[listing[g], d]
            )
            rows.append(
                {
                    "glitch": g,
                    "listing": int(listing[g]),
                    "day": int(d),
                    "series": series,
                    "mechanism": mechanism,
                    "value": _wrong_value(rng, mechanism, true, int(pack[g])),
                    "from_minute": int(start[g]) if k == 0 else 0,
                    "to_minute": int(end_in_day[g]) if k == length[g] - 1 else 24 * 60 - 1,
                    "glitch_day": k + 1,
                    "first_day": bool(first_day[g]) and k == 0,
                    "force_out": bool(oos[g]),
                }
            )
    schema = {
        "glitch": pl.Int64,
        "listing": pl.Int64,
        "day": pl.Int64,
        "series": pl.String,
        "mechanism": pl.String,
        "value": pl.Int64,
        "from_minute": pl.Int64,
        "to_minute": pl.Int64,
        "glitch_day": pl.Int64,
        "first_day": pl.Boolean,
        "force_out": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def _mechanism(rng: np.random.Generator, is_pack: bool, big_ticket: bool) -> str:
    names = [
        m
        for m in MECHANISMS
        if (is_pack or m != "unit_price") and (big_ticket or m != "accessory_price")
    ]
    weights = np.array([MECHANISMS[m] for m in names])
    return str(rng.choice(names, p=weights / weights.sum()))


def _wrong_value(rng: np.random.Generator, mechanism: str, true: int, pack: int) -> int:
    """The price shown by mistake instead of ``true``."""
    if mechanism in ("lost_digit", "block_lost_digit"):
        digits = str(true)
        at = int(rng.integers(0, len(digits)))
        value = int(digits[:at] + digits[at + 1 :] or "0")
    elif mechanism == "two_zeros_lost":
        value = true // 100
    elif mechanism == "thousands":
        value = round(true / 1_000)
    elif mechanism == "placeholder":
        value = int(rng.choice([1, 1, 10, 100, 990]))
    elif mechanism == "ninety_off":
        value = int(below_990(true * 0.1)) if true >= 9_990 else round(true * 0.1)
    elif mechanism == "discount_typo":
        value = int(below_990(true * (1 - 10 * rng.choice([0.06, 0.07, 0.08, 0.09]))))
    elif mechanism == "us_dollars":
        value = round(true / rng.uniform(850, 980))
    elif mechanism == "unit_price":
        value = int(below_990(true / pack))
    else:  # accessory_price: a cable's price on a television
        value = int(rng.choice([990, 2_990, 4_990, 9_990, 14_990]))
    return max(min(value, true - 1), 1)


def generate_retail_market(config: RetailMarketConfig = RetailMarketConfig()) -> RetailMarket:
    """A labelled multi-store series (columns of ``--series`` plus diagnosis columns)."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
    products, ls = _catalogue(config, rngs[0])
    book, events = _book(config, products, ls, rngs[1])
    crawls = _observations(config, ls, rngs[2])
    glitches = _glitches(config, ls, book, products, rngs[3])

    # Glitches planted "on stock-out days" take their listing out of stock meanwhile (at
    # the stores that keep showing the price).
    forced = glitches.filter(pl.col("force_out")).select("listing", "day").unique()
    if forced.height:
        hides = np.isin(
            ls.store[forced["listing"].to_numpy()], [STORES.index(s) for s in HIDES_PRICE_WHEN_OUT]
        )
        cells = forced.filter(~pl.Series(hides))
        book.in_stock[cells["listing"].to_numpy(), cells["day"].to_numpy()] = False
        book.tags["out_of_stock"][cells["listing"].to_numpy(), cells["day"].to_numpy()] = True

    li, di = crawls["listing"].to_numpy(), crawls["day"].to_numpy()
    tag_names = list(book.tags)
    tag_matrix = np.stack([book.tags[t][li, di] for t in tag_names], axis=1)
    dynamics = [
        ",".join(t for t, on in zip(tag_names, row, strict=True) if on) for row in tag_matrix
    ]
    store = np.array(STORES)[ls.store[li]]
    frame = crawls.with_columns(
        retailer=pl.Series(store),
        product_idx=pl.Series(ls.product[li]),
        price_list=pl.Series(book.listed[li, di]),
        price_offer=pl.Series(book.offer[li, di]),
        price_card=pl.Series(book.card[li, di]),
        in_stock=pl.Series(book.in_stock[li, di]),
        dynamics=pl.Series(dynamics, dtype=pl.String),
    )
    # Which observations a glitch covers: same listing and day, inside its minutes.
    hits = (
        frame.select("listing", "day", "minute")
        .join(glitches, on=["listing", "day"])
        .filter(pl.col("minute").is_between(pl.col("from_minute"), pl.col("to_minute")))
        .unique(subset=["listing", "day", "minute"], keep="first")
        .drop("glitch", "from_minute", "to_minute", "force_out")
    )
    frame = frame.join(hits, on=["listing", "day", "minute"], how="left")
    hit = pl.col("value").is_not_null()
    offer_hit = hit & (pl.col("series") == "offer")
    block = pl.col("mechanism") == "block_lost_digit"
    card_scale = pl.col("value") / pl.col("price_offer")
    frame = frame.with_columns(
        price_offer=pl.when(offer_hit).then(pl.col("value")).otherwise(pl.col("price_offer")),
        price_list=pl.when(offer_hit & block)
        .then(pl.max_horizontal(pl.col("price_list") // 10, pl.col("value")))
        .otherwise(pl.col("price_list")),
        price_card=pl.when(hit & (pl.col("series") == "card"))
        .then(pl.col("value"))
        .when(offer_hit & block & (pl.col("price_card") > 0))
        .then((pl.col("price_card") * card_scale).round().cast(pl.Int64).clip(1))
        .when(offer_hit)
        .then(None)  # a card price above the (wrong) offer is not shown
        .otherwise(pl.col("price_card")),
    )
    local = pl.lit(datetime.combine(config.start, time())) + pl.duration(
        days=pl.col("day"), minutes=pl.col("minute")
    )
    products_ = products.with_row_index("product_idx").with_columns(
        pl.col("product_idx").cast(pl.Int64)
    )
    series = (
        frame.join(
            products_.select("product_idx", "product_id", "name", "category"), on="product_idx"
        )
        .with_columns(
            sku=pl.col("retailer").str.slice(0, 3) + "-" + pl.col("product_id"),
            observed_at=local.dt.replace_time_zone(
                str(TZ), ambiguous="earliest", non_existent="null"
            ).dt.convert_time_zone("UTC"),
            price_card=pl.when(pl.col("price_card") > 0).then(pl.col("price_card")),
            is_glitch=hit
            & pl.col("price_offer").gt(0)
            & ((pl.col("series") == "offer") | pl.col("price_card").is_not_null()),
        )
        .filter((pl.col("price_offer") > 0) & pl.col("observed_at").is_not_null())
        .select(
            "product_id",
            "name",
            "category",
            "retailer",
            "sku",
            "observed_at",
            "price_list",
            "price_offer",
            "price_card",
            "in_stock",
            "is_glitch",
            "dynamics",
            mechanism=pl.when(hit).then(pl.col("mechanism")),
            glitch_day=pl.when(hit).then(pl.col("glitch_day")),
            first_day=pl.col("first_day").fill_null(False),
        )
        .sort("observed_at", "retailer", "sku")
    )
    names = [(n, config.start + timedelta(a), config.start + timedelta(b)) for n, a, b in events]
    return RetailMarket(series=series, config=config, events=names)


# --- scenarios ---------------------------------------------------------------------------------

# Each scenario turns one dynamic up over the everyday market, so a weakness has a name.
SCENARIOS: dict[str, dict[str, float]] = {
    "everyday": {},
    "level_shifts_then_promotions": {
        "shift_rate": 1 / 60,
        "product_shift_rate": 1 / 60,
        "promotion_after_cut": 0.9,
        "promotion_rate": 1 / 20,
    },
    "first_day_glitches": {"late_listing_rate": 0.4, "first_day_share": 0.6},
    "multi_day_glitches": {"multi_day_share": 0.9},
    "event_days": {"event_participation": 0.95, "fake_discount_rate": 0.6, "store_sales": 6},
    "card_only_dips": {"card_rate": 0.9, "card_dip_rate": 1 / 12, "card_glitch_share": 0.4},
    "stock_outs": {"stockout_rate": 0.05, "out_of_stock_glitch_share": 0.25},
    "price_matching": {"match_rate": 0.8, "promotion_rate": 1 / 15},
    "all_at_once": {
        "shift_rate": 1 / 40,
        "promotion_after_cut": 0.6,
        "promotion_rate": 1 / 18,
        "late_listing_rate": 0.2,
        "first_day_share": 0.2,
        "multi_day_share": 0.6,
        "store_sales": 4,
        "card_dip_rate": 1 / 25,
        "stockout_rate": 0.03,
        "match_rate": 0.5,
    },
}


def scenario_configs(
    n_products: int = 300, days: int = 180
) -> list[tuple[str, RetailMarketConfig]]:
    """(name, config) of every scenario; seeds differ so scenarios are separate markets."""
    base = RetailMarketConfig(n_products=n_products, days=days)
    return [
        (name, replace(base, seed=1_000 + index, **knobs))  # type: ignore[arg-type]
        for index, (name, knobs) in enumerate(SCENARIOS.items())
    ]
