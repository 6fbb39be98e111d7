"""Charts a user would rather see than read."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import TYPE_CHECKING

import polars as pl

from arbx_dagster.domain.money import DEFAULT_CURRENCY, format_amount

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> ModuleType:
    """matplotlib's pyplot, headless (charts are rendered to PNG for metadata and files).
    Imported on first use: loading the code location should not pay for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


TIER_COLOURS = {"n_critical": "#d62728", "n_important": "#ff7f0e", "n_tracking": "#1f77b4"}


def volatility_by_category_chart(by_category: pl.DataFrame | None) -> Figure:
    """Listings per scraping tier for each category, sorted by mean volatility."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    if by_category is None or by_category.is_empty():
        axis.text(0.5, 0.5, "no price history yet", ha="center", va="center")
        axis.set_axis_off()
        return figure
    frame = by_category.sort("mean_volatility").with_columns(
        pl.col("category").fill_null("unknown")
    )
    left = [0] * frame.height
    for column, colour in TIER_COLOURS.items():
        values = frame[column].to_list()
        axis.barh(
            frame["category"].to_list(),
            values,
            left=left,
            color=colour,
            label=column.removeprefix("n_"),
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    axis.set_xlabel("listings")
    axis.set_title("Scraping tier by category (sorted by mean volatility)")
    axis.legend(loc="lower right")
    plt.close(figure)
    return figure


def top_opportunities_chart(series: pl.DataFrame | None, code: str = DEFAULT_CURRENCY) -> Figure:
    import matplotlib.dates as mdates

    plt = _pyplot()
    """Last 30 days of the offer price at the buy store (bold) and the reference stores,
    one panel per top opportunity: is the gap new, and is it holding?"""
    if series is None or series.is_empty():
        figure, axis = plt.subplots(figsize=(8, 2))
        axis.text(0.5, 0.5, "no live opportunities", ha="center", va="center")
        axis.set_axis_off()
        return figure
    ids = series["opportunity_id"].unique(maintain_order=True).to_list()
    figure, axes = plt.subplots(len(ids), 1, figsize=(8, 2.4 * len(ids)), squeeze=False)
    for axis, (oid,) in zip(axes[:, 0], [(i,) for i in ids], strict=True):
        panel = series.filter(pl.col("opportunity_id") == oid)
        for (retailer, is_buy), line in panel.group_by("retailer", "is_buy", maintain_order=True):
            axis.step(
                line["day"].to_list(),
                line["price_offer"].to_list(),
                where="post",
                linewidth=2.5 if is_buy else 1.2,
                label=f"{retailer}{' (buy)' if is_buy else ''}",
            )
        name = panel["product_name"][0] or oid
        axis.set_title(f"{panel['kind'][0]}: {name[:70]}", fontsize=9, loc="left")
        axis.yaxis.set_major_formatter(lambda value, _: format_amount(value, code))
        locator = mdates.AutoDateLocator(maxticks=8)
        axis.xaxis.set_major_locator(locator)
        axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        axis.legend(fontsize=7, loc="lower left")
    with warnings.catch_warnings():  # a one-day series leaves the date locator no choice
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    plt.close(figure)
    return figure
