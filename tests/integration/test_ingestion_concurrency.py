"""Never two runs scraping the same retailer at once, however a run was launched.

Dagster tags every run of one ``raw_prices`` partition with the partition's dimensions
(``dagster/partition/retailer``); both instances ArbX ships limit that tag to one run per
value, and the embedded (DuckDB) instance runs one run at a time. The checks go through
the loaded instance's run queue config and the tag counter its queued-run daemon uses.
A run the tags cannot place (a backfill spanning retailers) waits on the scrape lease.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.run_coordinator.queued_run_coordinator import RunQueueConfig
from dagster._utils.tags import TagConcurrencyLimitsCounter
from instances import stored_instance

from arbx_dagster.automation.sensors import file_run_requests
from arbx_dagster.definitions import defs
from arbx_dagster.ingestion.connectors import DroppedFile
from arbx_dagster.ingestion.sources import FileDropSource
from arbx_dagster.instance import (
    PRODUCTION_INSTANCE_YAML,
    prepare_dagster_home,
    production_run_limits,
)
from arbx_dagster.pipeline import ingest
from arbx_dagster.pipeline.ingest import PartitionRequest
from arbx_dagster.service.run_control import LaunchRequest
from arbx_dagster.settings import Settings
from arbx_dagster.storage.cache import Cache

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PARTITION = "2026-11-23|ripley"
RETAILER_TAG = "dagster/partition/retailer"


def _ui_tags(partition: str) -> Mapping[str, str]:
    """What the webserver attaches when a user materializes one partition of raw_prices."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.get_tags_for_partition_key(
        partition, selected_asset_keys=[dg.AssetKey("raw_prices")]
    )


def _schedule_tags(partition: str) -> Mapping[str, str]:
    with stored_instance() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=NOW,
            repository_def=defs.get_repository_def(),
        )
        requests = defs.resolve_schedule_def("critical_tier").evaluate_tick(context).run_requests
    return next(r.tags for r in requests or [] if r.partition_key == partition)


def _sensor_tags(partition: str) -> Mapping[str, str]:
    """A dropped file's run request, resolved as the daemon resolves it before launching."""
    day, retailer = partition.split("|")
    source = FileDropSource(name="exports", connector="file_drop", path="/landing")
    dropped = DroppedFile(
        path=f"/landing/{retailer}/{day}.csv",
        relpath=f"{retailer}/{day}.csv",
        size=100,
        mtime_ns=1,
        format="csv",
        retailer=retailer,
    )
    [request], _ = file_run_requests(source, [dropped], NOW.date())
    with stored_instance() as instance:
        resolved = request.with_resolved_tags_and_config(
            target_definition=defs.resolve_job_def("ingest_files"),
            dynamic_partitions_requests=[],
            dynamic_partitions_store=instance,
        )
    return resolved.tags


def _api_tags(partition: str) -> Mapping[str, str]:
    return LaunchRequest(job="ingest_critical", partition=partition).run_tags("tester")


LAUNCHES = {"ui": _ui_tags, "schedule": _schedule_tags, "sensor": _sensor_tags, "api": _api_tags}


def _run(tags: Mapping[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name="raw_prices_run", run_id=str(uuid.uuid4()), tags=dict(tags))


def _queue(home: Path) -> RunQueueConfig:
    """The run queue config the instance's queued-run daemon applies."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        config = instance.get_concurrency_config().run_queue_config
    assert config is not None
    return config


def _assert_one_run_per_retailer(config: RunQueueConfig) -> None:
    """With a ripley scrape in progress, every other way of launching ripley waits; another
    retailer's run does not."""
    running = _run(_ui_tags(PARTITION))
    counter = TagConcurrencyLimitsCounter(list(config.tag_concurrency_limits), [running])
    for launch in LAUNCHES.values():
        assert counter.is_blocked(_run(launch(PARTITION)))
        assert not counter.is_blocked(_run(launch("2026-11-23|paris")))


def _assert_one_refresh_at_a_time(config: RunQueueConfig) -> None:
    """Runs that refresh downstream of raw prices (a delivery's, the automation's, a full
    refresh or re-match) write the same tables: one goes, the others wait; ingestion does
    not."""
    refreshing = [
        defs.resolve_job_def(name).tags for name in ("deliver_files", "full_refresh", "rematch_all")
    ] + [defs.resolve_sensor_def("refresh_on_fresh_prices").run_tags]
    for running in refreshing:
        counter = TagConcurrencyLimitsCounter(list(config.tag_concurrency_limits), [_run(running)])
        assert all(counter.is_blocked(_run(tags)) for tags in refreshing)
        assert not counter.is_blocked(_run(_ui_tags("2026-11-23|paris")))


@pytest.mark.parametrize("launch", sorted(LAUNCHES))
def test_every_way_of_launching_a_partition_tags_its_retailer(launch: str) -> None:
    tags = LAUNCHES[launch](PARTITION)
    assert tags[RETAILER_TAG] == "ripley"
    assert tags["dagster/partition"] == PARTITION


def test_the_embedded_instance_runs_one_run_at_a_time_with_the_production_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ARBX_POSTGRES_URL", raising=False)
    monkeypatch.setenv("ARBX_HOME", str(tmp_path))
    config = _queue(prepare_dagster_home(Settings.from_env()))
    # Two runs of one tick (one per retailer) would fight over the single-writer DuckDB file.
    assert config.max_concurrent_runs == 1
    assert list(config.tag_concurrency_limits) == production_run_limits()
    assert {rule["key"] for rule in production_run_limits()} == {RETAILER_TAG, "arbx/refresh"}
    _assert_one_run_per_retailer(config)
    _assert_one_refresh_at_a_time(config)


@pytest.mark.services
def test_the_production_instance_limits_runs_per_retailer(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARBX_POSTGRES_URL", postgres_url)
    shutil.copy(PRODUCTION_INSTANCE_YAML, tmp_path / "dagster.yaml")
    config = _queue(tmp_path)
    assert config.max_concurrent_runs == 8
    _assert_one_run_per_retailer(config)
    _assert_one_refresh_at_a_time(config)


# --- runs the tags cannot tell apart -----------------------------------------------------------


def _request(day: str, **kwargs: object) -> PartitionRequest:
    return PartitionRequest(day=date.fromisoformat(day), retailer="ripley", **kwargs)  # type: ignore[arg-type]


def test_a_backfill_run_waits_for_the_retailer_a_tier_run_is_scraping(
    cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multi-partition backfill run has no retailer tag: the scrape lease keeps it off a
    store another worker is scraping, and lets it in once that scrape is done."""
    today = _request("2026-11-23")
    order: list[str] = []
    tier_run_scraping = threading.Event()

    def tier_run() -> None:
        with ingest.exclusive_live_scrape(cache, today, NOW):
            tier_run_scraping.set()
            time.sleep(0.5)
            order.append("tier run done")

    worker = threading.Thread(target=tier_run)
    worker.start()
    tier_run_scraping.wait(5)
    with ingest.exclusive_live_scrape(cache, today, NOW):
        order.append("backfill scrapes")
    worker.join()
    assert order == ["tier run done", "backfill scrapes"]

    # It does not wait forever: a retryable failure that says why.
    monkeypatch.setattr(ingest, "SCRAPE_WAIT_SECONDS", 0.2)
    with cache.lock("scrape:ripley", ttl_seconds=30):
        with (
            pytest.raises(
                ingest.IngestionFailed, match="another run has been scraping ripley"
            ) as failed,
            ingest.exclusive_live_scrape(cache, today, NOW),
        ):
            pass
        assert failed.value.retryable
        # Replaying a past day or reading dropped files touches no store: no waiting.
        with ingest.exclusive_live_scrape(cache, _request("2026-11-20"), NOW):
            pass
        with ingest.exclusive_live_scrape(cache, _request("2026-11-23", paths=("a.csv",)), NOW):
            pass


def test_a_tier_schedule_asks_nothing_of_retailers_fed_only_by_file_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their files are ingested as they land; a tier run would only read them again."""
    from sources_files import file_drop_sources

    monkeypatch.setenv("ARBX_SOURCES", str(file_drop_sources(tmp_path)))
    with stored_instance() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=NOW,
            repository_def=defs.get_repository_def(),
        )
        result = defs.resolve_schedule_def("critical_tier").evaluate_tick(context)
    assert not result.run_requests
    assert "file_drop_sensor" in (result.skip_message or "")
