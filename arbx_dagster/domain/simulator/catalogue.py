"""True products: the real-world items behind the listings, one row each.

Products come in *lines* (a brand's series in one generation) that are sold in a run of
neighbouring sizes (43-65", 128-256 GB, 280-380 L): that is where the hard negatives come
from. A line is a (series, generation) pair drawn without replacement from the tier's natural
range, so sibling generations of one series (Galaxy A54 / A55, UN55CU7000 / UN55DU7000)
appear as often as in a real assortment, and names and model codes are unique by
construction. When a huge catalogue needs more series than a tier naturally has, series
numbers simply continue (still unique, less pretty).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.domain.simulator.catalogue_data import (
    CATEGORIES,
    DIGITS,
    TEXT_ATTRS,
    Brand,
    Category,
    Tier,
)
from arbx_dagster.domain.simulator.prices import to_990
from arbx_dagster.domain.simulator.text import encode, render, scramble, squash, width_for

# How many neighbouring sizes a line is sold in (1 to 4).
_RUN_LENGTHS = np.array([1, 2, 3, 4])
_RUN_WEIGHTS = np.array([0.3, 0.35, 0.25, 0.1])
_GENERATION_PREMIUM = 0.06  # each newer generation lists ~6 % higher
_PRICE_NOISE = 0.04  # log-normal spread of list prices around the tier's level

PRODUCT_SCHEMA: dict[str, pl.DataType] = {
    "product_idx": pl.Int64(),
    "true_product_id": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "line_id": pl.Int64(),  # one per line (series x generation of a tier)
    "series_no": pl.Int64(),  # series within the tier; beyond ``Tier.n_series`` names are synthetic
    "gen_idx": pl.Int64(),
    "name": pl.String(),  # marketing name: "Galaxy A55", "Crystal UHD CU7000"
    "code": pl.String(),  # model code without region/colour suffix
    "code_full": pl.String(),  # with the suffix, as on the box
    "size": pl.String(),
    "variant_label": pl.String(),
    "color": pl.String(),
    "ean": pl.String(),
    "price": pl.Int64(),  # list ("normal") price in CLP
    **{attr: pl.String() for attr in TEXT_ATTRS},
}


def build_products(n_products: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n_products`` true products across all categories (``PRODUCT_SCHEMA``)."""
    salt = int(rng.integers(0, 2**31))
    frames: list[pl.DataFrame] = []
    first = first_line = 0
    category_counts = rng.multinomial(n_products, _shares([c.weight for c in CATEGORIES]))
    for category, n_category in zip(CATEGORIES, category_counts, strict=True):
        brand_counts = rng.multinomial(n_category, _shares([b.weight for b in category.brands]))
        for brand, n_brand in zip(category.brands, brand_counts, strict=True):
            tier_counts = rng.multinomial(n_brand, _shares([t.weight for t in brand.tiers]))
            for tier, n in zip(brand.tiers, tier_counts, strict=True):
                if n == 0:
                    continue
                lines = _draw_lines(tier, len(category.axis), int(n), rng)
                lines["line"] = lines["line"] + first_line
                frames.append(_tier_products(category, brand, tier, lines, first, n_products, salt, rng))
                first += int(n)
                first_line = int(lines["line"].max()) + 1
    products = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=PRODUCT_SCHEMA)
    return _with_ean(products, salt).select(list(PRODUCT_SCHEMA))


def _shares(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


def _draw_lines(tier: Tier, axis_len: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per product of one tier: its series, generation and variant (index on the axis)."""
    low, high = tier.sizes or (0, axis_len)
    span = high - low
    runs = np.minimum(rng.choice(_RUN_LENGTHS, size=n, p=_RUN_WEIGHTS), span)
    starts = rng.integers(0, span - runs + 1)
    n_lines = int(np.searchsorted(np.cumsum(runs), n)) + 1
    runs, starts = runs[:n_lines], starts[:n_lines]
    n_gens = len(tier.gens)
    pool = max(tier.n_series * n_gens, n_lines)
    line_ids = rng.choice(pool, size=n_lines, replace=False)
    line_of = np.repeat(np.arange(n_lines), runs)[:n]
    within = np.arange(line_of.size) - np.repeat(np.cumsum(runs) - runs, runs)[:n]
    return {
        "line": line_of,
        "series": (line_ids // n_gens)[line_of],
        "gen": (line_ids % n_gens)[line_of],
        "variant": low + starts[line_of] + within,
    }


def _pick(values: list[str] | tuple[str, ...], index: np.ndarray) -> pl.Series:
    """``values[index]`` as a string Series (gathering is far faster than numpy strings)."""
    return pl.Series(list(values), dtype=pl.String).gather(index)


def _series_labels(tier: Tier) -> pl.Expr:
    """``{ser}``: the natural series names, then "<name> 2", "<name> 3"... beyond them."""
    n = len(tier.sers)
    series = pl.col("series_no")
    natural = pl.lit(pl.Series(list(tier.sers), dtype=pl.String)).gather(series % n)
    extra = pl.concat_str([natural, pl.lit(" "), (series // n + 1).cast(pl.String)])
    return pl.when(series < n).then(natural).otherwise(extra)


def _series_price(tier: Tier, series: np.ndarray) -> np.ndarray:
    natural = series % tier.n_series
    if tier.ser_price is None:
        return 1.0 + tier.step * natural
    return np.array(tier.ser_price)[series % len(tier.ser_price)]


def _tier_products(
    category: Category,
    brand: Brand,
    tier: Tier,
    lines: dict[str, np.ndarray],
    first: int,
    n_total: int,
    salt: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    series, gen, variant = lines["series"], lines["gen"], lines["variant"]
    n = series.size
    axis = category.axis
    columns: list[pl.Series] = [
        pl.Series("product_idx", np.arange(first, first + n, dtype=np.int64)),
        pl.Series("line_id", lines["line"].astype(np.int64)),
        pl.Series("series_no", series.astype(np.int64)),
        pl.Series("gen_idx", gen.astype(np.int64)),
        _pick([v.size for v in axis], variant).alias("size"),
        _pick([v.label for v in axis], variant).alias("variant_label"),
        _pick(tier.gens, gen).alias("gen"),
        _pick(tier.gen_codes or tier.gens, gen).alias("gc"),
        _pick(category.colors, rng.integers(0, len(category.colors), n)).alias("color"),
        _pick(tier.suffix, rng.integers(0, len(tier.suffix), n)).alias("suffix"),
        _part_numbers(tier, np.arange(first, first + n), n_total, salt).alias("part"),
    ]
    for attr in TEXT_ATTRS:  # line attributes win over the axis's
        if attr in tier.attrs:
            columns.append(_pick([tier.attrs[attr]], np.zeros(n, dtype=np.int64)).alias(attr))
        else:
            columns.append(_pick([v.attrs.get(attr, "") for v in axis], variant).alias(attr))
    frame = pl.DataFrame(columns).with_columns(
        category=pl.lit(category.key),
        brand=pl.lit(brand.name),
        ser=_series_labels(tier),
        num=(tier.num[0] + tier.num[1] * pl.col("series_no")).cast(pl.String).str.zfill(tier.num_width),
    )
    frame = frame.with_columns(
        SER=pl.col("ser").str.replace_all(" ", "", literal=True)
        .str.replace_all("+", "PLUS", literal=True).str.to_uppercase(),
    )
    frame = frame.with_columns(name=squash(render(tier.name)), code=render(tier.code))
    list_price = (
        tier.price
        * np.array([v.price for v in axis])[variant]
        * _series_price(tier, series)
        * (1.0 + _GENERATION_PREMIUM * gen)
        * np.exp(rng.normal(0.0, _PRICE_NOISE, n))
    )
    return frame.with_columns(
        code_full=pl.concat_str([pl.col("code"), pl.col("suffix")]),
        price=pl.Series(to_990(list_price)),
        ean=pl.lit(brand.ean_prefix),
        true_product_id=pl.lit(""),
    )


def _part_numbers(tier: Tier, index: np.ndarray, n_total: int, salt: int) -> pl.Series:
    if not tier.part:
        return pl.Series([""] * index.size, dtype=pl.String)
    base = len(tier.part)
    width = width_for(n_total, base, tier.part_len)
    return encode(scramble(index, base**width, salt), tier.part, width)


def _with_ean(products: pl.DataFrame, salt: int) -> pl.DataFrame:
    """A valid EAN-13 per product: brand's GS1 prefix, a unique item number, check digit."""
    index = products["product_idx"].to_numpy()
    body = products["ean"].cast(pl.Int64).to_numpy() * 10**9 + scramble(index, 10**9, salt)
    weighted = np.zeros(index.size, dtype=np.int64)
    rest = body.copy()
    for position in range(12):  # digit positions from the right: weights 3, 1, 3, ...
        weighted += (rest % 10) * (3 if position % 2 == 0 else 1)
        rest //= 10
    check = (10 - weighted % 10) % 10
    return products.with_columns(
        ean=encode(body * 10 + check, DIGITS, 13),
        true_product_id=pl.format("TP{}", pl.col("product_idx").cast(pl.String).str.zfill(6)),
    )
