"""``arbx bench api`` producing its measurements. (``arbx serve`` itself, ``--issue-key``
and a clean stop with streams open are tested as a real two-worker process in
test_service_workers.py.)"""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.cli.bench_api import bench_api

pytestmark = pytest.mark.slow


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
