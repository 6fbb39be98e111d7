"""Alert dispatch: delivered once through Apprise, retried with backoff, never blocking."""

from __future__ import annotations

import logging
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.alerts import AlertDispatcher, channels_from_urls, parse_channel_urls
from arbx_dagster.alerts.channels import DeliveryError, deliver
from arbx_dagster.alerts.messages import Alert
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA
from arbx_dagster.resources import AlertsResource
from arbx_dagster.storage.cache import CacheError, MemoryCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from webhook_receiver import WebhookReceiver

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def NOW_CLOCK() -> datetime:
    return NOW


def opportunities(*rows: dict) -> pl.DataFrame:
    base = {
        "kind": "spread",
        "canonical_id": "tv",
        "product_name": "Smart TV 55",
        "buy_retailer": "falabella",
        "buy_sku": "f1",
        "buy_price": 100_000,
        "buy_price_type": "offer",
        "ref_retailer": "ripley",
        "ref_price": 130_000,
        "margin_clp": 30_000,
        "roi_pct": 30.0,
        "confidence": 0.9,
        "observed_at": NOW,
    }
    return pl.DataFrame([base | row for row in rows], schema=OPPORTUNITY_SCHEMA)


def dispatcher(cache=None, channels=(), **options) -> AlertDispatcher:
    options = {"backoff_seconds": 0.01, "deadline_seconds": 5.0} | options
    return AlertDispatcher(cache or MemoryCache(), channels, lambda: NOW, **options)


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


def test_an_opportunity_is_delivered_once_as_json(receiver):
    (channel,), problems = parse_channel_urls(receiver.url("/hook"))
    assert problems == []
    alerts = dispatcher(channels=[channel])
    first = alerts.dispatch(opportunities({"opportunity_id": "o1"}))
    again = alerts.dispatch(opportunities({"opportunity_id": "o1"}))

    (body,) = receiver.delivered("/hook")
    assert body["title"] == "📈 ROI alto 30,0 %: Smart TV 55"
    assert "Margen $30.000" in body["message"]
    assert first.sent == {"high_roi": 1} and first.ok
    assert again.sent == {} and again.suppressed == {"not_material": 1}


def test_expired_and_unconfirmed_high_severity_glitches_do_not_alert():
    rows = opportunities(
        {"opportunity_id": "gone"},
        {"opportunity_id": "g1", "kind": "glitch", "severity": "high"},
        {"opportunity_id": "g2", "kind": "glitch", "severity": "high"},
        {"opportunity_id": "g3", "kind": "glitch", "severity": "medium"},
    ).with_columns(status=pl.Series(["expired", "new", "new", "new"]))
    report = dispatcher().dispatch(rows, confirmed=["g2"])
    assert sorted(a.key for a in report.alerts) == ["g2", "g3"]
    assert report.suppressed == {"awaiting_confirmation": 1}


def test_pack_size_and_currency_glitches_wait_for_confirmation_like_severe_ones():
    glitch = {"kind": "glitch", "severity": "medium"}
    rows = opportunities(
        {"opportunity_id": "pack", **glitch, "glitch_type": "pack_size"},
        {"opportunity_id": "usd", **glitch, "glitch_type": "currency"},
        {"opportunity_id": "pack-ok", **glitch, "glitch_type": "pack_size"},
        {"opportunity_id": "deal", **glitch, "glitch_type": "deep_discount"},
    )
    report = dispatcher().dispatch(rows, confirmed=["pack-ok"])
    assert sorted(a.key for a in report.alerts) == ["deal", "pack-ok"]
    assert report.suppressed == {"awaiting_confirmation": 2}


def test_the_log_always_gets_the_alert(caplog):
    with caplog.at_level(logging.INFO, logger="arbx.alerts"):
        report = dispatcher().dispatch(opportunities({"opportunity_id": "o1", "roi_pct": 10.0}))
    assert report.sent == {"new_opportunity": 1}  # no channel configured: the log is it
    assert "🎯 Nueva oportunidad: Smart TV 55" in caplog.text


def test_a_failing_endpoint_is_retried_with_backoff_until_it_accepts(receiver):
    receiver.fail_first["/flaky"] = 2
    (channel,), _ = parse_channel_urls(receiver.url("/flaky"))
    report = dispatcher(channels=[channel], backoff_seconds=0.05).dispatch(
        opportunities({"opportunity_id": "o1"})
    )
    attempts = receiver.attempts("/flaky")
    assert [a.status for a in attempts] == [500, 500, 200]
    assert attempts[2].at - attempts[1].at >= 2 * (attempts[1].at - attempts[0].at) * 0.8
    assert attempts[1].at - attempts[0].at >= 0.05
    assert report.ok and report.deliveries[0].attempts == 3


def test_a_dead_channel_is_reported_not_raised_and_does_not_hold_the_others(receiver):
    receiver.fail_always.add("/dead")
    channels, _ = parse_channel_urls(f"{receiver.url('/dead')}, {receiver.url('/ok')}")
    alerts = dispatcher(channels=channels)
    report = alerts.dispatch(
        opportunities({"opportunity_id": "o1"}, {"opportunity_id": "o2", "buy_sku": "f2"})
    )
    assert len(receiver.delivered("/ok")) == 2
    # Three tries for the first alert, then the channel counts as down for the batch.
    assert len(receiver.attempts("/dead")) == 3
    failures = {(f.alert_key, f.attempts) for f in report.failures}
    assert failures == {("o1", 3), ("o2", 0)}
    assert report.sent == {"high_roi": 2}  # delivered somewhere: not retried next run


def test_an_alert_nobody_received_is_retried_by_the_next_dispatch(receiver):
    receiver.fail_first["/down"] = 3  # down for the first dispatch's three attempts
    channels, _ = parse_channel_urls(receiver.url("/down"))
    alerts = dispatcher(channels=channels)
    first = alerts.dispatch(opportunities({"opportunity_id": "o1"}))
    assert first.sent == {} and first.suppressed == {"undelivered": 1}
    second = alerts.dispatch(opportunities({"opportunity_id": "o1"}))
    assert second.sent == {"high_roi": 1}
    assert len(receiver.delivered("/down")) == 1


def _burst(count: int) -> pl.DataFrame:
    return opportunities(
        *(
            {"opportunity_id": f"o{i}", "buy_sku": f"f{i}", "buy_url": f"https://shop/f{i}"}
            for i in range(count)
        )
    )


def test_a_burst_of_alerts_arrives_as_digests_carrying_each_alert_once(receiver):
    (channel,), _ = parse_channel_urls(receiver.url("/hook"))
    alerts = dispatcher(channels=[channel])
    report = alerts.dispatch(_burst(23))

    bodies = receiver.delivered("/hook")
    assert [b["title"] for b in bodies] == [f"📋 23 alertas ({i}/3)" for i in (1, 2, 3)]
    urls = re.findall(r"https://shop/(f\d+)", "\n".join(b["message"] for b in bodies))
    assert sorted(urls) == sorted(f"f{i}" for i in range(23))  # each alert exactly once
    assert "Margen $30.000" in bodies[0]["message"]  # each alert written out in full
    assert report.sent == {"high_roi": 23} and report.messages == 3 and report.ok
    assert alerts.dispatch(_burst(23)).sent == {}  # remembered one by one, as ever


def test_a_few_alerts_still_arrive_one_message_each(receiver):
    (channel,), _ = parse_channel_urls(receiver.url("/hook"))
    report = dispatcher(channels=[channel]).dispatch(_burst(5))
    assert len(receiver.delivered("/hook")) == 5 and report.messages == 5


def test_the_alerts_of_a_digest_nobody_received_are_retried_by_the_next_dispatch(receiver):
    receiver.fail_first["/down"] = 3  # the first digest's three attempts
    channels, _ = parse_channel_urls(receiver.url("/down"))
    alerts = dispatcher(channels=channels)
    first = alerts.dispatch(_burst(12))
    # The channel is down for the batch after the first digest's tries: nothing went out.
    assert first.sent == {} and first.suppressed == {"undelivered": 12}
    second = alerts.dispatch(_burst(12))
    assert second.sent == {"high_roi": 12} and second.messages == 2
    assert len(receiver.delivered("/down")) == 2


class Down:
    """A channel that refuses everything, counting the tries."""

    name = "down"

    def __init__(self) -> None:
        self.tries = 0

    def send(self, alert: Alert, timeout: float) -> None:
        self.tries += 1
        raise DeliveryError("HTTP 503")


ALERTS = [Alert("new_opportunity", f"t{i}", "b", f"k{i}") for i in range(3)]


def test_retries_wait_twice_as_long_each_time_then_the_channel_is_skipped_for_the_batch():
    waits: list[float] = []
    channel = Down()
    results = deliver(ALERTS, [channel], attempts=3, backoff=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0] and channel.tries == 3
    assert [(r.alert_key, r.ok, r.attempts) for r in results] == [
        ("k0", False, 3),
        ("k1", False, 0),
        ("k2", False, 0),
    ]
    assert results[0].error == "DeliveryError: HTTP 503"
    assert results[1].error == "skipped: channel failing (DeliveryError: HTTP 503)"


def test_a_retry_that_would_start_past_the_deadline_is_not_made():
    waits: list[float] = []
    channel = Down()
    started = time.monotonic()
    results = deliver(ALERTS, [channel], backoff=5, deadline_seconds=2, sleep=waits.append)
    assert time.monotonic() - started < 1  # not held until the deadline either
    assert waits == [] and channel.tries == 1
    assert [(r.alert_key, r.attempts, r.error) for r in results] == [
        ("k0", 1, "DeliveryError: HTTP 503"),
        ("k1", 0, "deadline reached"),
        ("k2", 0, "deadline reached"),
    ]


def test_delivery_is_bounded_in_time_however_slow_the_channel():
    class Slow:
        name = "slow"

        def send(self, alert: Alert, timeout: float) -> None:
            time.sleep(min(timeout, 5))
            raise DeliveryError("timeout")

    started = time.monotonic()
    alerts = [Alert("new_opportunity", f"t{i}", "b", f"k{i}") for i in range(5)]
    results = deliver(alerts, [Slow()], deadline_seconds=0.3, backoff=0.01)
    assert time.monotonic() - started < 1.0
    assert len(results) == 5 and not any(r.ok for r in results)


def test_system_errors_alert_once_per_cooldown(receiver):
    channels, _ = parse_channel_urls(receiver.url("/ops"))
    alerts = dispatcher(channels=channels)
    first = alerts.system_error("run failed", "opportunities: division by zero", run_id="r1")
    repeat = alerts.system_error("run failed", "opportunities: division by zero", run_id="r2")
    other = alerts.system_error("check failed", "raw_prices schema", key="check:raw_prices")
    assert first.sent == {"system_error": 1} and repeat.suppressed == {"cooldown": 1}
    assert other.sent == {"system_error": 1}
    titles = [b["title"] for b in receiver.delivered("/ops")]
    assert titles == ["🚨 Error del sistema: run failed", "🚨 Error del sistema: check failed"]
    assert receiver.delivered("/ops")[0]["type"] == "failure"


def test_an_unreachable_cache_skips_opportunity_alerts_but_not_errors():
    class Broken(MemoryCache):
        def add(self, *args, **kwargs):
            raise CacheError("redis down")

        def _get(self, key):
            raise CacheError("redis down")

    alerts = dispatcher(cache=Broken())
    skipped = alerts.dispatch(opportunities({"opportunity_id": "o1"}))
    assert skipped.sent == {} and "cache unavailable" in skipped.errors[0]
    error = alerts.system_error("redis down", "cache unreachable")
    assert error.sent == {"system_error": 1} and error.errors


def test_channels_come_from_their_urls_and_bad_urls_are_skipped(
    monkeypatch, caplog, duckdb_warehouse
):
    with caplog.at_level(logging.WARNING, logger="arbx.alerts"):
        channels = channels_from_urls("json://127.0.0.1:9/a  ntfy://mytopic, notaurl://x")
    assert [c.name.split(":")[0] for c in channels] == ["json", "ntfys"]  # ntfy is https
    assert "not a valid Apprise URL" in caplog.text
    assert channels_from_urls(None) == []
    # The resource takes its URLs from the environment only when not configured.
    monkeypatch.setenv("ARBX_ALERT_URLS", "json://127.0.0.1:9/a")
    memory = MemoryCache()
    assert len(AlertsResource().dispatcher(memory, duckdb_warehouse, NOW_CLOCK).channels) == 1
    assert AlertsResource(urls="").dispatcher(memory, duckdb_warehouse, NOW_CLOCK).channels == []
