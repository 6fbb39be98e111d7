"""True products: the real-world items behind the listings, one row each.

Products come in *lines* (a brand's series in one generation) that are sold in a run of
neighbouring sizes (43-65", 128-256 GB, 280-380 L): that is where the hard negatives come
from. A line is a (series, generation) pair drawn without replacement from the tier's natural
range, so sibling generations of one series (Galaxy A54 / A55, UN55CU7000 / UN55DU7000)
appear as in a real assortment, and names and model codes are unique by construction.
Products are spread over tiers within what each tier can really hold; only a catalogue larger
than every natural range (scale tests) gets *synthetic* series ("... Mk2", higher numbers).

The catalogue data is turned into two lookup tables once (one row per tier, one per
category x size), and every product is built with vectorised gathers over them.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl

from arbx_dagster.domain.simulator.catalogue_data import (
    CATEGORIES,
    DIGITS,
    TEXT_ATTRS,
    Category,
    Tier,
)
from arbx_dagster.domain.simulator.prices import to_990
from arbx_dagster.domain.simulator.text import encode, render, squash, width_for

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
    "series_no": pl.Int64(),  # series within the tier
    "gen_idx": pl.Int64(),  # generation within the tier (later is newer)
    "synthetic": pl.Boolean(),  # series beyond the tier's natural range (huge catalogues only)
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


@cache
def _tiers() -> list[tuple[Category, str, Tier]]:
    """Every (category, brand name, tier), in catalogue order; the index is the tier number."""
    return [(c, b.name, t) for c in CATEGORIES for b in c.brands for t in b.tiers]


@cache
def _tier_table() -> pl.DataFrame:
    """One row per tier: everything a product of the tier takes from it."""
    brands = {(c.key, b.name): b for c in CATEGORIES for b in c.brands}
    rows = [
        {
            "category": c.key,
            "brand": brand,
            "ean_prefix": brands[(c.key, brand)].ean_prefix,
            "gens": list(t.gens),
            "gen_codes": list(t.gen_codes or t.gens),
            "sers": list(t.sers),
            "suffixes": list(t.suffix),
            "colors": list(c.colors),
            "num_start": t.num[0],
            "num_step": t.num[1],
            "num_width": t.num_width,
            "n_series": t.n_series,
            **{f"tier_{attr}": t.attrs.get(attr) for attr in TEXT_ATTRS},
        }
        for c, brand, t in _tiers()
    ]
    schema_overrides = {f"tier_{attr}": pl.String() for attr in TEXT_ATTRS}
    return pl.DataFrame(rows, schema_overrides=schema_overrides)


@cache
def _axis_offsets() -> dict[str, int]:
    offsets, total = {}, 0
    for category in CATEGORIES:
        offsets[category.key] = total
        total += len(category.axis)
    return offsets


@cache
def _axis_table() -> pl.DataFrame:
    """One row per (category, size): its labels and attributes; the index is the axis number."""
    rows = [
        {
            "size": v.size,
            "variant_label": v.label,
            **{f"axis_{a}": v.attrs.get(a, "") for a in TEXT_ATTRS},
        }
        for c in CATEGORIES
        for v in c.axis
    ]
    return pl.DataFrame(
        rows,
        schema={
            "size": pl.String(),
            "variant_label": pl.String(),
            **{f"axis_{a}": pl.String() for a in TEXT_ATTRS},
        },
    )


def build_products(n_products: int, rng: np.random.Generator) -> pl.DataFrame:
    """``n_products`` true products across all categories (``PRODUCT_SCHEMA``)."""
    drawn = _draw_all_lines(n_products, rng)
    n = drawn["tier"].size
    tiers = _tiers()
    axis_offset = np.array([_axis_offsets()[c.key] for c, _, _ in tiers])
    frame = pl.concat(
        [
            pl.DataFrame(
                {
                    "product_idx": np.arange(n, dtype=np.int64),
                    "tier_no": drawn["tier"],
                    "line_id": drawn["line"],
                    "series_no": drawn["series"],
                    "gen_idx": drawn["gen"],
                    "_color": rng.random(n),
                    "_suffix": rng.random(n),
                }
            ),
            _tier_table()[drawn["tier"]],
            _axis_table()[axis_offset[drawn["tier"]] + drawn["variant"]],
        ],
        how="horizontal",
    )
    frame = frame.with_columns(**_labels()).with_columns(
        SER=pl.col("ser")
        .str.replace_all(" ", "", literal=True)
        .str.replace_all("+", "PLUS", literal=True)
        .str.to_uppercase(),
        part=_part_numbers(drawn["tier"], n_products, rng),
        price=pl.Series(to_990(_list_prices(drawn, rng))),
    )
    frame = _with_names_and_codes(frame)
    return _with_ids(frame, rng).select(list(PRODUCT_SCHEMA))


def _labels() -> dict[str, pl.Expr]:
    """Text fields of each product from its tier's lists and its size's attributes."""
    series, n_sers = pl.col("series_no"), pl.col("sers").list.len()
    natural = pl.col("sers").list.get(series % n_sers)
    return {
        "gen": pl.col("gens").list.get(pl.col("gen_idx")),
        "gc": pl.col("gen_codes").list.get(pl.col("gen_idx")),
        "ser": pl.when(series < n_sers)
        .then(natural)
        .otherwise(pl.concat_str([natural, pl.lit(" Mk"), (series // n_sers + 1).cast(pl.String)])),
        "num": (pl.col("num_start") + pl.col("num_step") * series)
        .cast(pl.String)
        .str.zfill(pl.col("num_width")),
        "color": pl.col("colors").list.get(_index(pl.col("_color"), pl.col("colors").list.len())),
        "suffix": pl.col("suffixes").list.get(
            _index(pl.col("_suffix"), pl.col("suffixes").list.len())
        ),
        "synthetic": series >= pl.col("n_series"),
        # the line's attributes win over the size's
        **{a: pl.coalesce(f"tier_{a}", f"axis_{a}") for a in TEXT_ATTRS},
    }


def _index(uniform: pl.Expr, length: pl.Expr) -> pl.Expr:
    return (uniform * length).floor().cast(pl.Int64)


def _with_names_and_codes(frame: pl.DataFrame) -> pl.DataFrame:
    """Render each tier's name and code templates (one pass per tier)."""
    tiers = _tiers()
    parts = [
        rows.select(
            "product_idx",
            name=squash(render(tiers[tier_no][2].name)),
            code=render(tiers[tier_no][2].code),
        )
        for (tier_no,), rows in frame.partition_by("tier_no", as_dict=True).items()
    ]
    named = pl.concat(parts).sort("product_idx")
    return frame.with_columns(name=named["name"], code=named["code"]).with_columns(
        code_full=pl.concat_str([pl.col("code"), pl.col("suffix")])
    )


def _with_ids(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """``TP000123`` ids and a valid EAN-13 per product: GS1 prefix, unique item, check digit."""
    item = rng.choice(10**9, size=frame.height, replace=False)
    body = frame["ean_prefix"].cast(pl.Int64).to_numpy() * 10**9 + item
    weighted = np.zeros(frame.height, dtype=np.int64)
    rest = body.copy()
    for position in range(12):  # digit positions from the right: weights 3, 1, 3, ...
        weighted += (rest % 10) * (3 if position % 2 == 0 else 1)
        rest //= 10
    check = (10 - weighted % 10) % 10
    return frame.with_columns(
        ean=encode(body * 10 + check, DIGITS, 13),
        true_product_id=pl.format("TP{}", pl.col("product_idx").cast(pl.String).str.zfill(6)),
    )


def _part_numbers(tier_of: np.ndarray, n_total: int, rng: np.random.Generator) -> pl.Series:
    """``{part}``: per-product part numbers, unique within each alphabet and width.

    One draw per format over all products, so lines sharing a format (iPhone and MacBook:
    ``M....LE/A``) never collide.
    """
    tiers = _tiers()
    spec = [
        (t.part, width_for(n_total, len(t.part), t.part_len) if t.part else 0) for _, _, t in tiers
    ]
    parts = pl.repeat("", tier_of.size, dtype=pl.String, eager=True).alias("part")
    for alphabet, width in sorted(set(spec)):  # a handful of formats
        if not alphabet:
            continue
        rows = np.flatnonzero(
            np.isin(tier_of, [i for i, s in enumerate(spec) if s == (alphabet, width)])
        )
        drawn = rng.choice(len(alphabet) ** width, size=rows.size, replace=False)
        parts = parts.scatter(rows, encode(drawn, alphabet, width))
    return parts


def _list_prices(drawn: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """List price: tier level x size x series x generation, with a little noise."""
    tiers = _tiers()
    level = np.array([t.price for _, _, t in tiers], dtype=float)[drawn["tier"]]
    axis_price = np.array([v.price for c in CATEGORIES for v in c.axis])
    axis_offset = np.array([_axis_offsets()[c.key] for c, _, _ in tiers])
    size = axis_price[axis_offset[drawn["tier"]] + drawn["variant"]]
    series = np.ones(drawn["tier"].size)
    for number, (_, _, tier) in enumerate(tiers):  # one vector step per tier
        rows = drawn["tier"] == number
        series[rows] = _series_price(tier, drawn["series"][rows])
    generation = 1.0 + _GENERATION_PREMIUM * drawn["gen"]
    return level * size * series * generation * np.exp(rng.normal(0.0, _PRICE_NOISE, level.size))


def _series_price(tier: Tier, series: np.ndarray) -> np.ndarray:
    if tier.ser_price is None:
        return 1.0 + tier.step * (series % tier.n_series)
    return np.array(tier.ser_price)[series % len(tier.ser_price)]


# --- how many products of each line ------------------------------------------------------------


def _draw_all_lines(n_products: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tier, line, series, generation and size of every product, tier by tier."""
    tiers = _tiers()
    counts = np.zeros(len(tiers), dtype=np.int64)
    category_counts = rng.multinomial(n_products, _shares([c.weight for c in CATEGORIES]))
    first = 0
    for category, n_category in zip(CATEGORIES, category_counts, strict=True):
        n_tiers = sum(len(b.tiers) for b in category.brands)
        counts[first : first + n_tiers] = _allocate(category, int(n_category), rng)
        first += n_tiers
    chunks: list[dict[str, np.ndarray]] = []
    first_line = 0
    for number, (category, _, tier) in enumerate(tiers):  # a loop over ~90 tiers, not rows
        if counts[number] == 0:
            continue
        lines = _draw_lines(tier, len(category.axis), int(counts[number]), rng)
        lines["line"] = lines["line"] + first_line
        lines["tier"] = np.full(lines["line"].size, number)
        first_line = int(lines["line"].max()) + 1
        chunks.append(lines)
    keys = ("tier", "line", "series", "gen", "variant")
    if not chunks:
        return {key: np.zeros(0, dtype=np.int64) for key in keys}
    return {key: np.concatenate([c[key] for c in chunks]).astype(np.int64) for key in keys}


def _shares(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()


def _allocate(category: Category, n: int, rng: np.random.Generator) -> np.ndarray:
    """Products per tier of a category: by brand and tier weight, within each tier's range.

    A tier can only hold (series x generations x sizes) real products; what a draw puts beyond
    that moves to tiers with room. Only a catalogue larger than the whole range gets synthetic
    series.
    """
    weights = np.array(
        [
            b.weight / sum(x.weight for x in b.tiers) * t.weight
            for b in category.brands
            for t in b.tiers
        ]
    )
    capacity = np.array(
        [
            t.n_series * len(t.gens) * _span(t, len(category.axis))
            for b in category.brands
            for t in b.tiers
        ]
    )
    counts = rng.multinomial(n, weights / weights.sum())
    if n > capacity.sum():
        return counts
    for _ in range(len(weights)):  # each round fills at least one tier
        excess = int(np.maximum(counts - capacity, 0).sum())
        if excess == 0:
            break
        counts = np.minimum(counts, capacity)
        room = weights * (counts < capacity)
        counts = counts + rng.multinomial(excess, room / room.sum())
    counts = np.minimum(counts, capacity)
    room = capacity - counts  # anything still unplaced goes to the first tiers with room
    return counts + np.clip(n - counts.sum() - (np.cumsum(room) - room), 0, room)


def _span(tier: Tier, axis_len: int) -> int:
    low, high = tier.sizes or (0, axis_len)
    return high - low


def _draw_lines(
    tier: Tier, axis_len: int, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Per product of one tier: its line, series, generation and variant (index on the axis)."""
    low = (tier.sizes or (0, axis_len))[0]
    span = _span(tier, axis_len)
    n_gens = len(tier.gens)
    natural = tier.n_series * n_gens
    runs = np.minimum(rng.choice(_RUN_LENGTHS, size=n, p=_RUN_WEIGHTS), span)
    n_lines = int(np.searchsorted(np.cumsum(runs), n)) + 1
    if natural < n_lines and n <= natural * span:
        # Too few real series for this many short runs: sell each line in more sizes instead.
        n_lines = natural
        runs = rng.permutation(n // natural + (np.arange(natural) < n % natural))
    runs = runs[:n_lines]
    starts = rng.integers(0, span - runs + 1)
    line_ids = rng.choice(max(natural, n_lines), size=n_lines, replace=False)
    line_of = np.repeat(np.arange(n_lines), runs)[:n]
    within = np.arange(line_of.size) - np.repeat(np.cumsum(runs) - runs, runs)[:n]
    return {
        "line": line_of,
        "series": (line_ids // n_gens)[line_of],
        "gen": (line_ids % n_gens)[line_of],
        "variant": low + starts[line_of] + within,
    }
