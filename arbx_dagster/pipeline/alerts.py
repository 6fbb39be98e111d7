"""Alerts after each opportunities run: opportunities users should hear about, watch-rule
hits, and the log of what was sent (the alert KPIs)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.alerts import AlertDispatcher, DispatchReport, evaluate_watch_rules
from arbx_dagster.alerts.store import read_watch_rules, record_alerts
from arbx_dagster.pipeline.opportunities import read_opportunity_state
from arbx_dagster.pipeline.opportunity_context import full_evaluation
from arbx_dagster.pipeline.quality_checks import glitching_retailers
from arbx_dagster.storage.warehouse import Warehouse


def send_alerts(
    warehouse: Warehouse,
    dispatcher: AlertDispatcher,
    *,
    now: datetime,
    run_id: str | None = None,
) -> list[DispatchReport]:
    """Dispatch opportunity and watch alerts; never raises for a failing channel.

    Every live opportunity and every watch hit is offered to the dispatcher, whose memory
    (Redis, or the warehouse without it: ``alerts.store.alert_memory``) decides what is news.
    """
    live = read_opportunity_state(warehouse, open_only=True)
    # Spreads held for review wait for a person (``domain.review``), not the channels.
    live = live.filter(pl.col("review").is_null())
    # A retailer glitching wholesale is a scraper bug: its glitches are not news.
    suspect = glitching_retailers(warehouse)["retailer"].to_list()
    live = live.filter(~((pl.col("kind") == "glitch") & pl.col("buy_retailer").is_in(suspect)))
    confirmed = live.filter(pl.col("confirmation") == "confirmed")["opportunity_id"].to_list()
    reports = [dispatcher.dispatch(live, confirmed=confirmed)]
    rules = read_watch_rules(warehouse)
    if not rules.is_empty():
        market = full_evaluation(warehouse, now)
        hits = evaluate_watch_rules(rules, market.market, market.history, now)
        reports.append(dispatcher.dispatch_watch(hits))
    record_alerts(warehouse, reports, now=now, run_id=run_id)
    return reports


def merge_reports(reports: list[DispatchReport]) -> dict[str, object]:
    """One metadata entry for several dispatches."""
    merged = DispatchReport()
    for report in reports:
        merged.sent.update(report.sent)
        merged.suppressed.update(report.suppressed)
        merged.failures.extend(report.failures)
        merged.errors.extend(report.errors)
        merged.seconds += report.seconds
    return merged.as_metadata()
