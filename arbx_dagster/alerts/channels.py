"""Where alerts go: Apprise (one URL per channel) and, always, the log.

``ARBX_ALERT_URLS`` holds Apprise URLs separated by commas or whitespace — Slack, Telegram,
Discord, e-mail, ntfy, a generic JSON webhook (``json://host:port/path``)… one channel each,
so one failing channel is retried and reported on its own. Nothing configured means alerts
are only logged.

Delivery never blocks the pipeline: each channel works through its alerts in its own daemon
thread, retrying a failure with exponential backoff (``backoff``, ``2 x backoff``…, up to
``attempts`` tries), and everything stops at a deadline (a retry that would start past it
is not waited for). A channel that exhausts its retries is skipped for the rest of the
batch (it is down; hammering it helps no one). What was not delivered is reported, never
raised.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tenacity import (
    Retrying,
    stop_after_attempt,
    stop_before_delay,
    stop_when_event_set,
    wait_exponential,
)

from arbx_dagster.alerts.messages import Alert

log = logging.getLogger("arbx.alerts")

ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
DEADLINE_SECONDS = 20.0
ATTEMPT_TIMEOUT_SECONDS = 8.0


class DeliveryError(RuntimeError):
    """A channel did not accept an alert."""


class Channel(Protocol):
    name: str

    def send(self, alert: Alert, timeout: float) -> None:
        """Deliver or raise :class:`DeliveryError` (``timeout``: seconds for this attempt)."""


class AppriseChannel:
    """One Apprise URL. Its name is the URL with secrets masked (safe to log)."""

    def __init__(self, url: str) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ValueError(f"not a valid Apprise URL: {_mask(url)}")
        service = next(iter(self._apprise))
        self.name: str = service.url(privacy=True)

    def send(self, alert: Alert, timeout: float) -> None:
        result = self._apprise.notify(
            body=alert.body, title=alert.title, notify_type=alert.notify_type, timeout=timeout
        )
        if not result:
            messages = [entry.message for entry in result.logs()]
            raise DeliveryError("; ".join(messages) or f"{self.name} refused the notification")


class LogChannel:
    """The log: every alert is written here, whatever else happens."""

    name = "log"

    def send(self, alert: Alert, timeout: float) -> None:
        del timeout
        log.info("%s | %s", alert.title, alert.body.replace("\n", " | "))


def _mask(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url.split("?")[0])


def parse_channel_urls(text: str | None) -> tuple[list[AppriseChannel], list[str]]:
    """Channels from comma/space separated Apprise URLs, and the problems with bad ones."""
    channels, problems = [], []
    for url in re.split(r"[\s,]+", text or ""):
        if not url:
            continue
        try:
            channels.append(AppriseChannel(url))
        except ValueError as exc:
            problems.append(str(exc))
    return channels, problems


def channels_from_urls(text: str | None) -> list[AppriseChannel]:
    """The channels of ``text`` (``ARBX_ALERT_URLS``); bad URLs are logged and skipped."""
    channels, problems = parse_channel_urls(text)
    for problem in problems:
        log.warning("alert channel ignored: %s", problem)
    return channels


@dataclass(frozen=True)
class Delivery:
    """What happened to one alert on one channel."""

    channel: str
    alert_key: str
    kind: str
    ok: bool
    attempts: int
    error: str | None = None


def deliver(
    alerts: Sequence[Alert],
    channels: Sequence[Channel],
    *,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF_SECONDS,
    deadline_seconds: float = DEADLINE_SECONDS,
    attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send every alert to every channel, retrying with backoff, done by the deadline."""
    if not alerts or not channels:
        return []
    deadline = time.monotonic() + deadline_seconds
    results: list[Delivery] = []
    lock = threading.Lock()
    stop = threading.Event()

    def record(delivery: Delivery) -> None:
        with lock:
            results.append(delivery)

    def send(channel: Channel, alert: Alert) -> tuple[int, str | None]:
        """(tries, the last error or None): retried until ``attempts`` tries, or until the
        next wait would reach the deadline."""
        retrying = Retrying(
            stop=(
                stop_after_attempt(attempts)
                | stop_when_event_set(stop)
                | stop_before_delay(deadline - time.monotonic())
            ),
            wait=wait_exponential(multiplier=backoff),
            sleep=sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    timeout = min(attempt_timeout, deadline - time.monotonic())
                    channel.send(alert, timeout=timeout)
        except Exception as exc:  # a channel must never take the dispatcher down
            return attempt.retry_state.attempt_number, f"{type(exc).__name__}: {exc}"
        return attempt.retry_state.attempt_number, None

    def work(channel: Channel) -> None:
        down: str | None = None  # set once the channel has exhausted its retries
        for alert in alerts:
            if stop.is_set() or deadline - time.monotonic() <= 0:
                return  # what is left is reported as late
            if down is not None:
                record(Delivery(channel.name, alert.key, alert.kind, False, 0, f"skipped: {down}"))
                continue
            tries, error = send(channel, alert)
            record(Delivery(channel.name, alert.key, alert.kind, error is None, tries, error))
            if error is not None and tries < attempts:
                return  # out of time before its retries were done: the rest is late
            if error is not None:
                down = f"channel failing ({error})"

    threads = [
        threading.Thread(target=work, args=(c,), name=f"alert:{c.name}", daemon=True)
        for c in channels
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0) + 0.05)
    stop.set()
    with lock:
        done = {(d.channel, d.alert_key) for d in results}
        late = [
            Delivery(c.name, a.key, a.kind, False, 0, "deadline reached")
            for c in channels
            for a in alerts
            if (c.name, a.key) not in done
        ]
        return [*results, *late]
