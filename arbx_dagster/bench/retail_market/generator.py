"""The labelled series: every crawl's prices as the store showed them, the planted mistakes
in place, with the ``dynamics`` around each observation and each glitch's diagnosis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np
import polars as pl

from arbx_dagster.bench.retail_market.book import PriceBook, price_book
from arbx_dagster.bench.retail_market.catalogue import Listings, catalogue, crawls
from arbx_dagster.bench.retail_market.config import (
    HIDES_PRICE_WHEN_OUT,
    STORES,
    TZ,
    RetailMarketConfig,
)
from arbx_dagster.bench.retail_market.mistakes import plant_glitches


@dataclass
class RetailMarket:
    """``series``: the rows a user would give ``--series`` (plus ``dynamics`` and the glitch
    columns ``mechanism``, ``glitch_day``, ``first_day`` for diagnosis)."""

    series: pl.DataFrame
    config: RetailMarketConfig
    events: list[tuple[str, date, date]] = field(default_factory=list)


EVERYDAY = RetailMarketConfig()  # the default market (frozen: safe to share)


# The columns of a labelled series file (what `arbx bench glitches --series` reads).
SERIES_COLUMNS = (
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
)


def generate_retail_market(config: RetailMarketConfig = EVERYDAY) -> RetailMarket:
    """A labelled multi-store series (columns of ``--series`` plus diagnosis columns)."""
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(4)]
    products, ls = catalogue(config, rngs[0])
    book, events = price_book(config, products, ls, rngs[1])
    crawled = crawls(config, ls, rngs[2])
    glitches = plant_glitches(config, ls, book, products, rngs[3])
    _stock_out_under_glitches(glitches, ls, book)
    frame = _with_glitches(_observed_prices(crawled, ls, book), glitches)
    series = _as_series(frame, products, config)
    names = [(n, config.start + timedelta(a), config.start + timedelta(b)) for n, a, b in events]
    return RetailMarket(series=series, config=config, events=names)


def _stock_out_under_glitches(glitches: pl.DataFrame, ls: Listings, book: PriceBook) -> None:
    """Glitches planted "on stock-out days" take their listing out of stock meanwhile (at
    the stores that keep showing the price)."""
    forced = glitches.filter(pl.col("force_out")).select("listing", "day").unique()
    if forced.height:
        hides = np.isin(
            ls.store[forced["listing"].to_numpy()], [STORES.index(s) for s in HIDES_PRICE_WHEN_OUT]
        )
        cells = forced.filter(~pl.Series(hides))
        book.in_stock[cells["listing"].to_numpy(), cells["day"].to_numpy()] = False
        book.tags["out_of_stock"][cells["listing"].to_numpy(), cells["day"].to_numpy()] = True


def _observed_prices(crawled: pl.DataFrame, ls: Listings, book: PriceBook) -> pl.DataFrame:
    """Each crawl with its store, product, prices, stock and the dynamics going on."""
    li, di = crawled["listing"].to_numpy(), crawled["day"].to_numpy()
    tag_names = list(book.tags)
    tag_matrix = np.stack([book.tags[t][li, di] for t in tag_names], axis=1)
    dynamics = [
        ",".join(t for t, on in zip(tag_names, row, strict=True) if on) for row in tag_matrix
    ]
    store = np.array(STORES)[ls.store[li]]
    return crawled.with_columns(
        retailer=pl.Series(store),
        product_idx=pl.Series(ls.product[li]),
        price_list=pl.Series(book.listed[li, di]),
        price_offer=pl.Series(book.offer[li, di]),
        price_card=pl.Series(book.card[li, di]),
        in_stock=pl.Series(book.in_stock[li, di]),
        dynamics=pl.Series(dynamics, dtype=pl.String),
    )


def _with_glitches(frame: pl.DataFrame, glitches: pl.DataFrame) -> pl.DataFrame:
    """The observations with the wrong prices of the glitches they fall in (same listing and
    day, inside its minutes) and the glitch's columns (``value``, ``series``, ...)."""
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
    return frame.with_columns(
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


def _as_series(
    frame: pl.DataFrame, products: pl.DataFrame, config: RetailMarketConfig
) -> pl.DataFrame:
    """The rows of a ``--series`` file (a shown offer price, at an instant that exists in
    Santiago), with the diagnosis columns, in time order."""
    hit = pl.col("value").is_not_null()
    local = pl.lit(datetime.combine(config.start, time())) + pl.duration(
        days=pl.col("day"), minutes=pl.col("minute")
    )
    products_ = products.with_row_index("product_idx").with_columns(
        pl.col("product_idx").cast(pl.Int64)
    )
    return (
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
            *SERIES_COLUMNS,
            "dynamics",
            mechanism=pl.when(hit).then(pl.col("mechanism")),
            glitch_day=pl.when(hit).then(pl.col("glitch_day")),
            first_day=pl.col("first_day").fill_null(False),
        )
        .sort("observed_at", "retailer", "sku")
    )
