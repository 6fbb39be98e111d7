"""Read models behind ``/api/products/{id}`` and ``/api/metrics`` (plain SQL, both engines)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arbx_dagster.storage.event_log import jsonable
from arbx_dagster.storage.warehouse import Warehouse

# A match pair's public id: the same 16 hex digits on DuckDB and PostgreSQL.
PAIR_ID_SQL = (
    "substr(md5(p.left_retailer || '|' || p.left_sku || '|' || p.right_retailer || '|' "
    "|| p.right_sku), 1, 16)"
)


def product_detail(warehouse: Warehouse, canonical_id: str, days: int) -> dict[str, Any] | None:
    """A canonical product with its listings per retailer, their daily price history over
    the last ``days`` days, the match pairs behind it and its live opportunities."""
    product = warehouse.query(
        "SELECT * FROM canonical_products WHERE canonical_id = $1", [canonical_id]
    )
    if product.is_empty():
        return None
    listings = warehouse.query(
        "SELECT l.retailer, l.sku, l.name, l.brand, l.model_code, l.category, l.url, "
        "l.price_list, l.price_offer, l.price_card, l.card_program, l.in_stock, l.seller, "
        "l.is_first_party, l.last_seen, m.match_probability "
        "FROM product_matches AS m JOIN listings AS l ON l.retailer = m.retailer "
        "AND l.sku = m.sku WHERE m.canonical_id = $1 ORDER BY l.retailer, l.sku",
        [canonical_id],
    ).to_dicts()
    since = (datetime.now(UTC) - timedelta(days=days)).date()
    history = warehouse.query(
        "SELECT h.retailer, h.sku, h.day, h.price_list, h.price_offer, h.price_card, "
        "h.in_stock FROM price_history AS h JOIN product_matches AS m "
        "ON m.retailer = h.retailer AND m.sku = h.sku "
        "WHERE m.canonical_id = $1 AND h.day >= $2 ORDER BY h.retailer, h.sku, h.day",
        [canonical_id, since],
    )
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in history.iter_rows(named=True):
        key = (row.pop("retailer"), row.pop("sku"))
        series.setdefault(key, []).append(row)
    for listing in listings:
        listing["history"] = series.get((listing["retailer"], listing["sku"]), [])
    pairs = warehouse.query(
        f"SELECT {PAIR_ID_SQL} AS pair_id, p.left_retailer, p.left_sku, p.right_retailer, "
        "p.right_sku, p.probability, p.matched_at FROM match_pairs AS p "
        "JOIN product_matches AS m ON m.retailer = p.left_retailer AND m.sku = p.left_sku "
        "WHERE m.canonical_id = $1 ORDER BY p.probability DESC",
        [canonical_id],
    ).to_dicts()
    opportunities = warehouse.query(
        "SELECT opportunity_id, kind, buy_retailer, buy_price, ref_retailer, ref_price, "
        "margin_clp, roi_pct, severity, status FROM opportunities "
        "WHERE canonical_id = $1 AND status <> 'expired' ORDER BY margin_clp DESC",
        [canonical_id],
    ).to_dicts()
    retailers: dict[str, list[dict[str, Any]]] = {}
    for listing in listings:
        retailers.setdefault(listing["retailer"], []).append(listing)
    return jsonable(
        {
            "product": product.row(0, named=True),
            "retailers": retailers,
            "match_pairs": pairs,
            "opportunities": opportunities,
            "history_days": days,
        }
    )


def kpis(warehouse: Warehouse) -> dict[str, Any]:
    """Headline numbers and the latest intelligence metrics snapshot."""
    live = warehouse.query(
        "SELECT kind, count(*) AS n, coalesce(sum(margin_clp), 0) AS margin, "
        "max(margin_clp) AS best_margin, avg(roi_pct) AS avg_roi FROM opportunities "
        "WHERE status <> 'expired' GROUP BY kind ORDER BY kind"
    ).to_dicts()
    counts = warehouse.query(
        "SELECT (SELECT count(*) FROM listings) AS listings, "
        "(SELECT count(*) FROM canonical_products) AS canonical_products, "
        "(SELECT count(*) FROM product_matches) AS matched_listings, "
        "(SELECT max(ingested_at) FROM raw_prices) AS last_ingested_at"
    ).row(0, named=True)
    latest = warehouse.scalar("SELECT max(as_of_date) FROM intelligence_metrics")
    metrics: dict[str, dict[str, dict[str, float | None]]] = {}
    if latest is not None:
        rows = warehouse.query(
            "SELECT scope, scope_key, metric, value FROM intelligence_metrics "
            "WHERE as_of_date = $1 ORDER BY scope, scope_key, metric",
            [latest],
        )
        for scope, key, metric, value in rows.iter_rows():
            metrics.setdefault(scope, {}).setdefault(key, {})[metric] = value
    return jsonable(
        {
            "opportunities": {
                "live": sum(int(r["n"]) for r in live),
                "total_margin_clp": sum(int(r["margin"]) for r in live),
                "by_kind": {
                    r["kind"]: {
                        "live": int(r["n"]),
                        "total_margin_clp": int(r["margin"]),
                        "best_margin_clp": r["best_margin"],
                        "avg_roi_pct": round(float(r["avg_roi"] or 0), 2),
                    }
                    for r in live
                },
            },
            "catalogue": {k: v for k, v in counts.items() if k != "last_ingested_at"},
            "last_ingested_at": counts["last_ingested_at"],
            "intelligence": {"as_of_date": latest, "metrics": metrics},
        }
    )
