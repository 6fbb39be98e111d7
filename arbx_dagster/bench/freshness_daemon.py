"""``arbx bench freshness --daemon``: seconds from a price change to its opportunity in the
API, its alert and its SSE event, through a real deployment.

A one-day market of N listings is dropped into a landing folder of a fresh `arbx up`
(webserver, daemon and API on PostgreSQL + Redis) and processed by the daemon alone (the
file-drop sensor, then the automation). Once it is idle, K changed prices are posted to the
signed webhook; from the moment each delivery is accepted, the bench watches three things
at once: ``/api/opportunities`` (asked per changed listing), the SSE stream
(``/api/sse/updates``) and a local alert channel (Apprise ``json://``). A change counts when
an opportunity buying at the changed listing at its new price shows up; the planted
spreads and glitches are what is waited for (an ordinary move or a new listing need not
open anything). Sensor intervals, the run queue's limits and the step executor are part
of the result: they are part of the latency.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import yaml

from arbx_dagster.bench.deployment import WEBHOOK_SECRET, Deployment, deployment
from arbx_dagster.bench.freshness import plant_changes
from arbx_dagster.bench.scale import GAP_RATE
from arbx_dagster.domain.glitch_confirmation import must_confirm
from arbx_dagster.domain.history import market_day
from arbx_dagster.domain.simulator import simulate_snapshot
from arbx_dagster.ingestion.webhook_signature import sign
from arbx_dagster.settings import Settings

WAITED_FOR = ("spread", "glitch")  # the planted changes that must open an opportunity
CHANNELS = ("api", "alert", "sse")
# What a webhook observation may carry of a simulated one (see service/webhooks.py).
FIELDS = [
    "retailer", "sku", "observed_at", "name", "price_list", "price_offer", "price_card",
    "in_stock", "stock_qty", "url", "product_id", "variant", "brand", "model", "ean",
    "category", "card_program", "seller", "is_first_party", "condition", "listing_rank",
]  # fmt: skip
BATCH = 1_000  # observations per webhook delivery
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
SKUS_PER_REQUEST = 100  # as many listings as /api/opportunities takes in one request


def _iso(column: str) -> pl.Expr:
    return pl.col(column).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")


def drop_market(initial: pl.DataFrame, landing: Path) -> list[Path]:
    """The initial market as JSON-lines exports, one per retailer and market day, in the
    landing folder (as a scraper's bulk export would arrive)."""
    rows = initial.select(FIELDS).with_columns(
        _day=market_day(pl.col("observed_at")), observed_at=_iso("observed_at")
    )
    written = []
    for (retailer, day), part in rows.group_by("retailer", "_day"):
        path = landing / str(retailer) / f"market-{day}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop("_day").write_ndjson(path.with_suffix(".part"))
        path.with_suffix(".part").rename(path)
        written.append(path)
    return written


def _post(client: httpx.Client, url: str, rows: pl.DataFrame) -> None:
    records = [
        {k: v for k, v in row.items() if v is not None}
        for row in rows.select(FIELDS).with_columns(observed_at=_iso("observed_at")).to_dicts()
    ]
    body = json.dumps({"source": "bench", "observations": records}).encode()
    answer = client.post(
        f"{url}/api/webhooks/prices",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Arbx-Signature": sign(WEBHOOK_SECRET, body),
        },
    )
    if answer.status_code != 202:
        raise RuntimeError(f"webhook refused the changes: {answer.status_code} {answer.text}")


class EventTail:
    """The SSE stream read in a thread: every ``opportunity.*`` event with the monotonic
    time it arrived."""

    def __init__(self, live: Deployment) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._live, self._stop = live, threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        url = f"{self._live.api_url}/api/sse/updates"
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=None)) as client,
            client.stream("GET", url, headers=self._live.headers) as stream,
        ):
            kind = ""
            for line in stream.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:") and kind.startswith("opportunity."):
                    self.events.append((time.monotonic(), json.loads(line[5:])))

    def close(self) -> None:
        self._stop.set()


def _opens(row: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether an opportunity row buys at the changed listing at its new price."""
    return (
        row.get("buy_retailer") == target["retailer"]
        and row.get("buy_sku") == target["sku"]
        and row.get("buy_price") == target["price"]
    )


def _api_sees(
    client: httpx.Client, live: Deployment, targets: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    """The opportunity the API lists for each change, where it does yet: one request for up
    to ``SKUS_PER_REQUEST`` listings (as a dashboard watching them would ask), not one per
    listing, so the bench's own load stays off the machine it measures."""
    params: dict[str, Any] = {
        "sku": sorted({t["sku"] for t in targets}),
        "status": "live",
        "limit": 200,
    }
    items: list[dict[str, Any]] = []
    while True:
        answer = client.get(
            f"{live.api_url}/api/opportunities", params=params, headers=live.headers
        )
        answer.raise_for_status()
        page = answer.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    return [next((item for item in items if _opens(item, t)), None) for t in targets]


def alertable(item: dict[str, Any]) -> bool:
    """Whether an opportunity is one the dispatcher sends at once: not held for review, and
    not a glitch that waits for its re-fetch (which cannot reach a simulated store)."""
    return item.get("review") is None and not must_confirm(
        item.get("kind"), item.get("severity"), item.get("glitch_type")
    )


def _alert_opens(body: dict[str, Any], target: dict[str, Any]) -> bool:
    """An alert names the listing by its URL (the message's last line)."""
    return bool(target["url"]) and target["url"] in str(body.get("message", ""))


class Arrivals:
    """Matches what arrives on a channel (SSE events, alerts) to the targets, reading only
    what arrived since the last look."""

    def __init__(self, targets: list[dict[str, Any]], opens: Callable[..., bool]) -> None:
        self.targets, self.opens, self.read = targets, opens, 0
        self.by_listing: dict[tuple[str, str], list[int]] = {}
        for i, t in enumerate(targets):
            self.by_listing.setdefault((t["retailer"], t["sku"]), []).append(i)

    def update(
        self, arrivals: list[tuple[float, dict[str, Any]]], landed_at: float, seen: dict[int, float]
    ) -> None:
        new, self.read = arrivals[self.read :], len(arrivals)
        for at, body in new:
            candidates = self.by_listing.get((body.get("buy_retailer"), body.get("buy_sku")))
            if candidates is None:  # an alert: no listing fields, its text names the URL
                candidates = range(len(self.targets))
            for i in candidates:
                if i not in seen and at >= landed_at and self.opens(body, self.targets[i]):
                    seen[i] = at - landed_at


def settled(runs: list[dict[str, Any]], since: float) -> bool:
    """Whether the changes' runs are over: a run after the ingestion ones, and none going."""
    after = [r for r in runs if (r.get("created_at") or 0) >= since]
    downstream = any(r["job_name"] != "ingest_files" for r in after)
    return downstream and all(r["status"] in FINISHED for r in runs)


def watch(
    live: Deployment,
    targets: list[dict[str, Any]],
    landed: tuple[float, float],
    deadline: float,
    quiet: float,
) -> tuple[dict[str, dict[int, float]], int]:
    """Seconds after ``landed`` (monotonic, wall-clock) each target was first seen, per
    channel (index -> seconds), and how many targets' opportunities are sent at once
    (:func:`alertable`): until every channel saw what it should, or the changes' runs have
    been over for ``quiet`` seconds (nothing more is coming), or ``deadline``."""
    landed_at, landed_wall = landed
    seen: dict[str, dict[int, float]] = {c: {} for c in CHANNELS}
    listed: dict[int, dict[str, Any]] = {}  # what the API showed of each target
    tail = EventTail(live)
    stream, inbox = Arrivals(targets, _opens), Arrivals(targets, _alert_opens)
    over_since: float | None = None
    try:
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
            while time.monotonic() < deadline:
                now = time.monotonic()
                waiting = [i for i in range(len(targets)) if i not in seen["api"]]
                batches = [
                    waiting[at : at + SKUS_PER_REQUEST]
                    for at in range(0, len(waiting), SKUS_PER_REQUEST)
                ]
                answers = pool.map(
                    lambda batch: _api_sees(client, live, [targets[i] for i in batch]), batches
                )
                for batch, hits in zip(batches, answers, strict=True):
                    for i, item in zip(batch, hits, strict=True):
                        if item is not None:
                            seen["api"][i], listed[i] = now - landed_at, item
                stream.update(list(tail.events), landed_at, seen["sse"])
                inbox.update(live.alerts.since(landed_at), landed_at, seen["alert"])
                expected = {"api": len(targets), "sse": len(targets)}
                expected["alert"] = sum(alertable(item) for item in listed.values())
                if len(listed) == len(targets) and all(
                    len(seen[c]) >= expected[c] for c in CHANNELS
                ):
                    break
                if settled(_runs(client, live), landed_wall):
                    over_since = over_since or now
                    if now - over_since >= quiet:
                        break
                else:
                    over_since = None
                time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    finally:
        tail.close()
    return seen, sum(alertable(item) for item in listed.values())


def _runs(client: httpx.Client, live: Deployment) -> list[dict[str, Any]]:
    answer = client.get(
        f"{live.api_url}/api/pipeline/status", params={"limit": 100}, headers=live.headers
    )
    answer.raise_for_status()
    return answer.json()["runs"]


def wait_until_idle(live: Deployment, quiet: float, deadline: float) -> list[dict[str, Any]]:
    """Once opportunities exist and no run has been going or queued for ``quiet`` seconds
    (longer than the sensors' intervals, so nothing is about to start): the runs."""
    calm_since: float | None = None
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            runs = _runs(client, live)
            page = client.get(
                f"{live.api_url}/api/opportunities", params={"limit": 1}, headers=live.headers
            )
            ready = page.status_code == 200 and page.json()["count"] > 0
            idle = bool(runs) and all(r["status"] in FINISHED for r in runs)
            if ready and idle:
                calm_since = calm_since or time.monotonic()
                if time.monotonic() - calm_since >= quiet:
                    return runs
            else:
                calm_since = None
            time.sleep(2)
    raise TimeoutError("the deployment did not finish processing the market in time")


def _targets(landed: pl.DataFrame, planted: pl.DataFrame) -> list[dict[str, Any]]:
    waited = planted.filter(pl.col("kind").is_in(WAITED_FOR)).select("retailer", "sku", "kind")
    return (
        landed.join(waited, on=["retailer", "sku"])
        .select("retailer", "sku", "kind", "url", price="price_offer")
        .sort("retailer", "sku")
        .to_dicts()
    )


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    array = np.array(values)
    return {
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "max": round(float(array.max()), 2),
    }


def _runs_after(runs: list[dict[str, Any]], since: float) -> list[dict[str, Any]]:
    """The runs the changes set off: job, seconds queued and seconds running."""
    after = [r for r in runs if (r.get("created_at") or 0) >= since]
    return [
        {
            "job": r["job_name"],
            "status": r["status"],
            "queued_s": round((r.get("started_at") or r["created_at"]) - r["created_at"], 2),
            "ran_s": round((r.get("ended_at") or 0) - (r.get("started_at") or 0), 2)
            if r.get("ended_at")
            else None,
        }
        for r in sorted(after, key=lambda r: r["created_at"])
    ]


MARKET_SPAN = timedelta(minutes=50)


def as_of_now(observations: pl.DataFrame) -> pl.DataFrame:
    """The simulated day's observations moved into the last ``MARKET_SPAN`` before now, in
    the same order (today's prices, and mostly one market day: one file per retailer)."""
    times = pl.col("observed_at")
    end = datetime.now(UTC) - timedelta(minutes=2)
    span = (times.max() - times.min()).dt.total_microseconds().clip(lower_bound=1)
    before_end = (times.max() - times).dt.total_microseconds() / span
    offset = (before_end * MARKET_SPAN.total_seconds() * 1e6).cast(pl.Int64)
    return observations.with_columns(
        observed_at=(pl.lit(end) - pl.duration(microseconds=offset)).dt.cast_time_unit("us")
    )


def run_queue_settings() -> dict[str, Any]:
    """The deployment's run queue, as its ``dagster.yaml`` sets it."""
    config = yaml.safe_load((resources.files("arbx_dagster") / "dagster.yaml").read_text())
    return {
        "max_concurrent_runs": config["concurrency"]["runs"]["max_concurrent_runs"],
        "run_queue": config.get("run_queue", {}),
    }


def deployment_intervals(sensor_seconds: int | None) -> dict[str, int]:
    """How often the sensors look: ``sensor_seconds`` for both, else a deployment's
    defaults (``ARBX_FILE_DROP_INTERVAL_SECONDS``, ``ARBX_AUTOMATION_INTERVAL_SECONDS``)."""
    if sensor_seconds is not None:
        return {"file_drop": sensor_seconds, "automation": sensor_seconds}
    fields = Settings.model_fields
    return {
        "file_drop": int(fields["file_drop_interval_seconds"].default),
        "automation": int(fields["automation_interval_seconds"].default),
    }


def run_freshness_daemon(
    listings: int,
    changes: int,
    *,
    postgres_url: str,
    redis_url: str,
    seed: int = 7,
    sensor_seconds: int | None = None,
    timeout: float = 1_800,
    logs: Path | None = None,
    progress: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """Measure the seconds from K changed prices reaching the webhook to each one's
    opportunity in the API, its alert and its SSE event, on a deployment of N listings
    (``logs``: where to keep the deployment's logs)."""
    started = time.monotonic()
    progress("generate")
    market = simulate_snapshot(listings, seed=seed, gap_rate=GAP_RATE)
    initial, landed, planted = plant_changes(
        market.observations, market.truth_listings, changes, seed
    )
    initial = as_of_now(initial)
    intervals = deployment_intervals(sensor_seconds)
    quiet = 3 * max(intervals.values())
    with deployment(postgres_url, redis_url, intervals, logs=logs) as live:
        progress("first pass (the daemon processes the dropped market)")
        drop_market(initial, live.landing)
        first_runs = wait_until_idle(live, quiet=quiet, deadline=started + timeout)
        first_pass = time.monotonic() - started
        targets = _targets(landed, planted)
        progress(f"{len(targets)} changes awaited")
        landed_wall = time.time()
        landed_at = time.monotonic()
        moved = landed.with_columns(observed_at=pl.lit(datetime.now(UTC)).dt.cast_time_unit("us"))
        with httpx.Client(timeout=60) as client:
            for start in range(0, moved.height, BATCH):
                _post(client, live.api_url, moved.slice(start, BATCH))
        accepted = time.monotonic() - landed_at
        seen, sent_at_once = watch(
            live,
            targets,
            (landed_at, landed_wall),
            deadline=landed_at + min(600.0, timeout),
            quiet=quiet,
        )
        with httpx.Client(timeout=30) as client:
            runs = _runs_after(_runs(client, live), landed_wall)
    return {
        "listings": int(market.observations.height),
        "changes": planted.height,
        "warehouse": "postgres",
        "daemon": True,
        "awaited": {kind: sum(t["kind"] == kind for t in targets) for kind in WAITED_FOR},
        "seen": {c: len(seen[c]) for c in CHANNELS},
        # Listed, not held for review and not waiting for a re-fetch: sent at once.
        "alertable": sent_at_once,
        "seen_by_kind": {
            c: {k: sum(targets[i]["kind"] == k for i in seen[c]) for k in WAITED_FOR}
            for c in CHANNELS
        },
        "seconds": {
            **{c: _percentiles(list(seen[c].values())) for c in CHANNELS},
            "webhook_accepted": round(accepted, 2),
            "first_pass": round(first_pass, 1),
        },
        "runs_after_changes": runs,
        "first_pass_runs": len(first_runs),
        "settings": {
            "file_drop_interval_seconds": intervals["file_drop"],
            "automation_interval_seconds": intervals["automation"],
            "step_executor": "in_process",
            **run_queue_settings(),
        },
    }
