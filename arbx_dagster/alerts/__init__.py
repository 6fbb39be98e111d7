"""Alerts, Dagster-free: what to tell users, once, through the channels they configured.

* ``messages``   — the alerts users know (🎯 💰 📈 🚨 🔔), Chilean formatting;
* ``policy``     — no spam: once, again only if materially better, hysteresis, cooldown;
* ``rules``      — watch rules (target price, % drop, N-day low, back in stock) in bulk;
* ``channels``   — Apprise URLs from ``ARBX_ALERT_URLS`` plus the log, retries, deadline;
* ``dispatcher`` — ``AlertDispatcher``: the one entry point the pipeline calls.
"""

from arbx_dagster.alerts.channels import (
    AppriseChannel,
    Channel,
    Delivery,
    LogChannel,
    channels_from_urls,
    parse_channel_urls,
)
from arbx_dagster.alerts.dispatcher import AlertDispatcher, AlertMemory, DispatchReport
from arbx_dagster.alerts.messages import Alert
from arbx_dagster.alerts.rules import (
    WATCH_HIT_SCHEMA,
    WATCH_RULE_SCHEMA,
    WatchRule,
    evaluate_watch_rules,
    rules_frame,
    rules_from_frame,
    rules_from_json,
    rules_to_json,
)

__all__ = [
    "WATCH_HIT_SCHEMA",
    "WATCH_RULE_SCHEMA",
    "Alert",
    "AlertDispatcher",
    "AlertMemory",
    "AppriseChannel",
    "Channel",
    "Delivery",
    "DispatchReport",
    "LogChannel",
    "WatchRule",
    "channels_from_urls",
    "evaluate_watch_rules",
    "parse_channel_urls",
    "rules_frame",
    "rules_from_frame",
    "rules_from_json",
    "rules_to_json",
]
