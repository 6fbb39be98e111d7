"""Putting the market together: configuration, observations and the labelled ground truth.

Observation times: each store is crawled once a day in its own window of Santiago time
(Falabella from 07:00, Ripley from 10:00, Paris from 13:00), each listing at its own slot
give or take ten minutes, stored in UTC. With ``now`` set, the last day's observations that
would fall after it are moved to just before it (same local day), as a crawl in progress.
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, RETAILERS, conform, empty
from arbx_dagster.domain.simulator.anomalies import (
    PlantedGaps,
    PlantedGlitches,
    plant_gaps,
    plant_glitches,
    plant_malformed,
)
from arbx_dagster.domain.simulator.calendar import (
    CRAWL_MINUTES,
    CRAWL_START_HOUR,
    MARKET_TZ,
    MarketEvent,
    market_events,
)
from arbx_dagster.domain.simulator.catalogue import build_products
from arbx_dagster.domain.simulator.listings import CARRIER_WEIGHTS, carry_products
from arbx_dagster.domain.simulator.prices import EventWindow, Layout, PriceBook, simulate_prices

SOURCE = "simulator"
HIDES_PRICE_WHEN_OUT_OF_STOCK = ("paris",)  # Paris hides offer and card prices; others keep them
HIDES_STOCK_QTY = ("ripley",)
_HASH_CHUNK = 200_000
_RATES = (
    "glitch_rate",
    "gap_rate",
    "malformed_rate",
    "gap_active_at_end",
    "glitch_at_end",
    "marketplace_rate",
    "refurbished_rate",
    "refurbished_discount",
    "late_listing_rate",
    "stockout_rate",
    "event_participation",
    "fake_discount_rate",
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes a simulated market; the same config gives the same market."""

    seed: int = 7
    n_products: int = 400  # distinct true products
    days: int = 60  # daily history length, ending at ``end``
    end: date = date(2026, 11, 23)
    retailers: tuple[str, ...] = RETAILERS
    glitch_rate: float = 0.03  # share of listings with one planted glitch (1-2 observations)
    gap_rate: float = 0.10  # share of multi-store products with a planted cross-store gap
    malformed_rate: float = 0.002  # share of observation rows broken on purpose
    now: datetime | None = None  # when the scrape "runs": no observation is later
    gap_active_at_end: float = 0.5  # share of gaps still running on ``end``
    glitch_at_end: float = 0.3  # share of glitches placed on ``end`` (when possible)
    marketplace_rate: float = 0.15  # share of listings sold by marketplace sellers
    refurbished_rate: float = 0.05  # share of marketplace listings that are refurbished
    refurbished_discount: float = 0.0  # price cut of refurbished listings (0: priced as new)
    late_listing_rate: float = 0.05  # share of listings that appear during the window
    stockout_rate: float = 0.01  # daily chance that a listing runs out (for 1-6 days)
    event_participation: float = 0.6  # share of products discounted on an event
    fake_discount_rate: float = 0.3  # share of those listings inflating the list price before

    def __post_init__(self) -> None:
        if self.n_products < 1 or self.days < 1:
            raise ValueError("n_products and days must be at least 1")
        if not self.retailers or len(set(self.retailers)) != len(self.retailers):
            raise ValueError(f"retailers must be distinct and non-empty, got {self.retailers!r}")
        unknown = set(self.retailers) - set(RETAILERS)
        if unknown:
            raise ValueError(f"unknown retailers {sorted(unknown)}; known: {list(RETAILERS)}")
        for name in _RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}")
        if self.now is not None and _local_day(self.now) < self.end:
            raise ValueError(f"now ({self.now}) falls before the last simulated day ({self.end})")

    @property
    def first_day(self) -> date:
        return self.end - timedelta(days=self.days - 1)


@dataclass(frozen=True)
class SimulatedMarket:
    """The observations a scraper would have collected, and what was planted in them.

    * ``observations`` — ``RAW_PRICE_SCHEMA``, sorted by ``observed_at``.
    * ``truth_listings`` — ``retailer, sku, true_product_id``: every listing once.
    * ``truth_glitches`` — ``retailer, sku, observed_at, price_type ('offer'/'card'),
      true_price, glitch_price``: one row per glitched observation.
    * ``truth_gaps`` — ``true_product_id, cheap_retailer, cheap_sku, start_day, end_day,
      discount``: the cheap listing's offer is ``floor_990(normal * (1 - discount))`` on every
      day of ``[start_day, end_day]`` (Santiago calendar days).
    * ``truth_promotions`` — ``event, start_day, end_day``: market-wide events in the window.
    * ``truth_malformed`` — ``row`` (position in ``observations``), ``retailer, sku`` (as
      they were before breaking), ``observed_at, defect, field``.
    """

    observations: pl.DataFrame
    truth_listings: pl.DataFrame
    truth_glitches: pl.DataFrame
    truth_gaps: pl.DataFrame
    truth_promotions: pl.DataFrame
    truth_malformed: pl.DataFrame


def simulate_market(config: SimulatorConfig = SimulatorConfig()) -> SimulatedMarket:
    """A multi-store market with ``config.days`` of daily prices and its ground truth."""
    return _simulate(config)


def simulate_catalogue(
    n_listings: int, seed: int = 7, retailers: tuple[str, ...] = RETAILERS
) -> pl.DataFrame:
    """A one-day snapshot (``RAW_PRICE_SCHEMA``) of ``n_listings`` listings, for scale tests.

    Same catalogue, titles and prices as :func:`simulate_market`, without planted anomalies.
    """
    return simulate_snapshot(n_listings, seed=seed, retailers=retailers).observations


def simulate_snapshot(
    n_listings: int,
    *,
    seed: int = 7,
    retailers: tuple[str, ...] = RETAILERS,
    gap_rate: float = 0.0,
) -> SimulatedMarket:
    """One day of ``n_listings`` listings with its ground truth (which listings are one
    product; ``gap_rate`` of the products with a planted cross-store price gap), no
    glitches or malformed rows: what ``arbx bench scale`` measures the pipeline on."""
    if n_listings <= 0:
        return SimulatedMarket(
            empty(RAW_PRICE_SCHEMA),
            pl.DataFrame(
                schema={"retailer": pl.String, "sku": pl.String, "true_product_id": pl.String}
            ),
            pl.DataFrame(),
            pl.DataFrame(),
            pl.DataFrame(),
            pl.DataFrame(),
        )
    weights = np.array(CARRIER_WEIGHTS[: len(retailers)])
    per_product = float((weights / weights.sum()) @ np.arange(1, len(retailers) + 1))
    config = SimulatorConfig(
        seed=seed,
        n_products=math.ceil(n_listings / per_product * 1.05) + 10,
        days=1,
        retailers=tuple(retailers),
        glitch_rate=0.0,
        gap_rate=gap_rate,
        gap_active_at_end=1.0,
        malformed_rate=0.0,
        late_listing_rate=0.0,
    )
    return _simulate(config, max_listings=n_listings)


def _simulate(config: SimulatorConfig, max_listings: int | None = None) -> SimulatedMarket:
    """Catalogue -> listings -> daily prices -> planted anomalies -> observations + truth.

    Each step draws from its own random stream spawned from the seed, so changing how one
    step draws never shifts what the others produce.
    """
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(7)]
    products = build_products(config.n_products, rngs[0])
    listings = carry_products(
        products,
        config.retailers,
        rngs[1],
        days=config.days,
        marketplace_rate=config.marketplace_rate,
        refurbished_rate=config.refurbished_rate,
        late_listing_rate=config.late_listing_rate,
    )
    if max_listings is not None:
        listings = listings.head(max_listings)
    events = market_events(config.first_day, config.end)
    layout = _layout(products, listings, config)
    book = simulate_prices(
        layout,
        [_window(event, config) for event in events],
        rngs[2],
        participation=config.event_participation,
        fake_discount_rate=config.fake_discount_rate,
        refurbished_discount=config.refurbished_discount,
        stockout_rate=config.stockout_rate,
    )
    gaps = plant_gaps(
        book, layout, rngs[3], rate=config.gap_rate, active_at_end=config.gap_active_at_end
    )
    glitches = plant_glitches(
        book,
        layout,
        gaps.product_days,
        rngs[4],
        rate=config.glitch_rate,
        at_end=config.glitch_at_end,
    )
    _hide_prices_when_out_of_stock(book, listings)
    # Gap days and glitched observations stay intact: malformed rows are planted elsewhere.
    protected = gaps.product_days[layout.product_of]
    protected[glitches.listing, glitches.day] = True
    cells = _observation_frame(listings, book, protected, config, rngs[5])
    truth_glitches = _glitch_truth(glitches, cells, layout.start_day, config.days)
    frame = cells.with_row_index("_cell").sort("observed_at", "_cell").drop("_cell")
    del cells, book, protected  # large at scale
    eligible = (~frame["_protected"] & frame["price_offer"].is_not_null()).to_numpy()
    broken, truth_malformed = plant_malformed(
        frame.drop("_protected"), eligible, rngs[6], rate=config.malformed_rate
    )
    del frame
    return SimulatedMarket(
        observations=_with_payload_hash(conform(broken, RAW_PRICE_SCHEMA)),
        truth_listings=listings.select("retailer", "sku", "true_product_id").sort(
            "retailer", "sku"
        ),
        truth_glitches=truth_glitches,
        truth_gaps=_gap_truth(gaps, listings, config),
        truth_promotions=_promotion_truth(events),
        truth_malformed=truth_malformed,
    )


def _layout(products: pl.DataFrame, listings: pl.DataFrame, config: SimulatorConfig) -> Layout:
    return Layout(
        list_price=products["price"].to_numpy(),
        product_of=listings["product_idx"].to_numpy(),
        is_new=(listings["condition"] == "new").to_numpy(),
        has_card=listings["has_card"].to_numpy(),
        start_day=listings["start_day"].to_numpy(),
        days=config.days,
    )


def _local_day(moment: datetime) -> date:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(MARKET_TZ)).date()


def _window(event: MarketEvent, config: SimulatorConfig) -> EventWindow:
    first = max((event.start - config.first_day).days, 0)
    last = min((event.end - config.first_day).days, config.days - 1)
    return EventWindow(event.name, first, last)


def _hide_prices_when_out_of_stock(book: PriceBook, listings: pl.DataFrame) -> None:
    """Stores that show no buyable price on a sold-out page (the list price stays visible)."""
    hides = listings["retailer"].is_in(list(HIDES_PRICE_WHEN_OUT_OF_STOCK)).to_numpy()
    hidden = hides[:, None] & ~book.in_stock
    book.price_offer[hidden] = 0
    book.price_card[hidden] = 0


def _observation_frame(
    listings: pl.DataFrame,
    book: PriceBook,
    protected: np.ndarray,
    config: SimulatorConfig,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One row per listing per day it exists, listing by listing, day by day."""
    listing, day = np.nonzero(book.exists)

    def shown(matrix: np.ndarray) -> pl.Series:
        values = matrix[listing, day]
        return pl.Series(np.where(values > 0, values, 0)).replace(0, None)

    cells = pl.DataFrame(
        {
            "listing_idx": listing.astype(np.int64),
            "day": day.astype(np.int64),
            "in_stock": book.in_stock[listing, day],
            "stock_qty": book.stock_qty[listing, day].astype(np.int32),
            "_protected": protected[listing, day],
            "_jitter": rng.integers(-10, 11, listing.size),
            "_second": rng.integers(0, 60, listing.size),
            "_before_now": rng.integers(0, 3600, listing.size),
        }
    ).with_columns(
        price_list=shown(book.price_list),
        price_offer=shown(book.price_offer),
        price_card=shown(book.price_card),
    )
    frame = cells.hstack(listings.select(_LISTING_FIELDS)[listing]).with_columns(
        observed_at=_observed_at(config),
        stock_qty=pl.when(pl.col("retailer").is_in(list(HIDES_STOCK_QTY)))
        .then(None)
        .otherwise(pl.col("stock_qty")),
        card_program=pl.when(pl.col("price_card").is_not_null()).then(pl.col("card_program")),
        category=pl.col("category_path"),
        currency=pl.lit("CLP"),
        fetch_status=pl.lit("ok"),
        source=pl.lit(SOURCE),
    )
    return frame.select(*[c for c in RAW_PRICE_SCHEMA if c != "payload_sha256"], "_protected")


_LISTING_FIELDS = (
    "retailer",
    "sku",
    "product_id",
    "variant",
    "url",
    "name",
    "brand",
    "model",
    "ean",
    "category_path",
    "listing_rank",
    "card_program",
    "seller",
    "is_first_party",
    "condition",
    "image_urls",
    "crawl_minute",
)


def _observed_at(config: SimulatorConfig) -> pl.Expr:
    """Local crawl time (store's window + the listing's slot + a few minutes' jitter), in UTC."""
    start_hour = pl.col("retailer").replace_strict(CRAWL_START_HOUR, return_dtype=pl.Int64)
    minute = (pl.col("crawl_minute") + pl.col("_jitter")).clip(0, CRAWL_MINUTES - 1)
    seconds = pl.col("day") * 86_400 + start_hour * 3_600 + minute * 60 + pl.col("_second")
    local = pl.lit(datetime.combine(config.first_day, time())) + pl.duration(seconds=seconds)
    observed = local.dt.replace_time_zone(MARKET_TZ).dt.convert_time_zone("UTC")
    if config.now is None:
        return observed
    now = config.now if config.now.tzinfo is not None else config.now.replace(tzinfo=UTC)
    midnight = datetime.combine(_local_day(now), time(), tzinfo=ZoneInfo(MARKET_TZ))
    room = int((now - midnight).total_seconds())
    earlier = pl.lit(now.astimezone(UTC)) - pl.duration(seconds=pl.col("_before_now").clip(0, room))
    return pl.when(observed > pl.lit(now.astimezone(UTC))).then(earlier).otherwise(observed)


def _with_payload_hash(observations: pl.DataFrame) -> pl.DataFrame:
    """sha256 of the row as stable JSON (schema order, everything but the hash itself).

    Polars writes the JSON; ``hashlib`` digests the raw bytes, the one per-row Python step
    here (neither Polars nor NumPy has SHA-256; DuckDB's is ~3x slower). The next chunk's JSON
    is encoded in a worker thread (Polars releases the GIL) while this one is hashed.
    """
    columns = [c for c in RAW_PRICE_SCHEMA if c != "payload_sha256"]

    def encode(offset: int) -> pl.Series:
        chunk = observations.slice(offset, _HASH_CHUNK)
        return chunk.select(pl.struct(columns).struct.json_encode().cast(pl.Binary)).to_series()

    digests: list[str] = []
    offsets = range(0, observations.height, _HASH_CHUNK)  # chunks bound the memory
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(encode, 0) if offsets else None
        for offset in offsets:
            payloads = pending.result() if pending is not None else pl.Series([], dtype=pl.Binary)
            following = offset + _HASH_CHUNK
            pending = worker.submit(encode, following) if following < observations.height else None
            digests.extend(hashlib.sha256(payload).hexdigest() for payload in payloads)
    return observations.with_columns(payload_sha256=pl.Series(digests, dtype=pl.String))


def _glitch_truth(
    glitches: PlantedGlitches, cells: pl.DataFrame, start_day: np.ndarray, days: int
) -> pl.DataFrame:
    """One row per glitched observation; ``cells`` is in (listing, day) order."""
    first_row = np.concatenate([[0], np.cumsum(days - start_day)[:-1]]).astype(np.int64)
    rows = first_row[glitches.listing] + glitches.day - start_day[glitches.listing]
    return (
        cells.select("retailer", "sku", "observed_at")[rows]
        .with_columns(
            price_type=pl.Series(glitches.price_type.astype(str), dtype=pl.String),
            true_price=pl.Series(glitches.true_price.astype(np.int64)),
            glitch_price=pl.Series(glitches.glitch_price.astype(np.int64)),
        )
        .sort("observed_at", "retailer", "sku")
    )


def _gap_truth(gaps: PlantedGaps, listings: pl.DataFrame, config: SimulatorConfig) -> pl.DataFrame:
    first_day = pl.lit(config.first_day)
    planted = pl.DataFrame(
        {
            "listing_idx": gaps.listing.astype(np.int64),
            "first": gaps.first.astype(np.int64),
            "last": gaps.last.astype(np.int64),
            "discount": gaps.discount.astype(np.float64),
        }
    ).with_columns(
        start_day=first_day + pl.duration(days=pl.col("first")),
        end_day=first_day + pl.duration(days=pl.col("last")),
    )
    return (
        planted.join(
            listings.select("listing_idx", "true_product_id", "retailer", "sku"), on="listing_idx"
        )
        .select(
            "true_product_id",
            cheap_retailer="retailer",
            cheap_sku="sku",
            start_day="start_day",
            end_day="end_day",
            discount="discount",
        )
        .sort("true_product_id")
    )


def _promotion_truth(events: list[MarketEvent]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event": [e.name for e in events],
            "start_day": [e.start for e in events],
            "end_day": [e.end for e in events],
        },
        schema={"event": pl.String(), "start_day": pl.Date(), "end_day": pl.Date()},
    )
