"""From extracted values to ``RAW_PRICE_SCHEMA`` rows, one vectorised path for every connector.

Connectors only extract text (per JSON/HTML item, or whole CSV/JSONL/Parquet columns); the
typing rules live here once: price strings (read in the source's currency, integer minor
units: whole CLP, USD cents; ``ingestion/prices.py``), stock flags, conditions, first-party
sellers. Two promises hold for every row:

* a price that is shown but unreadable nulls *all three* prices of the row and says why in
  ``parse_error`` (so the validator quarantines it; a row is never half-priced), and so
  does a row whose own ``currency`` is not the source's (its prices were read by the wrong
  rules);
* nothing is dropped: a malformed item is still a row, with ``source_location`` saying where
  it came from (``url#item-3``, ``file.csv:17``).

The three prices stay separate: a card-only price is never copied into the offer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from arbx_dagster.domain.money import currency as currency_of
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.ingestion.prices import price_error_expr, price_expr
from arbx_dagster.ingestion.source_types import MAPPABLE_FIELDS
from arbx_dagster.ingestion.sources import FirstParty
from arbx_dagster.ingestion.stats import FetchStats

UTC_DATETIME = RAW_PRICE_SCHEMA["observed_at"]
PRICE_FIELDS = ("price_list", "price_offer", "price_card")

# What a connector hands the pipeline: raw prices plus where each row came from and, for a
# row the parser could not read, why (the validator quarantines it with its location).
BATCH_SCHEMA: dict[str, pl.DataType] = {
    **RAW_PRICE_SCHEMA,
    "source_location": pl.String(),
    "parse_error": pl.String(),
}
TEXT_INPUTS: tuple[str, ...] = (
    *MAPPABLE_FIELDS,
    "retailer",
    "observed_at",
    "listing_rank",
    "fetch_status",
    "payload_sha256",
    "source_location",
    "parse_error",
)

_IN_STOCK = (
    "true", "1", "yes", "si", "sí", "instock", "in_stock", "in stock", "available",
    "disponible", "limitedavailability", "onlineonly", "instoreonly", "presale", "preorder",
)  # fmt: skip
_OUT_OF_STOCK = (
    "false", "0", "no", "outofstock", "out_of_stock", "out of stock", "soldout", "sold out",
    "agotado", "sin stock", "unavailable", "no disponible", "discontinued",
)  # fmt: skip
_CONDITIONS = {
    "new": "new", "nuevo": "new", "newcondition": "new",
    "refurbished": "refurbished", "reacondicionado": "refurbished", "renewed": "refurbished",
    "refurbishedcondition": "refurbished", "used": "used", "usado": "used",
    "usedcondition": "used", "damagedcondition": "used", "open box": "used",
    "caja abierta": "used",
}  # fmt: skip
_CURRENCIES = {"$": "CLP", "CLP$": "CLP", "PESO": "CLP", "PESOS": "CLP"}


@dataclass(frozen=True)
class RecordContext:
    """What every row of a batch shares: who produced it, when, and the store's rules."""

    source: str
    observed_at: datetime
    retailer: str | None = None
    currency: str = "CLP"
    card_program: str | None = None
    first_party: FirstParty = field(default_factory=FirstParty)
    payload_sha256: str | None = None
    constants: Mapping[str, str] = field(default_factory=dict)  # fill-ins for absent fields


def to_text(field: str, value: Any) -> str | None:
    """One extracted value as text, the way the vectorised parsers expect it."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, dict):
        for key in ("name", "value", "@id", "url"):
            if key in value:
                return to_text(field, value[key])
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, list | tuple):
        parts = [p for p in (to_text(field, v) for v in value) if p]
        if not parts:
            return None
        if field == "category":
            return " > ".join(parts)
        if field == "image_urls":  # a gallery: every image, as the JSON array stored
            return json.dumps(parts, ensure_ascii=False)
        if field in PRICE_FIELDS:  # one price in a list is fine; several is ambiguous
            return parts[0] if len(parts) == 1 else " / ".join(parts)
        return parts[0]
    return str(value)


def items_frame(items: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Extracted item dicts (any values) -> a String frame for :func:`normalize`."""
    rows = [{k: to_text(k, v) for k, v in item.items() if k in TEXT_INPUTS} for item in items]
    return pl.DataFrame(rows, schema=dict.fromkeys(TEXT_INPUTS, pl.String()))


def normalize(raw: pl.DataFrame, context: RecordContext) -> pl.DataFrame:
    """Type and clean extracted columns into ``BATCH_SCHEMA`` (vectorised; see module doc)."""
    text = _as_text(raw)
    observed = _observed_at(text, raw, context)
    frame = text.lazy()
    if context.constants:
        frame = frame.with_columns(
            pl.col(name).fill_null(pl.lit(value)) for name, value in context.constants.items()
        )
    money = context.currency
    frame = frame.with_columns(
        # a price text with digits that reads as no price (1e23: beyond any price) is bad too
        **{
            f"_{c}_bad": price_error_expr(pl.col(c), money)
            | (pl.col(c).str.contains(r"\d") & price_expr(pl.col(c), money).is_null())
            for c in PRICE_FIELDS
        },
        **{f"_{c}": price_expr(pl.col(c), money) for c in PRICE_FIELDS},
        currency=_currency_expr(pl.col("currency"), money),
    )
    # prices are read by the source's currency: a row in another one cannot be priced
    other_currency = pl.col("currency") != money
    # a row the reader already found broken (cut, bad JSON) is never priced either
    any_bad = pl.any_horizontal(
        [pl.col(f"_{c}_bad") for c in PRICE_FIELDS]
        + [pl.col("parse_error").is_not_null(), other_currency]
    )
    price_error = pl.coalesce(
        [
            pl.when(pl.col(f"_{c}_bad")).then(pl.format(_unreadable(c, money), pl.col(c)))
            for c in PRICE_FIELDS
        ]
        + [
            pl.when(other_currency).then(
                pl.format(f"currency '{{}}' is not the source's ({money})", pl.col("currency"))
            )
        ]
    )
    frame = frame.with_columns(
        **{c: pl.when(any_bad).then(None).otherwise(pl.col(f"_{c}")) for c in PRICE_FIELDS},
        observed_at=observed,
        parse_error=pl.coalesce(
            pl.col("parse_error"),
            price_error,
            pl.when(observed.is_null() & pl.col("observed_at").is_not_null()).then(
                pl.format("unparsable observed_at: '{}'", pl.col("observed_at"))
            ),
        ),
    )
    stock_qty = _int_expr(pl.col("stock_qty"))
    frame = frame.with_columns(
        retailer=pl.col("retailer").str.to_lowercase().fill_null(pl.lit(context.retailer)),
        stock_qty=stock_qty.cast(pl.Int32, strict=False),
        in_stock=pl.coalesce(_bool_expr(pl.col("in_stock")), stock_qty > 0),
        condition=_condition_expr(pl.col("condition")),
        image_urls=image_urls_expr(pl.col("image_urls")),
        listing_rank=pl.col("listing_rank").cast(pl.Int32, strict=False),
        fetch_status=pl.col("fetch_status").fill_null("ok"),
        payload_sha256=pl.col("payload_sha256").fill_null(pl.lit(context.payload_sha256)),
        source=pl.lit(context.source),
    )
    frame = frame.with_columns(
        card_program=pl.col("card_program").fill_null(
            pl.when(pl.col("price_card").is_not_null()).then(pl.lit(context.card_program))
        ),
        is_first_party=_first_party_expr(context.first_party),
    )
    if context.first_party.default_seller:
        frame = frame.with_columns(
            seller=pl.when(pl.col("is_first_party").fill_null(False))
            .then(pl.col("seller").fill_null(pl.lit(context.first_party.default_seller)))
            .otherwise(pl.col("seller"))
        )
    return conform(frame.collect(), BATCH_SCHEMA)


def missing_frame(
    listings: Iterable[Mapping[str, str | None]], context: RecordContext, location: str
) -> pl.DataFrame:
    """Listings that should have been seen and were not: ``fetch_status = 'missing'``,
    no prices (a listing that disappeared is never priced, and never a price drop)."""
    rows = [
        {**{k: v for k, v in known.items() if k in TEXT_INPUTS}, "fetch_status": "missing"}
        for known in listings
    ]
    frame = items_frame(rows).with_columns(source_location=pl.lit(location))
    return normalize(frame, context).with_columns(
        [pl.lit(None, dtype=pl.Int64).alias(c) for c in PRICE_FIELDS]
        + [pl.lit(None, dtype=pl.Boolean).alias("in_stock")]
    )


def unparsable() -> pl.Expr:
    """Rows the parser could not read (a layout change shows up as many of these). A row
    that shows no price is not one: stores list unpriced products (see :func:`unpriced`)."""
    return pl.col("parse_error").is_not_null() | pl.col("sku").is_null() | pl.col("name").is_null()


def unpriced() -> pl.Expr:
    """Readable rows of a successful fetch without any price (quarantined as such)."""
    no_price = pl.all_horizontal([pl.col(c).is_null() for c in PRICE_FIELDS])
    return ~unparsable() & (pl.col("fetch_status") == "ok") & no_price


def count_items(frame: pl.DataFrame, stats: FetchStats) -> None:
    """Add a parsed frame's items, unreadable rows and unpriced rows to ``stats``."""
    if frame.is_empty():
        return
    bad, none = frame.select(bad=unparsable().sum(), none=unpriced().sum()).row(0)
    stats.items_unparsable += int(bad)
    stats.items_unpriced += int(none)


def empty_batch_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=BATCH_SCHEMA)


# --- expressions ----------------------------------------------------------------------


def _as_text(raw: pl.DataFrame) -> pl.DataFrame:
    """Every known input column as stripped text (typed file columns included); absent ones
    null. A typed ``observed_at`` (Parquet) stays a datetime, in UTC (naive means UTC)."""
    columns = []
    for name in TEXT_INPUTS:
        if name not in raw.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(name))
            continue
        dtype, col = raw.schema[name], pl.col(name)
        if name == "observed_at" and isinstance(dtype, pl.Datetime):
            aware = (
                col.dt.replace_time_zone("UTC")
                if dtype.time_zone is None
                else col.dt.convert_time_zone("UTC")
            )
            columns.append(aware.cast(UTC_DATETIME))
            continue
        if isinstance(dtype, pl.List):  # Parquet lists: a category path, an image gallery
            col = col.cast(pl.List(pl.String)).list.join(" > " if name == "category" else " ")
        if dtype.is_float():  # 449990.0 -> "449990"; 12.5 stays "12.5" (not CLP; USD 12.50)
            whole = col.cast(pl.Int64, strict=False).cast(pl.String)
            col = pl.when(col == col.round()).then(whole).otherwise(col.cast(pl.String))
        if dtype == pl.Boolean:
            col = pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
        text = col.cast(pl.String).str.strip_chars()
        columns.append(pl.when(text != "").then(text).alias(name))
    return raw.select(columns)


_DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f")


def _observed_at(frame: pl.DataFrame, raw: pl.DataFrame, context: RecordContext) -> pl.Expr:
    """ISO text (``Z``, offsets, or naive = UTC) -> UTC. No column (or an empty one) -> the
    fetch time; a blank cell in a filled column stays null (the validator rejects it)."""
    given = raw.get_column("observed_at") if "observed_at" in raw.columns else None
    if given is None or given.null_count() == raw.height:
        return pl.lit(context.observed_at.astimezone(UTC)).cast(UTC_DATETIME)
    if isinstance(frame.schema["observed_at"], pl.Datetime):
        return pl.col("observed_at")
    text = (
        pl.col("observed_at")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"(?i)z$", "+00:00")
    )
    return pl.coalesce(
        [
            text.str.to_datetime(format=fmt, strict=False, time_zone="UTC").cast(UTC_DATETIME)
            for fmt in _DATETIME_FORMATS
        ]
    )


def image_urls_expr(col: pl.Expr) -> pl.Expr:
    """Image links as one JSON array text (main image first, no repeats).

    Accepts what sources hold: a JSON array text (``["a.jpg", "b.jpg"]``) or bare links
    separated by whitespace or ``|`` (CSV exports). Commas are not separators: image CDNs
    put them inside URLs (``w=800,h=800``).
    """
    as_json = col.str.extract_all(r'"(?:[^"\\]|\\.)*"').list.eval(
        pl.element().str.slice(1, pl.element().str.len_chars() - 2)
    )  # still JSON-escaped, as the array text they go back into
    bare = col.str.extract_all(r"[^\s|]+").list.eval(
        pl.element()
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
    )
    links = (
        pl.when(col.str.starts_with("["))
        .then(as_json)
        .otherwise(bare)
        .list.eval(pl.element().filter(pl.element().str.strip_chars() != ""))
        .list.unique(maintain_order=True)
    )
    return pl.when(links.list.len() > 0).then(
        pl.concat_str([pl.lit('["'), links.list.join('","'), pl.lit('"]')])
    )


def _unreadable(field: str, money: str) -> str:
    """The ``pl.format`` template of an unreadable price: the text, and the currency it was
    read in (``'58.45'`` is no CLP amount: pesos have no cents)."""
    return f"unparsable {field}: '{{}}' (not a {money} amount)"


def _currency_expr(col: pl.Expr, money: str) -> pl.Expr:
    """The row's currency, the source's when the row does not say; a sign the source's
    currency prints (``$`` for a USD source) means that currency."""
    aliases = (
        _CURRENCIES
        if money == "CLP"
        else {sign.upper(): money for sign in currency_of(money).symbols}
    )
    return col.str.to_uppercase().replace(aliases).fill_null(pl.lit(money))


def _bool_expr(col: pl.Expr) -> pl.Expr:
    text = col.str.to_lowercase().str.replace(r"^https?://schema\.org/", "").str.strip_chars()
    return (
        pl.when(text.is_in(_IN_STOCK))
        .then(pl.lit(True))
        .when(text.is_in(_OUT_OF_STOCK))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def _int_expr(col: pl.Expr) -> pl.Expr:
    """``12``, ``"Quedan 12 unidades"``, ``"1.234"`` -> int; several numbers -> null."""
    digits = col.str.replace_all(r"(\d)\.(\d{3})", "${1}${2}").str.extract_all(r"\d+")
    return pl.when(digits.list.len() == 1).then(digits.list.first().cast(pl.Int64, strict=False))


def _condition_expr(col: pl.Expr) -> pl.Expr:
    text = col.str.to_lowercase().str.replace(r"^https?://schema\.org/", "").str.strip_chars()
    return text.replace(_CONDITIONS)


def _first_party_expr(rule: FirstParty) -> pl.Expr:
    """Explicit flag, else the marketplace SKU prefix, else seller id, else seller name."""
    candidates: list[pl.Expr] = [_bool_expr(pl.col("is_first_party"))]
    if rule.marketplace_sku_prefixes:
        marketplace = pl.any_horizontal(
            [pl.col("sku").str.starts_with(p) for p in rule.marketplace_sku_prefixes]
        )
        candidates.append(pl.when(pl.col("sku").is_not_null()).then(~marketplace))
    if rule.seller_ids:
        ids = [s.lower() for s in rule.seller_ids]
        candidates.append(
            pl.when(pl.col("seller_id").is_not_null()).then(
                pl.col("seller_id").str.to_lowercase().is_in(ids)
            )
        )
    if rule.seller_names:
        names = [s.lower() for s in rule.seller_names]
        candidates.append(
            pl.when(pl.col("seller").is_not_null()).then(
                pl.col("seller").str.to_lowercase().is_in(names)
            )
        )
    return pl.coalesce(candidates)
