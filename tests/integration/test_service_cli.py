"""``arbx serve`` as a user runs it (embedded defaults), ``--issue-key``, a clean stop with
an event stream open, and ``arbx bench api`` producing its measurements."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.cli.bench_api import bench_api
from arbx_dagster.service.testing import free_port

pytestmark = pytest.mark.slow

KEY = "cli-key-0123456789abcdef"


def _env(home: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARBX_", "DAGSTER_"))},
        "ARBX_HOME": str(home),
        "ARBX_API_KEYS": f"ops={KEY}",
        "ARBX_DAGSTER_URL": "http://127.0.0.1:9",
    }


def test_serve_answers_and_stops_cleanly_with_a_stream_open(tmp_path: Path) -> None:
    issued = subprocess.run(
        [sys.executable, "-m", "arbx_dagster.cli", "serve", "--issue-key", "dashboard"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    table_key = issued.stdout.strip().splitlines()[-1]
    assert table_key.startswith("arbx_")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "arbx_dagster.cli", "serve", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        assert health.json()["components"]["warehouse"]["engine"] == "duckdb"
        for key in (KEY, table_key):
            got = httpx.get(f"{url}/api/config", headers={"Authorization": f"Bearer {key}"})
            assert got.status_code == 200
        assert "/api/sse/updates" in httpx.get(f"{url}/openapi.json").json()["paths"]

        opened = threading.Event()

        def listen() -> None:
            headers = {"Authorization": f"Bearer {KEY}"}
            try:
                with httpx.stream("GET", f"{url}/api/sse/updates", headers=headers) as stream:
                    opened.set()
                    for _ in stream.iter_lines():
                        pass
            except httpx.HTTPError:
                pass

        threading.Thread(target=listen, daemon=True).start()
        assert opened.wait(10)
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
        assert time.monotonic() - started < 5  # the open stream did not hold the shutdown
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    output = server.stdout.read() if server.stdout else ""
    assert KEY not in output and table_key not in output  # no secret in the logs


def test_bench_api_reports_throughput_latency_and_sse_clients() -> None:
    app = typer.Typer()
    app.command()(bench_api)
    result = CliRunner().invoke(
        app,
        [
            "--requests",
            "60",
            "--concurrency",
            "4",
            "--sse-clients",
            "20",
            "--opportunities",
            "50",
            "--no-uncached",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    cached = report["opportunities_cached"]
    assert cached["statuses"] == {"200": 60}
    assert cached["requests_per_second"] > 0 and cached["p99_ms"] >= cached["p50_ms"] > 0
    assert report["sse"]["clients_held"] == 20
    assert report["sse"]["event_delivered_to"] == 20
