"""Stage 3: the match model, and canonical products across retailers.

``refresh_matches`` matches the whole catalogue (``mode="full"``) or, with
``mode="auto"``, only what changed since the last match (``incremental.py``) — unless
there is no match to start from, the model changed since the last full match, that match
is older than ``FULL_MATCH_EVERY``, more than ``MAX_CHANGED_SHARE`` of the listings changed,
or the catalogue is matched in shards: then in full.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.matching import MatchResult, TrainedPairModel, match_by_block
from arbx_dagster.domain.matching.engine import default_workers
from arbx_dagster.domain.matching.incremental import POOL_COLUMNS, match_changes
from arbx_dagster.domain.matching.shipped import pipeline_model
from arbx_dagster.domain.schema import LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.match_state import (
    StoredMatchState,
    last_full_match,
    last_match_at,
    log_match_run,
    write_full_state,
    write_incremental,
)
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.warehouse import Warehouse

FULL_MATCH_EVERY = timedelta(hours=26)  # the daily full match, with room for a late one
MAX_CHANGED_SHARE = 0.2  # beyond this, matching everything again costs little more
MATCH_MODES = ("auto", "full")


def read_listings(warehouse: Warehouse) -> pl.DataFrame:
    return conform(warehouse.query("SELECT * FROM listings"), LISTING_SCHEMA)


# What an incremental match reads of every listing: what finds a changed one's candidates;
# the rest only for the listings it matches again (the changed ones are found in the
# database, see ``StoredMatchState.changed``).
_POOL_READ: dict[str, pl.DataType] = {c: LISTING_SCHEMA[c] for c in POOL_COLUMNS}


def _pool_columns_read(warehouse: Warehouse) -> pl.DataFrame:
    return conform(warehouse.query(f"SELECT {', '.join(_POOL_READ)} FROM listings"), _POOL_READ)


def _listing_rows(warehouse: Warehouse, keys: pl.DataFrame) -> pl.DataFrame:
    listings = warehouse.keyed_rows_sql("listings", "{staged}", ["retailer", "sku"])
    rows = warehouse.query_with(f"SELECT * FROM {listings} AS l", keys.select("retailer", "sku"))
    return conform(rows, LISTING_SCHEMA)


def train_match_model(warehouse: Warehouse) -> TrainedPairModel:
    """The shipped match model, adapted to the pairs users confirmed or rejected."""
    return pipeline_model(labels=read_labels(warehouse), listings=read_listings(warehouse))


def refresh_matches(
    warehouse: Warehouse,
    *,
    now: datetime,
    scorer: TrainedPairModel | None = None,
    workers: int | None = None,
    shard: tuple[int, int] | None = None,
    mode: str = "full",
) -> StageReport:
    """Match the current listings: in full, or only what changed (``mode="auto"``, see the
    module docstring). The report's ``mode`` says which ran, and why a full match ran."""
    if mode not in MATCH_MODES:
        raise ValueError(f"mode must be one of {MATCH_MODES}, not {mode!r}")
    why = "asked for" if mode == "full" else _why_full(warehouse, scorer, now, shard)
    if why is None:
        report = _refresh_incrementally(warehouse, now=now, scorer=scorer)
        if report is not None:
            return report
        why = f"more than {MAX_CHANGED_SHARE:.0%} of the listings changed"
    return _refresh_fully(warehouse, now=now, scorer=scorer, workers=workers, shard=shard, why=why)


def _why_full(
    warehouse: Warehouse,
    scorer: TrainedPairModel | None,
    now: datetime,
    shard: tuple[int, int] | None,
) -> str | None:
    """Why this run must match everything, or None when an incremental match will do."""
    if shard is not None:
        return "matched in shards"
    last = last_full_match(warehouse)
    if last is None:
        return "no full match yet"
    if last["scorer"] != _scorer_name(scorer):
        return f"the model changed ({last['scorer']} -> {_scorer_name(scorer)})"
    if now - last["matched_at"] > FULL_MATCH_EVERY:
        return f"the last full match is older than {FULL_MATCH_EVERY}"
    return None


def _scorer_name(scorer: TrainedPairModel | None) -> str:
    return str(getattr(scorer, "version", "rules"))


def _refresh_incrementally(
    warehouse: Warehouse, *, now: datetime, scorer: TrainedPairModel | None
) -> StageReport | None:
    """Match only what changed; None (nothing written) when too much changed for that."""
    started = time.perf_counter()
    listings = _pool_columns_read(warehouse)
    state = StoredMatchState(warehouse, now)
    changed = state.changed(listings)
    if changed.height > MAX_CHANGED_SHARE * max(listings.height, 1):
        return None
    decisions = read_labels(warehouse)
    since = last_match_at(warehouse)
    fresh_labels = decisions if since is None else decisions.filter(pl.col("labelled_at") > since)
    change = match_changes(
        listings,
        state,
        scorer=scorer,
        decisions=decisions,
        also=_labelled_listings(fresh_labels),
        changed=changed,
        rows_of=lambda keys: _listing_rows(warehouse, keys),
    )
    write_incremental(warehouse, change, now)
    seconds = time.perf_counter() - started
    stats = change.stats
    log_match_run(
        warehouse,
        matched_at=now,
        mode="incremental",
        scorer=_scorer_name(scorer),
        listings=listings.height,
        changed=int(stats["seeds"]),
        touched_products=len(change.touched),
        seconds=seconds,
    )
    return StageReport(
        rows=change.product_matches.height,
        counts={
            "mode": "incremental",
            "listings": listings.height,
            "changed_listings": int(stats["seeds"]),
            "delisted": int(stats["delisted"]),
            "rematched_listings": int(stats["neighbourhood"]),
            "touched_products": len(change.touched),
            "candidate_pairs": int(stats["candidates"]),
            "scorer": _scorer_name(scorer),
            "seconds_neighbourhood": round(stats["seconds_neighbourhood"], 3),
            "seconds_match": round(stats["seconds_match"], 3),
            "seconds_total": round(seconds, 3),
        },
        preview=change.canonical_products.sort("n_retailers", "n_listings", descending=True).head(
            10
        ),
    )


def _labelled_listings(labels: pl.DataFrame) -> pl.DataFrame:
    """Both listings of each labelled pair, as ``retailer, sku`` keys."""
    return pl.concat(
        [
            labels.select(retailer=f"{side}_retailer", sku=f"{side}_sku")
            for side in ("left", "right")
        ]
    ).unique()


def _refresh_fully(
    warehouse: Warehouse,
    *,
    now: datetime,
    scorer: TrainedPairModel | None,
    workers: int | None,
    shard: tuple[int, int] | None,
    why: str,
) -> StageReport:
    """Re-match the current listings and replace the derived match tables atomically;
    canonical ids carry over from the previous run when a product's members mostly stay.
    Pairs people labelled are settled: matched when confirmed, never when rejected.

    ``shard=(index, count)`` re-matches only the match blocks of that shard (a Dagster
    partition of ``product_matches``) and replaces only their listings' rows, so shards
    can run on different workers; without it every block is matched and the tables are
    replaced whole.
    """
    started = time.perf_counter()
    listings = read_listings(warehouse)
    previous = warehouse.query(
        "SELECT retailer, sku, canonical_id, match_probability FROM product_matches"
    )
    workers = default_workers() if workers is None else workers
    decisions = read_labels(warehouse)
    result = match_by_block(
        listings, scorer=scorer, workers=workers, shard=shard, decisions=decisions
    )
    result = result.carry_over(previous)
    stamp = pl.lit(now).cast(UTC_DATETIME)
    matches = result.product_matches.with_columns(matched_at=stamp)
    pairs = result.pairs.with_columns(matched_at=stamp)
    products = result.canonical_products.with_columns(updated_at=stamp)
    with warehouse.transaction():
        if shard is None:
            warehouse.replace("product_matches", matches)
            warehouse.replace("match_pairs", pairs)
            warehouse.replace("canonical_products", products)
            write_full_state(warehouse, listings, result.blocks)
        else:
            _replace_shard(warehouse, matches, pairs, products)
        log_match_run(
            warehouse,
            matched_at=now,
            mode="full" if shard is None else "shard",
            scorer=_scorer_name(scorer),
            listings=listings.height,
            changed=listings.height,
            touched_products=products.height,
            seconds=time.perf_counter() - started,
        )
    return StageReport(
        rows=matches.height,
        counts={
            "mode": "full",
            "why_full": why,
            "listings": listings.height,
            "shard": "all" if shard is None else f"{shard[0]} of {shard[1]}",
            "scorer": _scorer_name(scorer),
            "match_workers": workers,
            **_full_match_counts(result),
        },
        preview=result.canonical_products.sort("n_retailers", "n_listings", descending=True).head(
            10
        ),
    )


def _full_match_counts(result: MatchResult) -> dict[str, object]:
    """What a full match's metadata shows of its result."""
    by_retailers = dict(
        result.canonical_products.group_by("n_retailers").len().sort("n_retailers").iter_rows()
    )
    return {
        "listings_matched": result.product_matches.height,
        "threshold": float(result.stats.get("threshold", 0.0)),
        "candidate_pairs": int(result.stats.get("candidates", 0)),
        "match_blocks": int(result.stats.get("blocks", 0)),
        **{
            f"seconds_{stage}": round(float(result.stats.get(f"seconds_{key}", 0.0)), 3)
            for stage, key in (
                ("blocking", "blocking"),
                ("scoring", "scoring"),
                ("assignment", "clustering"),
            )
        },
        "matched_pairs": result.pairs.height,
        "canonical_products": result.canonical_products.height,
        "products_by_retailer_count": {str(k): v for k, v in by_retailers.items()},
        "mean_pair_probability": float(result.pairs["probability"].mean() or 0.0),
    }


def _replace_shard(
    warehouse: Warehouse, matches: pl.DataFrame, pairs: pl.DataFrame, products: pl.DataFrame
) -> None:
    """Swap one shard's listings' match rows (inside the caller's transaction). A listing
    that moved here from another shard loses its old rows now; rows of delisted listings
    and products left without members are dropped on the way."""
    keys = matches.select("retailer", "sku")
    warehouse.delete_keys("product_matches", keys)
    for side in ("left", "right"):
        warehouse.delete_keys(
            "match_pairs", keys.rename({"retailer": f"{side}_retailer", "sku": f"{side}_sku"})
        )
    warehouse.insert("product_matches", matches)
    warehouse.insert("match_pairs", pairs)
    warehouse.upsert("canonical_products", products, ["canonical_id"])
    warehouse.execute(
        "DELETE FROM product_matches AS m WHERE NOT EXISTS "
        "(SELECT 1 FROM listings AS l WHERE l.retailer = m.retailer AND l.sku = m.sku)"
    )
    warehouse.execute(
        "DELETE FROM canonical_products AS c WHERE NOT EXISTS "
        "(SELECT 1 FROM product_matches AS m WHERE m.canonical_id = c.canonical_id)"
    )
