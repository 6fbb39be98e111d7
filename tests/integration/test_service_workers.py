"""``arbx serve --workers 2`` as a real process on PostgreSQL + Redis: both workers
answer (keys from ARBX_API_KEYS and from ``arbx serve --issue-key``), a rate limit is one
budget for the whole service, an event reaches live clients of either worker and a client
resuming with Last-Event-ID, Ctrl-C stops everything at once, streams open, and no key
reaches the log, not even one put in a URL; ``/metrics`` counts every worker's requests
whichever worker answers the scrape. Which worker answered is read from ``/api/metrics``;
an HTTP connection stays with the worker that accepted it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_process import clean_env, free_port
from prometheus_client.parser import text_string_to_metric_families
from service_harness import read_event, session_processes
from typer.testing import CliRunner

from arbx_dagster.cli import app as cli
from arbx_dagster.storage.cache import RedisCache
from arbx_dagster.storage.event_log import RedisEventLog

pytestmark = [pytest.mark.services, pytest.mark.slow]

OPS_KEY = "workers-ops-key-0123456789"
PROBE_KEY = "workers-probe-key-0123456789"
PIN_KEY = "workers-pin-key-0123456789"  # a budget only for pinning clients to workers
LIMIT = 24  # requests per minute per API key, for the whole service


@pytest.fixture
def served(tmp_path: Path, fresh_postgres_url: str, redis_url: str) -> Iterator[dict]:
    prefix = f"arbx-test-workers:{uuid.uuid4().hex[:8]}:"
    env = {
        **clean_env(),
        "ARBX_HOME": str(tmp_path),
        "ARBX_POSTGRES_URL": fresh_postgres_url,
        "ARBX_REDIS_URL": redis_url,
        "ARBX_REDIS_PREFIX": prefix,
        "ARBX_API_KEYS": f"ops={OPS_KEY},probe={PROBE_KEY},pin={PIN_KEY}",
        "ARBX_RATE_LIMIT_PER_KEY": str(LIMIT),
        "ARBX_DAGSTER_URL": "http://127.0.0.1:9",
        "ARBX_RUN_WATCH_SECONDS": "0",
    }
    # A key kept (hashed) in the api_keys table, issued before the service starts.
    issued = CliRunner().invoke(cli, ["serve", "--issue-key", "dashboard"], env=env)
    assert issued.exit_code == 0, issued.output
    table_key = issued.stdout.strip().splitlines()[-1]
    assert table_key.startswith("arbx_")
    port = free_port()
    arbx = Path(sys.executable).with_name("arbx")
    server = subprocess.Popen(
        [str(arbx), "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    cache = RedisCache(redis_url, prefix=prefix)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(server.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while sum("Application startup complete" in line for line in output) < 2:
            assert server.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "both workers did not start:\n" + "".join(output)
            time.sleep(0.25)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        yield {
            "url": url,
            "server": server,
            "cache": cache,
            "output": output,
            "reader": reader,
            "table_key": table_key,
        }
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        cache.delete_matching("*")
        cache.close()


def pinned_to_two_workers(
    url: str, tries: int, keys: tuple[str, ...] = (OPS_KEY,)
) -> dict[int, httpx.Client]:
    """Two one-connection clients, each kept by a different worker (a try costs one
    request of one of ``keys``' rate budgets, taken in turn).

    The workers race to accept each new connection. Closing a surplus client at once
    would keep its worker busy just as the next connection arrives, so it would win that
    race again (once, 16 tries in a row in CI). Surplus clients stay open until the end,
    and a pause between tries lets both workers wait for the next connection.
    """
    clients: dict[int, httpx.Client] = {}
    surplus: list[httpx.Client] = []
    for attempt in range(tries):
        client = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {keys[attempt % len(keys)]}"},
            limits=httpx.Limits(max_connections=1),
            timeout=httpx.Timeout(10, read=20),
        )
        pid = client.get("/api/metrics").json()["service"]["worker_pid"]
        if pid in clients:
            surplus.append(client)
            time.sleep(0.2)
            continue
        clients[pid] = client
        if len(clients) == 2:
            break
    for client in surplus:
        client.close()
    return clients


def test_two_workers_share_rate_limits_and_live_events_through_redis(served: dict) -> None:
    url, server, table_key = served["url"], served["server"], served["table_key"]
    # Tries spread over three keys' budgets (the probe key's stays whole for the limit check
    # below); one key's 16 tries in a row once all landed on one worker on a busy machine,
    # and two keys' 32 once in CI.
    keys = (OPS_KEY, table_key, PIN_KEY)
    clients = pinned_to_two_workers(url, tries=3 * (LIMIT - 8), keys=keys)
    assert len(clients) == 2, "a second worker never answered"
    for pid, client in clients.items():  # each stays with its worker
        assert client.get("/api/metrics").json()["service"]["worker_pid"] == pid
    first, second = clients.values()
    for client in (first, second):  # either worker knows the table's key
        table = client.get("/api/config", headers={"Authorization": f"Bearer {table_key}"})
        assert table.status_code == 200, table.text
    assert "/api/sse/updates" in first.get("/openapi.json").json()["paths"]

    # One budget per key across workers: alternating between them, the limit is the
    # limit (per-worker counting would let twice as many through).
    if time.time() % 60 > 50:  # keep clear of the window's end
        time.sleep(61 - time.time() % 60)
    probe = {"Authorization": f"Bearer {PROBE_KEY}"}
    codes = [
        (first if i % 2 == 0 else second).get("/api/config", headers=probe).status_code
        for i in range(LIMIT + 4)
    ]
    assert codes == [200] * LIMIT + [429] * 4
    refused = second.get("/api/config", headers=probe)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1

    # Keys a client wrongly put in a URL do not reach the access log (checked at the end).
    misplaced = f"/health?api_key={OPS_KEY}&token={PROBE_KEY}&{table_key}&kind=glitch"
    assert httpx.get(url + misplaced, timeout=5).status_code == 200

    # An event appended to the Redis stream (as the pipeline does) reaches a live client
    # of each worker, with the same id; a client resuming from before it gets it too.
    log = RedisEventLog(served["cache"])
    mark = log.latest_id() or "0-0"
    with (
        first.stream("GET", "/api/sse/updates") as a,
        second.stream("GET", "/api/sse/updates") as b,
    ):
        assert a.status_code == b.status_code == 200
        time.sleep(0.5)  # both streams subscribed
        event_id = log.append("opportunity.new", {"opportunity_id": "spread:tv", "margin_clp": 1})
        heard = [read_event(s.iter_lines(), "opportunity") for s in (a, b)]
        with httpx.stream(
            "GET",
            f"{url}/api/sse/updates",
            headers={"Authorization": f"Bearer {table_key}", "Last-Event-ID": mark},
            timeout=10,
        ) as resumed:
            assert read_event(resumed.iter_lines(), "opportunity")["id"] == event_id

        # Ctrl-C with two streams open: they end, the supervisor and both workers exit.
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
        assert time.monotonic() - started < 8  # the open streams did not hold the stop
    assert [(e["id"], e["data"]["opportunity_id"]) for e in heard] == [(event_id, "spread:tv")] * 2
    for client in clients.values():
        client.close()
    deadline = time.monotonic() + 10
    while session_processes(server.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(server.pid) == set()
    served["reader"].join(timeout=5)
    output = "".join(served["output"])
    assert output.count("Started server process") == 2, output
    logged = '"GET /health?api_key=[redacted]&token=[redacted]&[redacted]&kind=glitch HTTP/1.1"'
    assert logged in output, output
    for secret in (OPS_KEY, PROBE_KEY, PIN_KEY, table_key):  # no key ever reached the log
        assert secret not in output


def requests_counted(exposition: str) -> dict[str, float]:
    """``arbx_http_requests_total`` of one scrape, summed by route."""
    counted: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "arbx_http_requests_total":
                route = sample.labels["route"]
                counted[route] = counted.get(route, 0) + sample.value
    return counted


def test_metrics_count_the_requests_of_every_worker_whichever_worker_answers(
    served: dict,
) -> None:
    url = served["url"]
    budgets = (OPS_KEY, PROBE_KEY, served["table_key"], PIN_KEY)
    pinned = pinned_to_two_workers(url, tries=4 * (LIMIT - 4), keys=budgets)
    assert len(pinned) == 2, "a second worker never answered"
    first, second = pinned.values()

    # N requests: a third on each worker for sure, a third on new connections (either).
    n = 24
    for i in range(n):
        answer = (first, second)[i % 3].get("/health") if i % 3 < 2 else httpx.get(f"{url}/health")
        assert answer.status_code == 200

    # Read through one worker, the other, or a new connection: always the same counts.
    # A scrape is counted once answered, so the k-th scrape sees the k-1 before it.
    scrapes = [first, second, None, second, first, None, first, second]
    totals = []
    for k, via in enumerate(scrapes):
        text = (via.get("/metrics") if via else httpx.get(f"{url}/metrics")).text
        counted = requests_counted(text)
        assert counted["/health"] == n + 1, (k, counted)  # + the fixture's readiness check
        assert counted.get("/metrics", 0) == k, (k, counted)
        assert counted["/api/metrics"] >= 2  # the pinning requests, on both workers
        totals.append(sum(counted.values()))
    assert totals == [totals[0] + k for k in range(len(scrapes))]

    # /api/metrics gives the same service-wide count from either worker.
    seen_by_first = first.get("/api/metrics").json()["service"]["requests"]
    seen_by_second = second.get("/api/metrics").json()["service"]["requests"]
    assert seen_by_first == totals[-1] + 1  # + the last scrape
    assert seen_by_second == seen_by_first + 1  # + the first worker's answer
    for client in pinned.values():
        client.close()
