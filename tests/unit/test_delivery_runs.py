"""What the file-drop sensor launches for the files of one look: a delivery that fits one
run is ingested and refreshed downstream in that run; anything else is ingested run by
run, and the automation refreshes after."""

from __future__ import annotations

from datetime import date

from arbx_dagster.automation.sensors import delivery_run, file_run_requests
from arbx_dagster.ingestion.connectors.file_drop import DroppedFile
from arbx_dagster.ingestion.sources import FileDropSource

TODAY = date(2026, 12, 7)
RETAILERS = ["falabella", "paris", "ripley"]  # the partitions' order


def source(name: str = "exports") -> FileDropSource:
    return FileDropSource(
        name=name, connector="file_drop", path="/landing", known_retailers=tuple(RETAILERS)
    )


def dropped(relpath: str, retailer: str | None) -> DroppedFile:
    return DroppedFile(f"/landing/{relpath}", relpath, 100, 1, "jsonl", retailer)


def requests(files: list[DroppedFile], src: FileDropSource | None = None) -> list:
    made, skipped = file_run_requests(src or source(), files, TODAY)
    assert skipped == []
    return made


def test_a_webhook_delivery_for_every_retailer_is_one_run_over_their_range() -> None:
    delivery = requests([dropped("webhook-2026-12-07-abc.jsonl", None)])
    assert len(delivery) == 3  # one per retailer the file may hold
    run = delivery_run(delivery, RETAILERS)
    assert run is not None and run.job_name == "deliver_files"
    assert run.partition_key is None
    assert run.tags["dagster/asset_partition_range_start"] == "2026-12-07|falabella"
    assert run.tags["dagster/asset_partition_range_end"] == "2026-12-07|ripley"
    assert run.run_config["ops"]["raw_prices"]["config"]["paths"] == [
        "/landing/webhook-2026-12-07-abc.jsonl"
    ]
    # the same files seen again make the same run key: never launched twice
    assert delivery_run(delivery, RETAILERS).run_key == run.run_key


def test_one_retailers_export_is_one_run_of_its_partition() -> None:
    run = delivery_run(requests([dropped("paris/2026-12-07.csv", "paris")]), RETAILERS)
    assert run is not None and run.job_name == "deliver_files"
    assert run.partition_key == "2026-12-07|paris"
    assert "dagster/asset_partition_range_start" not in run.tags


def test_exports_of_neighbouring_retailers_share_one_run() -> None:
    files = [
        dropped("falabella/2026-12-07.csv", "falabella"),
        dropped("paris/2026-12-07-a.csv", "paris"),
    ]
    run = delivery_run(requests(files), RETAILERS)
    assert run is not None
    assert run.tags["arbx/retailer"] == "falabella,paris"
    assert run.run_config["ops"]["raw_prices"]["config"]["paths"] == [f.path for f in files]


def test_what_one_run_cannot_hold_is_ingested_run_by_run() -> None:
    skipping_a_retailer = requests(
        [
            dropped("falabella/2026-12-07.csv", "falabella"),
            dropped("ripley/2026-12-07.csv", "ripley"),
        ]
    )
    two_days = requests(
        [dropped("paris/2026-12-06.csv", "paris"), dropped("paris/2026-12-07.csv", "paris")]
    )
    two_sources = requests([dropped("paris/2026-12-07-a.csv", "paris")]) + requests(
        [dropped("paris/2026-12-07-b.csv", "paris")], source("other")
    )
    unknown_retailer = requests([dropped("lider/2026-12-07.csv", "lider")])
    for made in (skipping_a_retailer, two_days, two_sources, unknown_retailer, []):
        assert delivery_run(made, RETAILERS) is None
    assert {r.job_name for r in skipping_a_retailer + two_days} == {"ingest_files"}


def test_a_refresh_leaves_the_match_model_to_its_own_pace() -> None:
    """A delivery's run and a manual refresh rebuild what prices change; the model is
    retrained daily and when missing, not on every refresh."""
    from arbx_dagster.definitions import defs

    for job, first in (("deliver_files", "raw_prices"), ("refresh_downstream", None)):
        steps = set(defs.resolve_job_def(job).graph.node_names())
        assert {"normalized_listings", "product_matches", "opportunities"} <= steps
        assert (first in steps) if first else ("raw_prices" not in steps)
        assert "match_model" not in steps
        assert defs.resolve_job_def(job).tags["arbx/refresh"] == "downstream"
