"""How check outcomes become 🚨 alerts, which checks block, and the match-model floor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alert_inbox import Inbox

from arbx_dagster.alerts import AlertDispatcher
from arbx_dagster.pipeline import quality_checks as q
from arbx_dagster.storage.cache import MemoryCache

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


def dispatcher(inbox: Inbox) -> AlertDispatcher:
    return AlertDispatcher(MemoryCache(), [inbox], lambda: NOW, backoff_seconds=0.01)


def test_a_check_failing_at_error_raises_one_system_alert() -> None:
    inbox = Inbox()
    alerts = dispatcher(inbox)
    outcome = q.CheckOutcome(False, "3 retailer-day(s) under 50%", "error")
    report = q.alert_if_failed("volume_versus_recent_days", outcome, alerts, run_id="r-1")
    assert report is not None and report.sent == {"system_error": 1}
    (alert,) = inbox.alerts
    assert alert.title.startswith("🚨") and "volume_versus_recent_days" in alert.title
    assert "3 retailer-day(s) under 50%" in alert.body
    # The same check failing again within the cooldown is not sent twice.
    again = q.alert_if_failed("volume_versus_recent_days", outcome, alerts, run_id="r-2")
    assert again is not None and again.suppressed == {"cooldown": 1}
    assert len(inbox.alerts) == 1


@pytest.mark.parametrize(
    "outcome",
    [q.CheckOutcome(False, "a spike", "warn"), q.CheckOutcome(True, "fine", "error")],
    ids=["warn failure", "pass"],
)
def test_warnings_and_passes_raise_no_alert(outcome: q.CheckOutcome) -> None:
    inbox = Inbox()
    assert q.alert_if_failed("quarantine_rate", outcome, dispatcher(inbox)) is None
    assert inbox.alerts == []


def test_a_match_model_below_its_floors_fails_at_error() -> None:
    weak = q.match_model_is_accurate({"precision": 0.97, "recall": 0.6, "valid_pairs": 900})
    assert not weak.passed and weak.severity == "error"
    assert weak.summary == "validation recall 0.600 < 0.85"
    good = q.match_model_is_accurate({"precision": 0.965, "recall": 0.977})
    assert good.passed
    assert not q.match_model_is_accurate({}).passed  # a model that reports nothing


def test_the_checks_that_guard_downstream_are_blocking() -> None:
    from arbx_dagster.assets import ALL_CHECKS

    blocking = {spec.name: spec.blocking for check in ALL_CHECKS for spec in check.check_specs}
    assert {name for name, blocks in blocking.items() if blocks} == {
        "raw_prices_are_plausible",
        "quarantine_rate",
        "listings_have_unique_keys",
        "match_model_is_accurate",
        "one_listing_per_retailer",
        "price_history_is_plausible",
        "closes_come_from_successful_fetches",
    }
    assert len(blocking) == 13
