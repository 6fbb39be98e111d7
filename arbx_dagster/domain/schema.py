"""Column contracts shared by every stage of the pipeline.

Each stage hands the next a Polars frame with exactly these columns; the warehouse
tables in ``sql/`` mirror them. Keeping them in one place is what lets a connector,
the simulator, the matcher and the detectors be written and tested independently.
"""

from __future__ import annotations

import re

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")

RETAILERS: tuple[str, ...] = ("falabella", "ripley", "paris")  # the demo's (Chilean) market
# The retailer dimension of raw-price partitions: Dagster dynamic partitions of this name.
RETAILER_PARTITIONS_NAME = "retailer"
# What a retailer may be called (sources.yaml names, landing folders, partition keys).
RETAILER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

# One price observation as a scraper (or the simulator) yields it.
# Prices are integer CLP; ``None`` means "not shown", never zero.
RAW_PRICE_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),  # retailer SKU (one per variant)
    "product_id": pl.String(),  # retailer's product id (groups variants)
    "variant": pl.String(),
    "url": pl.String(),
    "name": pl.String(),
    "brand": pl.String(),
    "model": pl.String(),  # model / part number when the store exposes it
    "ean": pl.String(),
    "category": pl.String(),  # path, " > " separated
    "listing_rank": pl.Int32(),
    "price_list": pl.Int64(),  # crossed-out "normal" price
    "price_offer": pl.Int64(),  # internet / event price anyone can pay
    "price_card": pl.Int64(),  # store-card-only price
    "card_program": pl.String(),  # CMR, Tarjeta Ripley, Tarjeta Cencosud
    "currency": pl.String(),
    "in_stock": pl.Boolean(),
    "stock_qty": pl.Int32(),
    "seller": pl.String(),
    "is_first_party": pl.Boolean(),
    "condition": pl.String(),  # new / refurbished / used
    "image_urls": pl.String(),  # JSON array of absolute URLs, main image first
    "observed_at": UTC_DATETIME,
    "fetch_status": pl.String(),  # ok / missing
    "payload_sha256": pl.String(),
    "source": pl.String(),  # connector that produced the row
}

RAW_PRICE_KEY: tuple[str, ...] = ("retailer", "sku", "observed_at")

# A row that could not be accepted, kept with the reason so nothing is lost.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "record_hash": pl.String(),  # sha256 of the raw record: natural key
    "retailer": pl.String(),
    "source": pl.String(),
    "source_location": pl.String(),  # file:line, url, or simulator row
    "reason": pl.String(),
    "raw_record": pl.String(),  # JSON text of the offending record
    "quarantined_at": UTC_DATETIME,
}

# The current state of one listing (retailer x sku), cleaned and enriched for matching.
LISTING_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "product_id": pl.String(),
    "name": pl.String(),
    "name_norm": pl.String(),  # case/accent folded, units normalised
    "brand": pl.String(),  # canonical brand, lower case
    "model_code": pl.String(),  # normalised model code (no dashes/spaces), may be null
    "model_codes": pl.String(),  # every code found, best first, space-separated
    "category": pl.String(),  # leaf category, folded
    "url": pl.String(),
    "price_list": pl.Int64(),
    "price_offer": pl.Int64(),
    "price_card": pl.Int64(),
    "card_program": pl.String(),
    "in_stock": pl.Boolean(),
    "seller": pl.String(),
    "is_first_party": pl.Boolean(),
    "condition": pl.String(),
    "first_seen": UTC_DATETIME,
    "last_seen": UTC_DATETIME,
}

LISTING_KEY: tuple[str, ...] = ("retailer", "sku")
LISTING_KEY_SCHEMA: dict[str, pl.DataType] = {"retailer": pl.String(), "sku": pl.String()}

# Pairwise match decisions between two listings of different retailers.
MATCH_PAIR_SCHEMA: dict[str, pl.DataType] = {
    "left_retailer": pl.String(),
    "left_sku": pl.String(),
    "right_retailer": pl.String(),
    "right_sku": pl.String(),
    "probability": pl.Float64(),
}

# Every listing belongs to exactly one canonical product (singletons included).
PRODUCT_MATCH_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "canonical_id": pl.String(),
    "match_probability": pl.Float64(),  # confidence the listing belongs to its cluster
}

CANONICAL_PRODUCT_SCHEMA: dict[str, pl.DataType] = {
    "canonical_id": pl.String(),
    "title": pl.String(),
    "brand": pl.String(),
    "model_code": pl.String(),
    "category": pl.String(),
    "n_listings": pl.Int32(),
    "n_retailers": pl.Int32(),
}

# Daily close per listing: the last price observed that day.
PRICE_HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "day": pl.Date(),
    "price_list": pl.Int64(),
    "price_offer": pl.Int64(),
    "price_card": pl.Int64(),
    "in_stock": pl.Boolean(),
    "observations": pl.Int32(),
}

OPPORTUNITY_SCHEMA: dict[str, pl.DataType] = {
    "opportunity_id": pl.String(),  # stable hash of kind + canonical + buy listing
    "kind": pl.String(),  # spread / glitch
    "canonical_id": pl.String(),
    "product_name": pl.String(),
    "category": pl.String(),
    "buy_retailer": pl.String(),
    "buy_sku": pl.String(),
    "buy_url": pl.String(),
    "buy_price": pl.Int64(),
    "buy_price_type": pl.String(),  # offer / card
    "ref_retailer": pl.String(),  # null when the reference is the listing's own history
    "ref_sku": pl.String(),  # spreads: the reference listing (null for glitches)
    "ref_price": pl.Int64(),
    "margin_clp": pl.Int64(),
    "roi_pct": pl.Float64(),
    "confidence": pl.Float64(),
    "severity": pl.String(),  # glitches: low / medium / high; spreads: null
    "observed_at": UTC_DATETIME,
    "reason": pl.String(),  # one line of evidence a user can check
    "glitch_type": pl.String(),  # pack_size / digit_slip / currency / ... (glitches)
    "confirmation": pl.String(),  # high glitches: confirmed / pending (after a re-fetch)
    "review": pl.String(),  # spreads held for a person (weak identity, implausible gap): why
}

TIERS: dict[str, int] = {"critical": 30, "important": 6 * 60, "tracking": 24 * 60}

LISTING_TIER_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "volatility": pl.Float64(),
    "price_changes": pl.Int32(),
    "tier": pl.String(),
    "interval_minutes": pl.Int32(),
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast ``df`` to ``schema``; columns it lacks become nulls."""
    return df.select(
        [
            (
                pl.col(name).cast(dtype)
                if name in df.columns
                else pl.repeat(None, df.height, dtype=dtype)
            ).alias(name)
            for name, dtype in schema.items()
        ]
    )
