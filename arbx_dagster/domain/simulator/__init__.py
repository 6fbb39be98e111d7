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

Stock-outs: Falabella and Ripley keep showing their prices on a sold-out listing; Paris hides
the offer and card prices (the crossed-out list price stays). Ripley never shows a stock
quantity.
"""

from arbx_dagster.domain.simulator.calendar import MarketEvent, market_events
from arbx_dagster.domain.simulator.market import (
    SimulatedMarket,
    SimulatorConfig,
    simulate_catalogue,
    simulate_market,
)

__all__ = [
    "MarketEvent",
    "SimulatedMarket",
    "SimulatorConfig",
    "market_events",
    "simulate_catalogue",
    "simulate_market",
]
