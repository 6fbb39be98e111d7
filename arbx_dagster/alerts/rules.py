"""Watch rules: the alerts users ask price trackers for, evaluated in bulk.

A rule is plain data (:class:`WatchRule`; a frame with ``WATCH_RULE_SCHEMA`` for the
warehouse; JSON for the API/CLI)::

    {"rule_id": "r1", "kind": "target_price", "target_price": 299990,
     "canonical_id": "c-123", "first_party_only": true}
    {"rule_id": "r2", "kind": "pct_drop", "pct": 20, "days": 7, "category": "televisores",
     "retailers": ["falabella", "paris"]}
    {"rule_id": "r3", "kind": "lowest_in_days", "days": 30, "sku": "881234567"}
    {"rule_id": "r4", "kind": "back_in_stock", "canonical_id": "c-123"}

Kinds (``price`` is the offer price, or the lower card price when ``include_card``):

* ``target_price``   — in stock at ``price <= target_price``;
* ``pct_drop``       — in stock at ``pct`` % or more below the highest close of the last
  ``days`` days (default 7);
* ``lowest_in_days`` — in stock below every close of the last ``days`` days (a new low);
* ``back_in_stock``  — in stock now, out of stock at the previous close.

Scope (all optional, combined with AND): ``canonical_id``, ``retailers``, ``sku``,
``category`` (case-insensitive, the leaf or any ``" > "`` level of the path),
``first_party_only``. A new rule must name at least one of product, SKU, retailers or
category (:meth:`WatchRule.check_scope`; ``alerts.store.save_watch_rule`` refuses
it otherwise, and a product that does not exist).

Hysteresis: a hit fires once per rule x listing; it re-arms only when the condition is false
by a margin (``REARM_BAND``: the price 2 % above the target, the drop 2 points short of
``pct``, the price 2 % above the previous low, out of stock again). A further drop of
``REFIRE_DROP`` (5 %) below the price that fired fires again. The dispatcher keeps that state
in the cache; this module only says, per rule x listing, ``hit`` and ``rearm``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import polars as pl

from arbx_dagster.domain.history import day_of, market_day

KINDS = ("target_price", "pct_drop", "lowest_in_days", "back_in_stock")
REARM_BAND = 0.02
REFIRE_DROP = 0.05
DEFAULT_DAYS = {"pct_drop": 7, "lowest_in_days": 30}

WATCH_RULE_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.String(),
    "owner": pl.String(),
    "kind": pl.String(),
    "canonical_id": pl.String(),
    "retailers": pl.List(pl.String()),
    "sku": pl.String(),
    "category": pl.String(),
    "first_party_only": pl.Boolean(),
    "include_card": pl.Boolean(),
    "target_price": pl.Int64(),
    "pct": pl.Float64(),
    "days": pl.Int32(),
    "enabled": pl.Boolean(),
}

WATCH_HIT_SCHEMA: dict[str, pl.DataType] = {
    "rule_id": pl.String(),
    "rule_kind": pl.String(),
    "owner": pl.String(),
    "retailer": pl.String(),
    "sku": pl.String(),
    "canonical_id": pl.String(),
    "name": pl.String(),
    "url": pl.String(),
    "price": pl.Int64(),
    "target_price": pl.Int64(),
    "reference_price": pl.Int64(),  # highest (pct_drop) / lowest (N-day low) of the window
    "drop_pct": pl.Float64(),
    "days": pl.Int32(),
    "hit": pl.Boolean(),
    "rearm": pl.Boolean(),
}


@dataclass(frozen=True)
class WatchRule:
    rule_id: str
    kind: str
    owner: str | None = None
    canonical_id: str | None = None
    retailers: tuple[str, ...] = ()
    sku: str | None = None
    category: str | None = None
    first_party_only: bool = False
    include_card: bool = False
    target_price: int | None = None
    pct: float | None = None
    days: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.rule_id:
            raise ValueError("a watch rule needs a rule_id")
        if self.kind not in KINDS:
            raise ValueError(f"rule {self.rule_id}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "target_price" and (self.target_price is None or self.target_price <= 0):
            raise ValueError(f"rule {self.rule_id}: target_price needs a positive target_price")
        if self.kind == "pct_drop" and not (self.pct is not None and 0 < self.pct < 100):
            raise ValueError(f"rule {self.rule_id}: pct_drop needs pct between 0 and 100")
        if self.days is not None and self.days < 1:
            raise ValueError(f"rule {self.rule_id}: days must be at least 1")

    def check_scope(self) -> None:
        """Raise ``ValueError`` unless the rule says what it watches."""
        if not (self.canonical_id or self.sku or self.retailers or self.category):
            raise ValueError(
                f"watch rule {self.rule_id} watches nothing: give a product, a SKU, a retailer "
                "or a category (--product, --sku, --retailer or --category; in JSON "
                "canonical_id, sku, retailers or category)"
            )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["retailers"] = list(self.retailers)
        return {k: v for k, v in data.items() if v not in (None, [], False) or k == "enabled"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchRule:
        known = {f for f in WATCH_RULE_SCHEMA}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown watch rule field(s) {unknown}; known: {sorted(known)}")
        values = dict(data)
        retailers = values.get("retailers") or ()
        if isinstance(retailers, str):
            retailers = retailers.split(",")
        values["retailers"] = tuple(r.strip().lower() for r in retailers if r.strip())
        for key in ("first_party_only", "include_card"):
            values[key] = bool(values.get(key) or False)
        values["enabled"] = bool(values.get("enabled", True) is not False)
        return cls(**values)


def rules_from_json(text: str) -> list[WatchRule]:
    """A JSON list of rules (or one rule object)."""
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    return [WatchRule.from_dict(item) for item in items]


def rules_to_json(rules: list[WatchRule]) -> str:
    return json.dumps([r.to_dict() for r in rules], ensure_ascii=False, indent=2)


def rules_frame(rules: list[WatchRule]) -> pl.DataFrame:
    """Rules as a frame (``WATCH_RULE_SCHEMA``), the form the warehouse stores."""
    rows = [{k: getattr(r, k) for k in WATCH_RULE_SCHEMA} for r in rules]
    for row in rows:
        row["retailers"] = list(row["retailers"])
    return pl.DataFrame(rows, schema=WATCH_RULE_SCHEMA)


def rules_from_frame(frame: pl.DataFrame) -> list[WatchRule]:
    return [
        WatchRule.from_dict({k: v for k, v in row.items() if v is not None})
        for row in frame.select([c for c in WATCH_RULE_SCHEMA if c in frame.columns]).iter_rows(
            named=True
        )
    ]


def _in_scope() -> pl.Expr:
    levels = pl.col("category").fill_null("").str.to_lowercase().str.split(" > ")
    wanted = pl.col("rule_category").str.to_lowercase()
    return (
        (
            pl.col("rule_canonical_id").is_null()
            | (pl.col("canonical_id") == pl.col("rule_canonical_id"))
        )
        & (pl.col("rule_sku").is_null() | (pl.col("sku") == pl.col("rule_sku")))
        & (
            (pl.col("rule_retailers").list.len().fill_null(0) == 0)
            | pl.col("rule_retailers").list.contains(pl.col("retailer"))
        )
        & (pl.col("rule_category").is_null() | levels.list.contains(wanted))
        & (~pl.col("first_party_only") | pl.col("is_first_party").fill_null(False))
    ).fill_null(False)


def _rule_price(offer: str, card: str) -> pl.Expr:
    """A rule's price of a listing: the offer, or the lower card price when the rule includes
    card prices (a price of 0 or less is not shown)."""
    shown_offer = pl.when(pl.col(offer) > 0).then(pl.col(offer))
    shown_card = pl.when(pl.col("include_card") & (pl.col(card) > 0)).then(pl.col(card))
    return pl.min_horizontal(shown_offer, shown_card)


def _enabled_rules(rules: list[WatchRule] | pl.DataFrame) -> pl.DataFrame:
    """The enabled rules as a frame (``WATCH_RULE_SCHEMA``)."""
    frame = rules if isinstance(rules, pl.DataFrame) else rules_frame(rules)
    return frame.filter(pl.col("enabled").fill_null(True))


def _current_listings(listings: pl.DataFrame, now: datetime) -> pl.LazyFrame:
    """Listings with every column scoping needs, and the day their price is of."""
    current = listings.lazy()
    if "canonical_id" not in listings.columns:
        current = current.with_columns(canonical_id=pl.lit(None, dtype=pl.String))
    if "is_first_party" not in listings.columns:
        current = current.with_columns(is_first_party=pl.lit(None, dtype=pl.Boolean))
    return current.with_columns(current_day=market_day(pl.col("last_seen")).fill_null(day_of(now)))


def _rule_listing_pairs(rules: pl.DataFrame, current: pl.LazyFrame) -> pl.LazyFrame:
    """Every (rule, listing in its scope), with the rule's ``price`` of the listing and a
    ``pair`` number; a rule's ``days`` defaults by kind."""
    renamed = (
        rules.with_columns(
            days=pl.coalesce(
                pl.col("days"),
                pl.col("kind").replace_strict(DEFAULT_DAYS, default=None, return_dtype=pl.Int32),
            )
        )
        .lazy()
        .select(
            "rule_id",
            "owner",
            "first_party_only",
            "include_card",
            "target_price",
            "pct",
            "days",
            rule_kind="kind",
            rule_canonical_id="canonical_id",
            rule_retailers="retailers",
            rule_sku="sku",
            rule_category="category",
        )
    )
    return (
        renamed.join(current, how="cross")
        .filter(_in_scope())
        .with_columns(price=_rule_price("price_offer", "price_card"), pair=pl.int_range(pl.len()))
    )


def _past_closes(pairs: pl.LazyFrame, history: pl.DataFrame) -> pl.LazyFrame:
    """History of each pair, from the closes before its current day: whether it was in stock
    at the previous close, and the highest and lowest price of the rule's window."""
    return (
        pairs.select("pair", "retailer", "sku", "current_day", "days", "include_card")
        .join(history.lazy(), on=["retailer", "sku"], how="inner")
        .filter(pl.col("day") < pl.col("current_day"))
        .with_columns(
            past_price=_rule_price("price_offer", "price_card"),
            in_window=pl.col("day") >= pl.col("current_day") - pl.duration(days=pl.col("days")),
        )
        .group_by("pair")
        .agg(
            previous_in_stock=pl.col("in_stock").sort_by("day").last(),
            high=pl.col("past_price").filter(pl.col("in_window")).max(),
            low=pl.col("past_price").filter(pl.col("in_window")).min(),
        )
    )


def _drop_pct() -> pl.Expr:
    """How far the price is below the window's high, in percent."""
    return 100 * (1 - pl.col("price") / pl.col("high"))


def _fires() -> pl.Expr:
    """Whether a pair's rule holds now (each kind's condition, in stock)."""
    in_stock = pl.col("in_stock").fill_null(False)
    price, kind = pl.col("price"), pl.col("rule_kind")
    return (
        pl.when(kind == "target_price")
        .then(in_stock & (price <= pl.col("target_price")))
        .when(kind == "pct_drop")
        .then(in_stock & (_drop_pct() >= pl.col("pct")))
        .when(kind == "lowest_in_days")
        .then(in_stock & (price < pl.col("low")))
        .otherwise(in_stock & (pl.col("previous_in_stock") == False))  # noqa: E712
    ).fill_null(False)


def _rearms() -> pl.Expr:
    """Whether a pair's rule is false by the ``REARM_BAND`` margin (or out of stock)."""
    in_stock = pl.col("in_stock").fill_null(False)
    price, kind = pl.col("price"), pl.col("rule_kind")
    clear = 1 + REARM_BAND
    return (
        pl.when(kind == "target_price")
        .then(~in_stock | (price > pl.col("target_price") * clear))
        .when(kind == "pct_drop")
        .then(~in_stock | (_drop_pct() < pl.col("pct") - 100 * REARM_BAND))
        .when(kind == "lowest_in_days")
        .then(~in_stock | (price > pl.col("low") * clear))
        .otherwise(~in_stock)
    ).fill_null(False)


def evaluate_watch_rules(
    rules: list[WatchRule] | pl.DataFrame,
    listings: pl.DataFrame,
    history: pl.DataFrame,
    now: datetime,
) -> pl.DataFrame:
    """Every (rule, listing in scope) whose rule fires (``hit``) or re-arms (``rearm``).

    ``listings``: current listings (``retailer, sku, name, category, url, price_offer,
    price_card, in_stock, is_first_party, last_seen`` and ``canonical_id`` when matched);
    ``history``: ``PRICE_HISTORY_SCHEMA`` closes (the window is the days before each
    listing's current day). Vectorised: rules x listings are filtered by scope in one join.
    """
    enabled = _enabled_rules(rules)
    if enabled.is_empty() or listings.is_empty():
        return pl.DataFrame(schema=WATCH_HIT_SCHEMA)
    pairs = _rule_listing_pairs(enabled, _current_listings(listings, now))
    kind = pl.col("rule_kind")
    hits = (
        pairs.join(_past_closes(pairs, history), on="pair", how="left")
        .with_columns(
            hit=_fires(),
            rearm=_rearms(),
            drop_pct=_drop_pct(),
            reference_price=pl.when(kind == "pct_drop")
            .then(pl.col("high"))
            .when(kind == "lowest_in_days")
            .then(pl.col("low")),
        )
        .filter(pl.col("hit") | pl.col("rearm"))
        .collect()
    )
    return hits.select(
        [
            (pl.col(c) if c in hits.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in WATCH_HIT_SCHEMA.items()
        ]
    ).sort("rule_id", "retailer", "sku")


__all__ = [
    "KINDS",
    "WATCH_HIT_SCHEMA",
    "WATCH_RULE_SCHEMA",
    "WatchRule",
    "evaluate_watch_rules",
    "rules_frame",
    "rules_from_frame",
    "rules_from_json",
    "rules_to_json",
]
