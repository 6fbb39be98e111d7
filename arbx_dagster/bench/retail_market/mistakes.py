"""The planted mistakes: which listing, series, days and minutes, how each came about
(``MECHANISMS``) and the wrong price it showed."""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.bench.retail_market.book import PriceBook
from arbx_dagster.bench.retail_market.catalogue import Listings
from arbx_dagster.bench.retail_market.config import MECHANISMS, RetailMarketConfig
from arbx_dagster.bench.retail_market.shelf import below_990


def plant_glitches(
    config: RetailMarketConfig,
    ls: Listings,
    book: PriceBook,
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
