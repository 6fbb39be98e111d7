"""Row-level validation of incoming price observations.

Bad rows are never dropped: each goes to quarantine with the first reason it failed and
where it came from, so a fixed parser can replay them. The same observation delivered
twice (an archived day replayed over itself, a page re-read) is one observation, not bad
input: it is collapsed and counted, so ``fetched == accepted + quarantined + repeated``
always holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.money import DEFAULT_CURRENCY, max_plausible_price
from arbx_dagster.domain.schema import QUARANTINE_SCHEMA, RAW_PRICE_KEY, RAW_PRICE_SCHEMA, conform

# An offer far above the crossed-out list price is a parsing error, not a discount.
MAX_OFFER_OVER_LIST = 1.5

PRICE_COLUMNS = ("price_list", "price_offer", "price_card")
# Columns connectors may add beside the record: where it came from and why it failed to parse.
_CONTEXT: dict[str, pl.DataType] = {"source_location": pl.String(), "parse_error": pl.String()}
REQUIRED_TEXT = ("retailer", "sku", "name")


@dataclass(frozen=True)
class ValidationResult:
    accepted: pl.DataFrame  # RAW_PRICE_SCHEMA
    quarantined: pl.DataFrame  # QUARANTINE_SCHEMA
    repeated: int = 0  # identical copies of an accepted observation, collapsed

    @property
    def reasons(self) -> dict[str, int]:
        counts = self.quarantined.group_by("reason").len().sort("len", descending=True)
        return dict(counts.iter_rows())


# A readable row that shows no price: quarantined (nothing to store), but not a data problem
# (stores list products without a price), so quarantine *rates* leave it out.
NO_PRICE = "no price on a successful fetch"


def _first_failure(now: datetime, currency: str) -> pl.Expr:
    """The reason a row is rejected, or null when it is fine; first rule wins. Prices are in
    ``currency`` (the market's), and above its plausible ceiling they are parsing errors,
    not real consumer prices (``domain/money.py``)."""
    prices = [pl.col(c) for c in PRICE_COLUMNS]
    priced = pl.col("fetch_status") == "ok"
    rules: list[tuple[pl.Expr, str | pl.Expr]] = [
        (pl.col("parse_error").is_not_null(), pl.col("parse_error")),
        *(
            (pl.col(c).is_null() | (pl.col(c).str.strip_chars() == ""), f"missing {c}")
            for c in REQUIRED_TEXT
            if c != "name"
        ),
        # A listing reported missing has no title to show; a priced one must have one.
        (
            priced & (pl.col("name").is_null() | (pl.col("name").str.strip_chars() == "")),
            "missing name",
        ),
        (
            ~pl.col("fetch_status").is_in(["ok", "missing"]).fill_null(False),
            "unknown fetch_status (expected ok or missing)",
        ),
        (
            ~priced & pl.any_horizontal([p.is_not_null() for p in prices]),
            "price on a listing reported missing",
        ),
        (pl.col("observed_at").is_null(), "missing observed_at"),
        (pl.col("observed_at") > pl.lit(now + timedelta(hours=1)), "observed_at in the future"),
        (
            pl.col("currency").is_null() | (pl.col("currency").str.to_uppercase() != currency),
            f"unsupported currency (expected {currency})",
        ),
        (pl.any_horizontal([p <= 0 for p in prices]), "non-positive price"),
        (
            pl.any_horizontal([p > max_plausible_price(currency) for p in prices]),
            "implausible price",
        ),
        (
            priced & pl.all_horizontal([p.is_null() for p in prices]),
            NO_PRICE,
        ),
        (
            pl.col("price_offer") > pl.col("price_list") * MAX_OFFER_OVER_LIST,
            "offer price far above list price",
        ),
    ]
    expr = pl.lit(None, dtype=pl.String)
    for condition, reason in reversed(rules):
        text = pl.lit(reason) if isinstance(reason, str) else reason
        expr = pl.when(condition.fill_null(False)).then(text).otherwise(expr)
    return expr


def _duplicate_of_a_later_row() -> pl.Expr:
    """Among otherwise valid rows, a repeated natural key keeps its last occurrence; the
    reason says whether the earlier row said the same (an exact duplicate) or not."""
    key = pl.struct(list(RAW_PRICE_KEY))
    is_valid = pl.col("_reason").is_null()
    superseded = is_valid & ~key.is_last_distinct().over(is_valid)
    values = pl.struct(list(RAW_PRICE_SCHEMA)).hash()
    same_as_kept = values == values.last().over(key, is_valid)
    return (
        pl.when(superseded & same_as_kept)
        .then(pl.lit("exact duplicate (the same row appears again later)"))
        .when(superseded)
        .then(pl.lit("conflicting duplicate (a later row has the same key, other values)"))
        .otherwise(pl.col("_reason"))
    )


def validate_observations(
    observations: pl.DataFrame,
    *,
    now: datetime,
    source_location: str = "row",
    currency: str = DEFAULT_CURRENCY,
) -> ValidationResult:
    """Split observations into accepted rows and quarantined rows (with reasons).

    ``source_location`` prefixes the row number when the frame has no
    ``source_location`` column of its own (connectors that know file:line provide one).
    ``currency`` is the market's: rows in any other currency are quarantined.
    """
    located = "source_location" in observations.columns
    frame = observations.with_row_index("_row")
    if not located:
        frame = frame.with_columns(
            source_location=pl.format(f"{source_location}:{{}}", pl.col("_row"))
        )
    typed = conform(frame, {**RAW_PRICE_SCHEMA, **_CONTEXT})
    # The same row from the same place (a replayed payload) is one observation.
    identity = [*RAW_PRICE_SCHEMA, "parse_error", *(["source_location"] if located else [])]
    distinct = typed.unique(subset=identity, keep="last", maintain_order=True)
    typed = distinct.with_columns(_reason=_first_failure(now, currency)).with_columns(
        _reason=_duplicate_of_a_later_row()
    )
    accepted = conform(typed.filter(pl.col("_reason").is_null()), RAW_PRICE_SCHEMA)
    rejected = typed.filter(pl.col("_reason").is_not_null())
    raw_json = pl.struct(list(RAW_PRICE_SCHEMA)).struct.json_encode()
    quarantined = rejected.select(
        record_hash=pl.concat_str(
            [pl.col("source_location"), _hashed_record()], separator="|"
        ).map_batches(_sha256, return_dtype=pl.String),
        retailer=pl.col("retailer"),
        source=pl.col("source").fill_null("unknown"),
        source_location=pl.col("source_location"),
        reason=pl.col("_reason"),
        raw_record=raw_json,
        quarantined_at=pl.lit(now).cast(QUARANTINE_SCHEMA["quarantined_at"]),
    )
    return ValidationResult(
        accepted=accepted,
        quarantined=conform(quarantined, QUARANTINE_SCHEMA),
        repeated=observations.height - distinct.height,
    )


def _hashed_record() -> pl.Expr:
    """The record as its quarantine key hashes it: in the shape rows had before galleries
    (one ``image_url``, the main image), so a day quarantined then and re-ingested now
    keeps its keys and is replaced, not duplicated."""
    main_image = pl.col("image_urls").str.extract(r'^\["((?:[^"\\]|\\.)*)"')
    fields = [
        main_image.alias("image_url") if name == "image_urls" else pl.col(name)
        for name in RAW_PRICE_SCHEMA
    ]
    return pl.struct(fields).struct.json_encode()


def _sha256(texts: pl.Series) -> pl.Series:
    import hashlib

    return pl.Series(
        [hashlib.sha256(t.encode()).hexdigest() for t in texts.to_list()], dtype=pl.String
    )
