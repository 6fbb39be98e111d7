"""The products, the listings that carry them (which store, from and until which day), and
the crawls that observe them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from arbx_dagster.bench.retail_market.config import (
    CATEGORIES,
    CATEGORY_WEIGHTS,
    CRAWL_HOUR,
    STORES,
    RetailMarketConfig,
)
from arbx_dagster.bench.retail_market.shelf import nearest_990


@dataclass
class Listings:
    product: np.ndarray
    store: np.ndarray  # index in STORES
    first: np.ndarray  # first day listed
    last: np.ndarray  # last day listed


def catalogue(
    config: RetailMarketConfig, rng: np.random.Generator
) -> tuple[pl.DataFrame, Listings]:
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
    return products, Listings(product, store, first, last)


def crawls(config: RetailMarketConfig, ls: Listings, rng: np.random.Generator) -> pl.DataFrame:
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
