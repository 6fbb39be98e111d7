"""Raw price observations, one partition per market day and retailer."""

from datetime import date
from typing import Any, NoReturn

import dagster as dg
from pydantic import Field

from arbx_dagster.alerts import AlertDispatcher
from arbx_dagster.assets.conventions import (
    INGESTION,
    OWNERS,
    PRICES_FRESHNESS,
    TABLE_KINDS,
    layer,
)
from arbx_dagster.assets.metadata import table_metadata, table_preview
from arbx_dagster.assets.partitions import RAW_PRICE_PARTITIONS
from arbx_dagster.assets.termination import stops_when_terminated
from arbx_dagster.pipeline.ingest import (
    FETCH_COUNTS,
    ROW_COUNTS,
    TARGETED_TIERS,
    IngestionFailed,
    PartitionRequest,
    exclusive_live_scrape,
    fetch_partition,
    ingest_partition,
    open_connectors,
    summarize_partitions,
    tier_listings,
)
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)

# Run retries (dagster.yaml) skip a run carrying this tag set to "false".
NO_RUN_RETRY_TAG = "dagster/retry_on_asset_or_op_failure"
# Failure metadata: the step already raised its own 🚨, the run-failure sensor stays quiet.
ALERTED = "arbx/alerted"

INGESTION_RETRY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


class IngestConfig(dg.Config):
    tier: str | None = Field(
        default=None,
        description="critical / important / tracking: refresh that tier's listings "
        "(critical reads listing pages only). Unset: the whole catalogue.",
    )
    paths: list[str] | None = Field(
        default=None, description="Dropped files to ingest (set by the file-drop sensor)."
    )


ROWS_LANDED = "rows_landed"


@dg.asset(
    partitions_def=RAW_PRICE_PARTITIONS,
    check_specs=[
        dg.AssetCheckSpec(
            ROWS_LANDED,
            asset="raw_prices",
            description="Every partition of the run stored rows (a run that lands nothing "
            "says why and what to do, instead of turning green).",
        )
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=INGESTION_RETRY,
    group_name=INGESTION,
    owners=OWNERS,
    tags=layer("raw"),
    kinds=TABLE_KINDS,
    freshness_policy=PRICES_FRESHNESS,
    description=(
        "Every price observation (list, offer and card prices in CLP) per market day and "
        "retailer, from the sources in sources.yaml. Today is scraped live (tier runs refresh "
        "their listings); a past day is rebuilt from the raw-payload archive and replaces that "
        "partition's rows. Malformed rows go to `quarantine` with a reason: fetched = stored + "
        "quarantined + repeated."
    ),
)
@stops_when_terminated
def raw_prices(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    cache: CacheResource,
    clock: ClockResource,
    sources: SourcesResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    now = clock.now()
    sources_config = sources.config
    archive = sources.archive
    reports: dict[str, StageReport] = {}
    failures: dict[str, IngestionFailed] = {}
    with open_connectors(sources_config, cache.cache, archive, now=now) as connectors:
        for key in context.partition_keys:
            dims = key.keys_by_dimension  # type: ignore[attr-defined]
            request = PartitionRequest(
                day=date.fromisoformat(dims["day"]),
                retailer=dims["retailer"],
                tier=config.tier,
                paths=tuple(config.paths) if config.paths is not None else None,
            )
            listings = (
                tier_listings(warehouse.warehouse, request.retailer, config.tier)
                if config.tier in TARGETED_TIERS
                else None
            )
            try:
                with exclusive_live_scrape(cache.cache, request, now):
                    fetched = fetch_partition(
                        sources_config,
                        connectors,
                        archive,
                        request,
                        now=now,
                        run_id=context.run.run_id,
                        listings=listings,
                    )
                reports[key] = ingest_partition(
                    warehouse.warehouse, fetched, request, now=now, run_id=context.run.run_id
                )
            except IngestionFailed as exc:
                failures[key] = exc
                context.log.error("partition %s failed: %s", key, exc)
                continue
            counts = reports[key].counts
            context.log_event(
                dg.AssetObservation(
                    asset_key=context.asset_key,
                    partition=key,
                    metadata={
                        name: counts[name]
                        for name in ("how", "fetched", "stored", "quarantined", "listings")
                    },
                )
            )
    if failures:
        dispatcher = alerts.dispatcher(cache.cache, warehouse.warehouse, clock.now)
        _fail_untrusted(context, failures, landed=sorted(reports), dispatcher=dispatcher)
    for key, report in reports.items():  # each partition's event: its own figures
        context.add_asset_metadata(partition_metadata(report), partition_key=key)
    return dg.MaterializeResult(
        metadata=run_metadata(
            reports, config, table_metadata(warehouse.warehouse, "raw_prices", count_rows=False)
        ),
        check_results=[_rows_landed(context, reports)],
    )


def _nothing_stored(reports: dict[str, StageReport]) -> dict[str, str]:
    """Partition -> why it stored nothing, for the partitions that stored nothing."""
    said = {key: report.counts["nothing_stored"] for key, report in reports.items()}
    return {key: why for key, why in said.items() if why}


def _rows_landed(
    context: dg.AssetExecutionContext, reports: dict[str, StageReport]
) -> dg.AssetCheckResult:
    empty = _nothing_stored(reports)
    for why in empty.values():
        context.log.warning("nothing stored: %s", why)
    return dg.AssetCheckResult(
        check_name=ROWS_LANDED,
        passed=not empty,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(empty.values()) or "every partition stored rows",
        metadata={"empty_partitions": dg.MetadataValue.json(empty)},
    )


def _fail_untrusted(
    context: dg.AssetExecutionContext,
    failures: dict[str, IngestionFailed],
    *,
    landed: list[str],
    dispatcher: AlertDispatcher,
) -> NoReturn:
    """🚨 for each partition that cannot be trusted, then fail the step loudly. A parser that
    no longer fits the pages is not retried, neither by the RetryPolicy nor by run retries:
    it would fail the same way until someone fixes its mapping."""
    run_id = context.run.run_id
    for key, exc in failures.items():
        dispatcher.system_error(
            f"raw_prices {key} cannot be trusted", str(exc), key=f"ingest:{key}", run_id=run_id
        )
    retryable = any(exc.retryable for exc in failures.values())
    if not retryable:
        context.instance.add_run_tags(run_id, {NO_RUN_RETRY_TAG: "false"})
    raise dg.Failure(
        description="; ".join(f"{key}: {exc}" for key, exc in failures.items()),
        metadata={
            "failures": dg.MetadataValue.json({key: str(exc) for key, exc in failures.items()}),
            "landed": dg.MetadataValue.json(landed),
            ALERTED: True,
        },
        allow_retries=retryable,
    )


def partition_metadata(report: StageReport) -> dict[str, Any]:
    """One partition's figures: its rows in the warehouse now (``dagster/row_count``, what
    the UI charts per partition), then what this run fetched and stored for it."""
    counts = report.counts
    fetch = counts["fetch"]
    return {
        "dagster/row_count": counts["partition_rows"],
        "dagster/partition_row_count": counts["partition_rows"],
        "how": counts["how"],
        **{name: counts[name] for name in ROW_COUNTS},
        **{name: fetch[name] for name in FETCH_COUNTS},
        "duration_seconds": dg.MetadataValue.float(round(float(fetch["duration_seconds"]), 2)),
        "quarantine_reasons": dg.MetadataValue.json(counts["quarantine_reasons"]),
    }


def run_metadata(
    reports: dict[str, StageReport], config: IngestConfig, table: dict[str, Any]
) -> dict[str, Any]:
    """What every partition's event of the run shares: the table (name, engine, columns),
    the run's totals and its figures per retailer and per partition."""
    summary = summarize_partitions(reports)
    return {
        **table,
        "partitions": len(reports),
        "tier": config.tier or "all",
        "nothing_stored": dg.MetadataValue.json(_nothing_stored(reports)),
        "run_totals": dg.MetadataValue.json(
            {**summary.total.counts, "quarantine_reasons": summary.quarantine_reasons}
        ),
        "per_retailer": dg.MetadataValue.json(summary.retailers),
        "per_partition": table_preview(summary.partitions, max_rows=40),
    }
