"""Severe glitches are re-fetched through a real connector before anyone is alerted.

The simulator connector plays the store: asked again for a listing, it answers with what
the simulated market shows today. ``confirm_severe_glitches`` must keep the glitches the
store still shows (with the re-fetched price), drop the ones it fixed, leave the ones no
fresh answer covers pending, and not ask again for one confirmed earlier at the same price.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import day_of
from arbx_dagster.domain.lifecycle import OPPORTUNITY_STATE_SCHEMA
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.pipeline.ingest import open_connectors, refetch_listings
from arbx_dagster.pipeline.opportunities import confirm_severe_glitches
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.storage.cache import MemoryCache

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    """The simulator as a store, and what it shows today for four in-stock listings."""
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""
version: 1
archive: {{root: {tmp_path / "archive"}}}
retailers:
  - name: simulator
    connector: simulator
    seed: 3
    n_products: 20
    days: 2
""",
        encoding="utf-8",
    )
    config = resolve_sources(path)
    with open_connectors(
        config, MemoryCache(), Archive.from_config(config.archive), now=NOW
    ) as connectors:
        today = (
            connectors["simulator"]
            .market()
            .observations.filter(
                (
                    pl.col("observed_at").dt.convert_time_zone("America/Santiago").dt.date()
                    == day_of(NOW)
                )
                & pl.col("in_stock")
                & pl.col("price_offer").is_not_null()
                & (pl.col("retailer") == "paris")
            )
            .sort("sku")
            .head(4)
        )
        asked: list[set[str]] = []

        def refetch(wanted: pl.DataFrame) -> pl.DataFrame:
            asked.append(set(wanted["sku"]))
            return refetch_listings(config, connectors, wanted, now=NOW, run_id="confirm")

        yield today, refetch, asked


def candidate(oid: str, shown: dict, *, price: int, ref: int, observed_at: datetime) -> dict:
    return {
        "opportunity_id": oid,
        "kind": "glitch",
        "canonical_id": oid,
        "product_name": shown["name"],
        "buy_retailer": shown["retailer"],
        "buy_sku": shown["sku"],
        "buy_url": shown["url"],
        "buy_price": price,
        "buy_price_type": "offer",
        "ref_price": ref,
        "margin_clp": ref - price,
        "roi_pct": 100.0 * (ref - price) / price,
        "confidence": 0.8,
        "severity": "high",
        "observed_at": observed_at,
        "glitch_type": "deep_discount",
    }


def test_severe_glitches_are_confirmed_rejected_or_left_pending(store) -> None:
    today, refetch, asked = store
    still, fixed, too_recent, known = today.iter_rows(named=True)
    seen = still["observed_at"]
    glitches = pl.DataFrame(
        [
            # The store still shows it far below the reference: confirmed at that price.
            candidate(
                "still",
                still,
                price=still["price_offer"],
                ref=20 * still["price_offer"],
                observed_at=seen,
            ),
            # Seen at a tenth yesterday; today the store shows its normal price again.
            candidate(
                "fixed",
                fixed,
                price=fixed["price_offer"] // 10,
                ref=fixed["price_offer"],
                observed_at=fixed["observed_at"] - timedelta(days=1),
            ),
            # Seen *after* the store's latest answer: no fresher evidence yet.
            candidate(
                "too_recent",
                too_recent,
                price=too_recent["price_offer"] // 10,
                ref=too_recent["price_offer"],
                observed_at=NOW,
            ),
            # Confirmed by an earlier run at this very price: not fetched again.
            candidate(
                "known",
                known,
                price=known["price_offer"] // 10,
                ref=known["price_offer"],
                observed_at=seen,
            ),
            # A listing the store no longer returns at all.
            candidate(
                "vanished",
                {**still, "sku": "no-such-sku"},
                price=1_000,
                ref=100_000,
                observed_at=seen,
            ),
        ],
        schema_overrides={"observed_at": OPPORTUNITY_SCHEMA["observed_at"]},
    )
    previous = conform(
        glitches.filter(pl.col("opportunity_id") == "known").with_columns(
            confirmation=pl.lit("confirmed")
        ),
        OPPORTUNITY_STATE_SCHEMA,
    )

    kept, counts = confirm_severe_glitches(glitches, previous, Thresholds(), refetch)

    assert counts == {"reconfirmed": 1, "confirmed": 1, "rejected": 1, "pending": 2}
    assert dict(kept.select("opportunity_id", "confirmation").rows()) == {
        "still": "confirmed",
        "known": "confirmed",
        "too_recent": "pending",
        "vanished": "pending",
    }
    confirmed = kept.filter(pl.col("opportunity_id") == "still").row(0, named=True)
    assert confirmed["buy_price"] == still["price_offer"]
    assert confirmed["observed_at"] >= seen, "prices and time come from the re-fetch"
    assert confirmed["margin_clp"] == 19 * still["price_offer"]
    assert asked == [{still["sku"], fixed["sku"], too_recent["sku"], "no-such-sku"}]


def test_without_a_connector_severe_glitches_wait_as_pending(store) -> None:
    today, _, _ = store
    shown = today.row(0, named=True)
    glitches = pl.DataFrame(
        [candidate("g", shown, price=1_000, ref=100_000, observed_at=shown["observed_at"])],
        schema_overrides={"observed_at": OPPORTUNITY_SCHEMA["observed_at"]},
    )
    kept, counts = confirm_severe_glitches(
        glitches, conform(pl.DataFrame(), OPPORTUNITY_STATE_SCHEMA), Thresholds(), None
    )
    assert counts["pending"] == 1 and kept["confirmation"].to_list() == ["pending"]


def test_a_pack_size_glitch_is_re_fetched_whatever_its_severity(store) -> None:
    today, refetch, asked = store
    shown = today.row(0, named=True)
    pack = candidate(
        "pack",
        shown,
        price=shown["price_offer"],
        ref=4 * shown["price_offer"],
        observed_at=shown["observed_at"],
    ) | {"severity": "low", "glitch_type": "pack_size"}
    deal = candidate(
        "deal",
        shown,
        price=shown["price_offer"],
        ref=4 * shown["price_offer"],
        observed_at=shown["observed_at"],
    ) | {"opportunity_id": "deal", "severity": "low"}
    glitches = pl.DataFrame(
        [pack, deal], schema_overrides={"observed_at": OPPORTUNITY_SCHEMA["observed_at"]}
    )
    kept, counts = confirm_severe_glitches(
        glitches, conform(pl.DataFrame(), OPPORTUNITY_STATE_SCHEMA), Thresholds(), refetch
    )
    assert asked == [{shown["sku"]}], "only the pack-size glitch is asked again"
    assert counts["confirmed"] == 1
    assert dict(kept.select("opportunity_id", "confirmation").rows()) == {
        "pack": "confirmed",
        "deal": None,
    }
