"""The Dagster-free entry point: decide which alerts to send, send them, report.

    dispatcher = AlertDispatcher(cache, channels_from_urls(urls), thresholds=thresholds)
    report = dispatcher.dispatch(opportunity_state, confirmed=confirmed_glitch_ids)
    report = dispatcher.dispatch_watch(evaluate_watch_rules(rules, listings, history, now))
    report = dispatcher.system_error("run failed", "stage opportunities: ...", run_id=run_id)

Dedup and cooldown live in an :class:`AlertMemory` under ``alert:*`` keys, so they hold
across runs and workers (rules: ``policy.py``): Redis when configured, otherwise the
warehouse (``alerts.store.alert_memory``), never a per-run in-process cache that
would forget everything between runs. Any ``Cache`` is an ``AlertMemory``. If every
configured channel fails to take an alert, its claim is rolled back so the next run retries
it; the log always has it. A cache that cannot be reached skips opportunity and watch alerts
(no dedup means spam) and is reported; system errors are still sent.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from arbx_dagster.alerts.channels import (
    ATTEMPTS,
    BACKOFF_SECONDS,
    DEADLINE_SECONDS,
    Channel,
    Delivery,
    LogChannel,
    deliver,
)
from arbx_dagster.alerts.messages import (
    DIGEST_ABOVE,
    Alert,
    digests,
    opportunity_alert,
    system_error_alert,
    watch_alert,
)
from arbx_dagster.alerts.policy import (
    COOLDOWN_SECONDS,
    STATE_TTL_SECONDS,
    AlertState,
    decide,
)
from arbx_dagster.alerts.rules import REFIRE_DROP
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_confirmation import must_confirm
from arbx_dagster.storage.cache import CacheError

ERROR_COOLDOWN_SECONDS = 3600  # the same system error is sent at most once an hour
WATCH_COOLDOWN_SECONDS = 3600
WATCH_STATE_TTL_SECONDS = 90 * 86400


class AlertMemory(Protocol):
    """What the dispatcher needs to remember alerts: keys with a time to live, and an atomic
    set-if-absent (two workers never both claim one alert). Raises ``CacheError`` when it
    cannot be reached."""

    def get(self, name: str) -> str | None: ...

    def get_many(self, names: Sequence[str]) -> list[str | None]: ...

    def set(self, name: str, value: str, ttl_seconds: float | None = None) -> None: ...

    def add(self, name: str, value: str, ttl_seconds: float | None = None) -> bool: ...

    def delete(self, *names: str) -> int: ...


@dataclass
class DispatchReport:
    """What one dispatch did, ready for run metadata."""

    sent: Counter[str] = field(default_factory=Counter)  # by alert kind
    suppressed: Counter[str] = field(default_factory=Counter)  # by reason
    failures: list[Delivery] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    messages: int = 0  # messages sent per channel (a digest carries several alerts)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def as_metadata(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "suppressed": dict(self.suppressed),
            "failures": [
                {"channel": f.channel, "alert": f.alert_key, "error": f.error}
                for f in self.failures
            ],
            "errors": self.errors,
            "messages": self.messages,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _Claim:
    """An alert this dispatcher claimed, and how to undo the claim if nobody got it."""

    alert: Alert
    keys: tuple[str, ...]  # cache keys to delete on rollback
    restore: tuple[tuple[str, str, float], ...] = ()  # (key, previous value, ttl) to put back


class AlertDispatcher:
    """Turns opportunities, watch-rule hits and errors into delivered alerts, without spam."""

    def __init__(
        self,
        cache: AlertMemory,
        channels: Sequence[Channel] = (),
        clock: Callable[[], datetime] | None = None,
        *,
        thresholds: Thresholds | None = None,
        cooldown_seconds: float = COOLDOWN_SECONDS,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.cache = cache
        self.channels = list(channels)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.thresholds = thresholds or Thresholds()
        self.cooldown_seconds = cooldown_seconds
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.deadline_seconds = deadline_seconds
        self._log = LogChannel()

    # -- opportunities ---------------------------------------------------------------------

    def dispatch(
        self, opportunities: pl.DataFrame, confirmed: Iterable[str] = ()
    ) -> DispatchReport:
        """Alert on open opportunities (OPPORTUNITY_SCHEMA rows, lifecycle ``status`` optional).

        Expired rows are ignored. A high-severity glitch, or a pack-size or currency one,
        alerts only once re-fetched and confirmed: its id must be in ``confirmed`` (see
        ``glitch_confirmation.must_confirm`` and ``glitch_confirmation.confirm_glitches``).
        """
        started = time.perf_counter()
        report = DispatchReport()
        confirmed_ids = set(confirmed)
        now_iso = self.clock().isoformat()
        claims: list[_Claim] = []
        rows = opportunities
        if "status" in rows.columns:
            rows = rows.filter(pl.col("status") != "expired")
        try:
            eligible = []
            for row in rows.iter_rows(named=True):
                if (
                    must_confirm(row.get("kind"), row.get("severity"), row.get("glitch_type"))
                    and row["opportunity_id"] not in confirmed_ids
                ):
                    report.suppressed["awaiting_confirmation"] += 1
                    continue
                eligible.append(row)
            # What was last alerted of each, read at once (tens of thousands stay open).
            memory = self.cache.get_many([_state_key(r["opportunity_id"]) for r in eligible])
            for row, previous_text in zip(eligible, memory, strict=True):
                claim = self._claim_opportunity(row, previous_text, now_iso, report)
                if claim is not None:
                    claims.append(claim)
        except CacheError as exc:
            report.errors.append(f"cache unavailable, opportunity alerts skipped: {exc}")
        return self._send(claims, report, started)

    def _claim_opportunity(
        self,
        row: dict[str, Any],
        previous_text: str | None,
        now_iso: str,
        report: DispatchReport,
    ) -> _Claim | None:
        oid = row["opportunity_id"]
        state_key, cooldown_key = _state_key(oid), f"alert:cooldown:{oid}"
        previous = AlertState.from_json(previous_text)
        decision = decide(row, previous, self.thresholds, now_iso)
        if not decision.send:
            if previous is not None and decision.state.badges != previous.badges:
                self.cache.set(state_key, decision.state.to_json(), STATE_TTL_SECONDS)
            report.suppressed[decision.reason] += 1
            return None
        if not self.cache.add(cooldown_key, now_iso, self.cooldown_seconds):
            report.suppressed["cooldown"] += 1
            return None
        self.cache.set(state_key, decision.state.to_json(), STATE_TTL_SECONDS)
        alert = opportunity_alert(
            row,
            decision.kind,
            list(decision.badges),
            decision.improved,
            self.thresholds.currency,
        )
        restore = ((state_key, previous_text, STATE_TTL_SECONDS),) if previous_text else ()
        keys = (cooldown_key,) if previous_text else (cooldown_key, state_key)
        return _Claim(alert, keys, restore)

    # -- watch rules -----------------------------------------------------------------------

    def dispatch_watch(self, hits: pl.DataFrame) -> DispatchReport:
        """Alert on watch-rule hits (``rules.evaluate_watch_rules``); re-arm cleared ones."""
        started = time.perf_counter()
        report = DispatchReport()
        claims: list[_Claim] = []
        now_iso = self.clock().isoformat()
        try:
            rearmed = hits.filter(pl.col("rearm") & ~pl.col("hit"))
            keys = [self._watch_key(r) for r in rearmed.iter_rows(named=True)]
            if keys:
                self.cache.delete(*keys)
                report.suppressed["rearmed"] += len(keys)
            for row in hits.filter(pl.col("hit")).iter_rows(named=True):
                claim = self._claim_watch(row, now_iso, report)
                if claim is not None:
                    claims.append(claim)
        except CacheError as exc:
            report.errors.append(f"cache unavailable, watch alerts skipped: {exc}")
        return self._send(claims, report, started)

    @staticmethod
    def _watch_key(row: dict[str, Any]) -> str:
        return f"alert:watch:{row['rule_id']}:{row['retailer']}:{row['sku']}"

    def _claim_watch(
        self, row: dict[str, Any], now_iso: str, report: DispatchReport
    ) -> _Claim | None:
        key = self._watch_key(row)
        price = int(row["price"])
        fired_text = self.cache.get(key)
        if fired_text is None:
            # Armed: whoever sets the key first fires (atomic across workers).
            if not self.cache.add(key, str(price), WATCH_STATE_TTL_SECONDS):
                report.suppressed["duplicate"] += 1
                return None
            return _Claim(watch_alert(row, self.thresholds.currency), (key,))
        if price > int(fired_text) * (1 - REFIRE_DROP):
            report.suppressed["already_fired"] += 1
            return None
        claim_key = f"{key}:drop:{price}"
        if not self.cache.add(claim_key, now_iso, WATCH_COOLDOWN_SECONDS):
            report.suppressed["duplicate"] += 1
            return None
        self.cache.set(key, str(price), WATCH_STATE_TTL_SECONDS)
        restore = ((key, fired_text, WATCH_STATE_TTL_SECONDS),)
        return _Claim(watch_alert(row, self.thresholds.currency), (claim_key,), restore)

    # -- system errors ---------------------------------------------------------------------

    def system_error(
        self,
        title: str,
        detail: str = "",
        *,
        key: str | None = None,
        run_id: str | None = None,
        cooldown_seconds: float = ERROR_COOLDOWN_SECONDS,
    ) -> DispatchReport:
        """🚨 for a failed run or a failed blocking check; the same ``key`` (default: the
        title) alerts at most once per ``cooldown_seconds``."""
        started = time.perf_counter()
        report = DispatchReport()
        key = key or hashlib.sha256(title.encode()).hexdigest()[:16]
        alert = system_error_alert(title, detail, key, run_id)
        dedup_key = f"alert:error:{key}"
        try:
            if not self.cache.add(dedup_key, self.clock().isoformat(), cooldown_seconds):
                report.suppressed["cooldown"] += 1
                return self._send([], report, started)
        except CacheError as exc:  # better a duplicate than a silent outage
            report.errors.append(f"cache unavailable, error alert sent without dedup: {exc}")
            return self._send([_Claim(alert, ())], report, started)
        return self._send([_Claim(alert, (dedup_key,))], report, started)

    # -- delivery --------------------------------------------------------------------------

    def _send(self, claims: list[_Claim], report: DispatchReport, started: float) -> DispatchReport:
        """Deliver the claimed alerts (as digests when there are more than ``DIGEST_ABOVE``:
        a channel takes a few messages a second, and a burst would spam and outlast the
        deadline); an alert counts as delivered when the message carrying it was."""
        alerts = [c.alert for c in claims]
        for alert in alerts:
            self._log.send(alert, 0)
        carried = digests(alerts) if len(alerts) > DIGEST_ABOVE else [(a, [a]) for a in alerts]
        deliveries = deliver(
            [message for message, _ in carried],
            self.channels,
            attempts=self.attempts,
            backoff=self.backoff_seconds,
            deadline_seconds=self.deadline_seconds,
        )
        accepted = {d.alert_key for d in deliveries if d.ok}
        delivered = {
            a.key for message, inside in carried if message.key in accepted for a in inside
        }
        report.messages = len(carried)
        for claim in claims:
            if self.channels and claim.alert.key not in delivered:
                self._rollback(claim, report)
            else:
                report.sent[claim.alert.kind] += 1
        report.alerts.extend(alerts)
        report.deliveries.extend(deliveries)
        report.failures.extend(d for d in deliveries if not d.ok)
        report.seconds = time.perf_counter() - started
        return report

    def _rollback(self, claim: _Claim, report: DispatchReport) -> None:
        """Nobody got the alert: release its claim so the next run tries again."""
        report.suppressed["undelivered"] += 1
        try:
            if claim.keys:
                self.cache.delete(*claim.keys)
            for key, value, ttl in claim.restore:
                self.cache.set(key, value, ttl)
        except CacheError as exc:
            report.errors.append(f"could not release alert {claim.alert.key}: {exc}")


def _state_key(opportunity_id: str) -> str:
    """Where what was last alerted of an opportunity is remembered (``policy.AlertState``)."""
    return f"alert:state:{opportunity_id}"
