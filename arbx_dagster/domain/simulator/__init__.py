"""Deterministic simulator of the Chilean multi-store market, with labelled ground truth.

It is what ``make demo`` runs on and what tests and benchmarks score matching, spreads and
glitch detection against, so it imitates what real scrapers of Falabella, Ripley and Paris
see (see ``shared/notes/retail-domain.md``), and labels exactly what it plants:

* a catalogue of true products in real categories and brands, with model codes in each
  brand's style and sibling products that differ only by size, capacity or generation
  (``catalogue``, ``catalogue_data``);
* per-store listings whose titles, identifiers, URLs, categories, sellers and card
  programmes follow each store's conventions (``listings``);
* step-shaped daily list/offer/card prices in CLP ending in 990, market-wide events at their
  usual dates, stock-outs (``prices``, ``calendar``);
* planted cross-store gaps, price glitches and malformed rows (``anomalies``).

Everything is drawn from ``numpy.random.default_rng`` streams spawned from the seed, in a
fixed order, with vectorised NumPy/Polars code: same config, same frames.

What a consumer of the data should know:

* Stock-outs: Falabella and Ripley keep showing their prices on a sold-out listing; Paris hides
  the offer and card prices (the crossed-out list price stays). Ripley never shows a stock
  quantity; elsewhere a sold-out listing shows 0.
* Ordinary store-to-store differences in *offer* prices stay within 6 % of the product's
  highest offer (events included); only planted gaps open more. Card prices are 3-10 % (on
  events up to 15 %) below the offer at one store, so card-vs-offer comparisons can exceed
  8 % without a planted gap: ``truth_gaps`` is about offer prices.
* Some marketplace listings are refurbished (``condition``, and the title says so); they are
  priced like new unless ``refurbished_discount`` is set, so compare like with like.
* Titles always carry what identifies the product (its marketing name or its model code, and
  the size/capacity), but not always the same way at every store.
"""

from arbx_dagster.domain.simulator.calendar import MarketEvent, market_events
from arbx_dagster.domain.simulator.market import (
    SimulatedMarket,
    SimulatorConfig,
    simulate_catalogue,
    simulate_market,
    simulate_snapshot,
)

__all__ = [
    "MarketEvent",
    "SimulatedMarket",
    "SimulatorConfig",
    "market_events",
    "simulate_catalogue",
    "simulate_market",
    "simulate_snapshot",
]
