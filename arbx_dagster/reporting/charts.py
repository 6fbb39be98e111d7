"""Charts a user would rather see than read."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: charts are rendered to PNG for metadata and files

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

TIER_COLOURS = {"n_critical": "#d62728", "n_important": "#ff7f0e", "n_tracking": "#1f77b4"}


def volatility_by_category_chart(by_category: pl.DataFrame | None) -> Figure:
    """Listings per scraping tier for each category, sorted by mean volatility."""
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
