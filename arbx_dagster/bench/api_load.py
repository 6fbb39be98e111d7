"""Load benchmark of the service: ``/api/opportunities`` throughput and latency, and how
many SSE clients one server holds (and how fast an event reaches all of them).

The service runs as its own uvicorn process (so the load generator does not share its
interpreter) on throwaway state: a fresh DuckDB file, or — with ``services=True`` — a
throwaway PostgreSQL database and a private Redis key prefix, both removed afterwards.
The load comes from asyncio + httpx in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import polars as pl

from arbx_dagster.domain.lifecycle import OPPORTUNITY_STATE_SCHEMA
from arbx_dagster.domain.schema import conform
from arbx_dagster.storage.cache import RedisCache
from arbx_dagster.storage.databases import throwaway_database
from arbx_dagster.storage.event_log import EventLog, FileEventLog, RedisEventLog
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import open_warehouse

QUERIES = (
    "/api/opportunities",
    "/api/opportunities?limit=20",
    "/api/opportunities?kind=spread",
    "/api/opportunities?kind=glitch&sort=roi",
    "/api/opportunities?retailer=ripley",
    "/api/opportunities?min_margin=30000",
    "/api/opportunities?category=tv&sort=last_seen",
    "/api/opportunities?min_roi=15&order=asc",
)


@dataclass
class Target:
    url: str
    key: str
    events: EventLog
    process: subprocess.Popen[bytes]


def synthetic_opportunities(n: int, seed: int = 7) -> pl.DataFrame:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        buy = rng.randrange(20_000, 2_000_000, 10)
        ref = int(buy * rng.uniform(1.08, 1.9))
        rows.append(
            {
                "opportunity_id": f"bench-{i:06d}",
                "kind": "glitch" if rng.random() < 0.2 else "spread",
                "canonical_id": f"cp-{i}",
                "product_name": f"Producto de prueba {i}",
                "category": rng.choice(["Tecnología > TV", "Hogar > Cocina", "Celulares"]),
                "buy_retailer": rng.choice(["falabella", "ripley", "paris"]),
                "buy_sku": f"sku-{i}",
                "buy_price": buy,
                "buy_price_type": "offer",
                "ref_retailer": "paris",
                "ref_price": ref,
                "margin_clp": ref - buy,
                "roi_pct": (ref - buy) / buy * 100,
                "confidence": rng.uniform(0.6, 1.0),
                "observed_at": now,
                "status": rng.choice(["new", "active"]),
                "first_seen": now - timedelta(hours=rng.randrange(1, 200)),
                "last_seen": now,
                "times_seen": 1,
            }
        )
    return conform(pl.DataFrame(rows), OPPORTUNITY_STATE_SCHEMA)


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


@contextlib.contextmanager
def running_service(
    *,
    opportunities: int,
    workers: int,
    cache_seconds: int,
    sse_clients: int,
    postgres_url: str | None,
    redis_url: str | None,
) -> Iterator[Target]:
    home = Path(tempfile.mkdtemp(prefix="arbx-bench-"))
    key = "bench_" + secrets.token_urlsafe(24)
    prefix = f"arbx-bench:{uuid.uuid4().hex[:8]}:"
    stack = contextlib.ExitStack()
    try:
        database = stack.enter_context(throwaway_database(postgres_url)) if postgres_url else None
        with open_warehouse(database, home / "warehouse.duckdb") as warehouse:
            migrate(warehouse)
            warehouse.upsert(
                "opportunities", synthetic_opportunities(opportunities), ["opportunity_id"]
            )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ARBX_")},
            "ARBX_HOME": str(home),
            "ARBX_API_KEYS": f"bench={key}",
            "ARBX_RATE_LIMIT_PER_KEY": "1000000000",  # counted, never reached
            "ARBX_RATE_LIMIT_PER_CLIENT": "1000000000",
            "ARBX_DAGSTER_URL": "http://127.0.0.1:9",
            "ARBX_RUN_WATCH_SECONDS": "0",
            "ARBX_OPPORTUNITIES_CACHE_SECONDS": str(cache_seconds),
            "ARBX_SSE_MAX_CLIENTS": str(sse_clients + 100),
            "ARBX_SSE_HEARTBEAT_SECONDS": "15",
            "ARBX_REDIS_PREFIX": prefix,
        }
        if database:
            env["ARBX_POSTGRES_URL"] = database
        if redis_url:
            env["ARBX_REDIS_URL"] = redis_url
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "arbx_dagster.service.app:create_app",
                "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--log-level", "warning", "--no-access-log",
                "--timeout-graceful-shutdown", "2",
            ],
            env=env,
        )  # fmt: skip
        stack.callback(_stop, process)
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, process)
        if redis_url:
            cache = RedisCache(redis_url, prefix=prefix)
            stack.callback(cache.close)
            stack.callback(cache.delete_matching, "*")
            events: EventLog = RedisEventLog(cache)
        else:
            events = FileEventLog(home / "events")
        yield Target(url, key, events, process)
    finally:
        stack.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the service exited while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code in (200, 503):
                return
        time.sleep(0.2)
    raise RuntimeError("the service did not start within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- load --------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class _Connection:
    """One keep-alive HTTP/1.1 connection, spoken directly over asyncio streams: the load
    generator must cost far less per request than the server it measures (an httpx
    AsyncClient tops out near the server's own rate on a small machine)."""

    def __init__(self, url: str, key: str) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.auth = f"Authorization: Bearer {key}\r\nHost: {self.host}:{self.port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str) -> int:
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.auth}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    async def stream(self, path: str) -> asyncio.StreamReader:
        """Start a streaming GET (SSE); returns the reader positioned after the headers."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.auth}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise ConnectionError(f"HTTP {status}")
        return self.reader

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _hammer(target: Target, total: int, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int | str, int] = {}
    counter = iter(range(total))
    connections = [_Connection(target.url, target.key) for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in connections))
    for path in QUERIES:  # warm-up: one request per query shape
        await connections[0].get(path)

    async def worker(connection: _Connection) -> None:
        for i in counter:
            started = time.perf_counter()
            try:
                outcome: int | str = await connection.get(QUERIES[i % len(QUERIES)])
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                outcome = type(exc).__name__  # counted, not fatal: the report says so
                statuses[outcome] = statuses.get(outcome, 0) + 1
                return
            latencies.append(time.perf_counter() - started)
            statuses[outcome] = statuses.get(outcome, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return {
        "requests": total,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
    }


async def _hold_sse(target: Target, clients: int, hold_seconds: float) -> dict[str, Any]:
    """Open ``clients`` streams, publish one event, count who gets it and how fast."""
    marker = f"bench-{uuid.uuid4().hex[:8]}".encode()
    connections = [_Connection(target.url, target.key) for _ in range(clients)]
    readers: list[asyncio.StreamReader] = []
    failures: dict[str, int] = {}

    async def connect(connection: _Connection) -> None:
        try:
            await connection.open()
            readers.append(await connection.stream("/api/sse/updates"))
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            failures[str(exc)[:60]] = failures.get(str(exc)[:60], 0) + 1

    for start in range(0, clients, 200):  # in waves: no SYN flood on the listen backlog
        await asyncio.gather(*(connect(c) for c in connections[start : start + 200]))
    held = len(readers)
    await asyncio.sleep(hold_seconds)
    received: list[float] = []
    published = time.perf_counter()

    async def listen(reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            if marker in line:
                received.append(time.perf_counter() - published)
                return

    listeners = [asyncio.create_task(listen(r)) for r in readers]
    await asyncio.to_thread(target.events.append, "run.status", {"run_id": marker.decode()})
    await asyncio.wait(listeners, timeout=30)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for connection in connections:
        connection.close()
    return {
        "clients_requested": clients,
        "clients_held": held,
        "event_delivered_to": len(received),
        "fanout_p50_ms": round(_percentile(received, 0.5) * 1000, 1),
        "fanout_max_ms": round(max(received) * 1000, 1) if received else None,
        "failures": failures,
    }


def run(
    *,
    requests: int = 3000,
    concurrency: int = 32,
    sse_clients: int = 1000,
    opportunities: int = 2000,
    workers: int = 1,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    uncached: bool = True,
) -> dict[str, Any]:
    """Benchmark a fresh service; returns the measurements (nothing is asserted)."""
    _raise_fd_limit(sse_clients * 2 + 512)
    report: dict[str, Any] = {
        "backend": {
            "warehouse": "postgres" if postgres_url else "duckdb",
            "cache": "redis" if redis_url else "memory",
            "workers": workers,
            "opportunities": opportunities,
        }
    }
    common = {"opportunities": opportunities, "workers": workers, "sse_clients": sse_clients,
              "postgres_url": postgres_url, "redis_url": redis_url}  # fmt: skip
    with running_service(cache_seconds=30, **common) as target:
        report["opportunities_cached"] = asyncio.run(_hammer(target, requests, concurrency))
        report["sse"] = asyncio.run(_hold_sse(target, sse_clients, hold_seconds=1.0))
    if uncached:
        with running_service(cache_seconds=0, **common) as target:
            n = max(concurrency, requests // 3)
            report["opportunities_uncached"] = asyncio.run(_hammer(target, n, concurrency))
    return report


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
