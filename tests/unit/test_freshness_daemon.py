"""`bench freshness --daemon`'s parts: the market it drops is what the file-drop connector
reads, a channel's arrivals are matched to the change they announce, and the watch ends
only once the changes' runs are over."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from arbx_dagster.bench.freshness_daemon import Arrivals, _alert_opens, _opens, drop_market, settled
from arbx_dagster.domain.simulator import simulate_snapshot
from arbx_dagster.ingestion.connectors.file_drop import FileDropConnector
from arbx_dagster.ingestion.sources import FileDropSource


def test_the_dropped_market_is_one_file_per_retailer_and_day_that_the_connector_reads_whole(
    tmp_path: Path,
) -> None:
    market = simulate_snapshot(300, seed=4).observations
    files = drop_market(market, tmp_path)
    retailers = {path.parent.name for path in files}
    assert retailers == set(market["retailer"].unique())
    connector = FileDropConnector(
        FileDropSource(name="landing", connector="file_drop", path=str(tmp_path))
    )
    read = pl.concat([connector.read(path).frame for path in files])
    assert read.height == market.height
    assert set(read["sku"]) == set(market["sku"])
    assert not list(tmp_path.rglob("*.part"))


def target(retailer: str, sku: str, price: int, kind: str) -> dict[str, object]:
    return {"retailer": retailer, "sku": sku, "price": price, "kind": kind,
            "url": f"https://{retailer}.cl/{sku}"}  # fmt: skip


TARGETS = [target("paris", "p1", 1_000, "spread"), target("ripley", "r1", 90, "glitch")]


def test_an_event_counts_for_the_listing_it_buys_at_and_only_at_its_new_price() -> None:
    seen: dict[int, float] = {}
    stream = Arrivals(TARGETS, _opens)
    events = [
        (10.0, {"buy_retailer": "paris", "buy_sku": "p1", "buy_price": 1_500}),  # the old price
        (11.0, {"buy_retailer": "ripley", "buy_sku": "r1", "buy_price": 90}),
    ]
    stream.update(events, landed_at=5.0, seen=seen)
    assert seen == {1: 6.0}
    events.append((12.5, {"buy_retailer": "paris", "buy_sku": "p1", "buy_price": 1_000}))
    stream.update(events, landed_at=5.0, seen=seen)  # only the new arrival is read
    assert seen == {1: 6.0, 0: 7.5}


def test_an_alert_counts_for_the_listing_whose_url_it_names() -> None:
    seen: dict[int, float] = {}
    inbox = Arrivals(TARGETS, _alert_opens)
    alerts = [(9.0, {"title": "🎯", "message": "Comprar en Ripley\nhttps://ripley.cl/r1"})]
    inbox.update(alerts, landed_at=5.0, seen=seen)
    assert seen == {1: 4.0}


def run(job: str, status: str, created: float) -> dict[str, object]:
    return {"job_name": job, "status": status, "created_at": created}


def test_the_changes_are_settled_once_a_run_after_their_ingestion_is_over_and_nothing_runs() -> (
    None
):
    landed = 100.0
    ingested = [run("ingest_files", "SUCCESS", 101.0)]
    assert not settled(ingested, landed)  # the downstream run is yet to come
    going = [*ingested, run("__ASSET_JOB", "STARTED", 120.0)]
    assert not settled(going, landed)
    done = [*ingested, run("__ASSET_JOB", "SUCCESS", 120.0)]
    assert settled(done, landed)
    assert not settled([*done, run("ingest_critical", "QUEUED", 50.0)], landed)
