"""Formatting money and opportunities the way the market's users read them (CLP by
default: '$1.299.990')."""

from __future__ import annotations

import math
import sys

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table

from arbx_dagster.domain.money import DEFAULT_CURRENCY, format_amount


def clp(amount: int | float | None) -> str:
    """1299990 -> '$1.299.990' (Chilean thousands separator)."""
    return format_amount(amount, "CLP")


money = format_amount  # an amount in any market currency: 184977 USD -> 'USD 1,849.77'


def roi(pct: float) -> str:
    """ROI in percent; a glitch bought for a few pesos would print an absurd number."""
    return ">9999" if pct > 9_999 else f"{pct:.1f}"


def depth(buy_price: int, ref_price: int | None) -> str:
    """How far the buy price sits below the reference: 1 -> 90.000 is '−99.9 %'."""
    if not ref_price:
        return "—"
    value = math.trunc(1_000 * (buy_price / ref_price - 1)) / 10  # toward 0: 1 CLP is not free
    return f"{value:+.1f} %".replace("-", "−")


def opportunities_table(frame: pl.DataFrame, title: str, code: str = DEFAULT_CURRENCY) -> Table:
    """Opportunities as the CLI shows them, amounts in the market's currency ``code``."""
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD)
    table.add_column("kind", no_wrap=True)
    table.add_column("product", overflow="ellipsis", no_wrap=True, max_width=46)
    table.add_column("buy at", no_wrap=True)
    table.add_column("price", justify="right", no_wrap=True)
    table.add_column("reference", no_wrap=True)
    table.add_column("ref. price", justify="right", no_wrap=True)
    table.add_column(f"margin {code}", justify="right", no_wrap=True, min_width=12)
    # Spreads by their ROI; glitches by their depth below the reference (a 1 CLP buy's
    # "ROI" is noise): "12.3 %" against "−99.9 %".
    table.add_column("ROI / depth", justify="right", no_wrap=True)
    table.add_column("conf.", justify="right", no_wrap=True)
    held = 0
    for row in frame.iter_rows(named=True):
        kind = row["kind"] if row["kind"] == "spread" else f"glitch·{row['severity']}"
        if row.get("review"):
            kind, held = f"{kind}·review", held + 1
        buy = row["buy_retailer"] + (" (card)" if row["buy_price_type"] == "card" else "")
        table.add_row(
            kind,
            row["product_name"] or row["canonical_id"],
            buy,
            money(row["buy_price"], code),
            row["ref_retailer"] or "own history",
            money(row["ref_price"], code),
            money(row["margin_clp"], code),
            depth(row["buy_price"], row["ref_price"])
            if row["kind"] == "glitch"
            else f"{roi(row['roi_pct'])} %",
            f"{row['confidence']:.2f}",
        )
    if held:
        table.caption = (
            f"{held} held for review (weak identity or implausible gap; not alerted): "
            "`arbx opportunities review` shows why, `arbx matches label BUY REF --match` "
            "or `--no-match` settles each"
        )
        table.caption_justify = "left"
    return table


def console() -> Console:
    """A console as wide as the terminal, or wide enough for the tables when piped."""
    return Console(width=None if sys.stdout.isatty() else 150)
