"""How opportunities read in the terminal: a glitch by its depth, never by an absurd ROI."""

from __future__ import annotations

import polars as pl
from rich.console import Console

from arbx_dagster.reporting.format import depth, opportunities_table


def test_depth_is_shown_against_the_reference_and_never_rounds_a_peso_down_to_free():
    assert depth(1, 89_990) == "−99.9 %"
    assert depth(150_000, 200_000) == "−25.0 %"
    assert depth(10, None) == "—"


def test_a_glitch_row_shows_its_depth_where_a_spread_shows_its_roi():
    # One column, so the table still fits a 150-column pipe: the sign tells them apart.
    common = {
        "canonical_id": "tv",
        "product_name": "Smart TV 55",
        "buy_price_type": "offer",
        "confidence": 0.75,
    }
    rows = [
        common
        | {
            "kind": "glitch",
            "severity": "high",
            "buy_retailer": "paris",
            "buy_price": 1,
            "ref_retailer": None,
            "ref_price": 89_990,
            "margin_clp": 89_989,
            "roi_pct": 1_000.0,
        },
        common
        | {
            "kind": "spread",
            "severity": None,
            "buy_retailer": "ripley",
            "buy_price": 150_000,
            "ref_retailer": "paris",
            "ref_price": 200_000,
            "margin_clp": 50_000,
            "roi_pct": 33.3,
        },
    ]
    console = Console(width=200, record=True)
    console.print(opportunities_table(pl.DataFrame(rows), "Live opportunities"))
    glitch, spread = (line for line in console.export_text().splitlines() if "Smart TV" in line)
    assert "−99.9 %" in glitch and "1000" not in glitch
    assert "33.3 %" in spread
