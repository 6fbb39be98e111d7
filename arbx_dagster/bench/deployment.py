"""A throwaway real deployment for benchmarks: `arbx up` (webserver, daemon, API) on a
PostgreSQL database and a Redis namespace of its own, a landing folder, and a local alert
channel that records what it is sent. Everything it creates is removed afterwards; nothing
else is touched."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import redis

from arbx_dagster.storage.databases import throwaway_database

WEBHOOK_SECRET = "bench-" + "0" * 26
API_KEY = "bench-key-0123456789abcdef"
UP_TIMEOUT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AlertInbox:
    """An HTTP endpoint on 127.0.0.1 that Apprise's ``json://`` channel posts alerts to;
    keeps each body with the monotonic time it arrived."""

    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with inbox._lock:
                    inbox.received.append((time.monotonic(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/alerts"

    def since(self, moment: float) -> list[tuple[float, dict[str, Any]]]:
        with self._lock:
            return [r for r in self.received if r[0] >= moment]

    def close(self) -> None:
        self._server.shutdown()


@dataclass
class Deployment:
    env: dict[str, str]
    api_url: str
    landing: Path
    alerts: AlertInbox

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}


def _sources_yaml(folder: Path) -> Path:
    path = folder / "sources.yaml"
    path.write_text(
        f"""version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - name: landing
    connector: file_drop
    path: {folder / "landing"}
    settle_seconds: 0
""",
        encoding="utf-8",
    )
    (folder / "landing").mkdir(parents=True, exist_ok=True)
    return path


def _arbx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbx_dagster.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_SECONDS,
        check=False,
    )


def _drop_redis_namespace(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


@contextmanager
def deployment(
    postgres_url: str, redis_url: str, intervals: dict[str, int], logs: Path | None = None
) -> Iterator[Deployment]:
    """`arbx up` on a new database and Redis namespace, its sensors looking every
    ``intervals['file_drop']`` / ``intervals['automation']`` seconds; `arbx down` and both
    removed afterwards, whatever happened (the webserver's, daemon's and API's logs copied
    to ``logs`` first, when given)."""
    prefix = f"arbx_bench_{uuid.uuid4().hex[:10]}:"
    inbox = AlertInbox()
    with (
        throwaway_database(postgres_url, prefix="arbx_bench_") as url,
        tempfile.TemporaryDirectory(prefix="arbx-daemon-") as folder,
    ):
        home = Path(folder)
        api_port = free_port()
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("ARBX_", "DAGSTER_"))}
        env = {
            **keep,
            "ARBX_HOME": str(home / "state"),
            "ARBX_POSTGRES_URL": url,
            "ARBX_REDIS_URL": redis_url,
            "ARBX_REDIS_PREFIX": prefix,
            "ARBX_SOURCES": str(_sources_yaml(home)),
            "ARBX_ALERT_URLS": inbox.apprise_url,
            "ARBX_API_KEYS": f"bench={API_KEY}",
            "ARBX_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ARBX_RATE_LIMIT_PER_KEY": "0",
            "ARBX_RATE_LIMIT_PER_CLIENT": "0",
            "ARBX_FILE_DROP_INTERVAL_SECONDS": str(intervals["file_drop"]),
            "ARBX_AUTOMATION_INTERVAL_SECONDS": str(intervals["automation"]),
            "ARBX_STEP_EXECUTOR": "in_process",
        }
        try:
            started = _arbx(env, "up", "--port", str(free_port()), "--api-port", str(api_port))
            if started.returncode != 0:
                raise RuntimeError(f"arbx up failed:\n{started.stdout}{started.stderr}")
            live = Deployment(env, f"http://127.0.0.1:{api_port}", home / "landing", inbox)
            _wait_for_api(live)
            yield live
        finally:
            _arbx(env, "down")
            if logs is not None:
                logs.mkdir(parents=True, exist_ok=True)
                for log in (home / "state" / "run").glob("*.log"):
                    shutil.copy(log, logs / log.name)
            inbox.close()
            _drop_redis_namespace(redis_url, prefix)


def _wait_for_api(live: Deployment) -> None:
    deadline = time.monotonic() + UP_TIMEOUT_SECONDS
    while True:
        try:
            answer = httpx.get(f"{live.api_url}/health", timeout=10)
            if answer.status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API `arbx up` started did not answer")
        time.sleep(1)


__all__ = ["API_KEY", "WEBHOOK_SECRET", "AlertInbox", "Deployment", "deployment"]
