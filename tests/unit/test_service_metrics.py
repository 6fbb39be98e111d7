"""Service metrics on prometheus_client: apps in one process count apart; worker processes
sharing ``PROMETHEUS_MULTIPROC_DIR`` count together, and a dead worker's gauges stop
counting while its counters stay; ``arbx serve`` gives its workers a clean directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arbx_dagster.cli.serve import _shared_metrics
from arbx_dagster.service.metrics import Metrics
from arbx_dagster.service.testing import metric_value


def test_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("GET", "/api/config", 200, 0.003)
    first.observe_request("GET", "/api/config", 200, 0.2)
    second.inc("arbx_rate_limited_total", scope="key")
    clients = [4]
    first.gauge("arbx_sse_clients", lambda: clients[0], "Connected SSE clients.")
    first.gauge("arbx_broken", lambda: 1 / 0, "A reading that fails.")

    text = first.render().decode()
    requests = "arbx_http_requests_total"
    assert metric_value(text, requests, method="GET", route="/api/config", status="200") == 2
    latency = "arbx_http_request_duration_seconds_bucket"
    assert metric_value(text, latency, route="/api/config", le="0.005") == 1
    assert metric_value(text, latency, route="/api/config", le="+Inf") == 2
    assert metric_value(text, "arbx_sse_clients") == 4
    broken = metric_value(text, "arbx_broken")
    assert broken is not None and broken != broken  # NaN: a failing gauge keeps the scrape
    assert metric_value(text, "arbx_rate_limited_total", scope="key") is None
    assert first.counter_total(requests) == 2
    assert second.counter_total(requests) == 0
    assert metric_value(second.render().decode(), "arbx_rate_limited_total", scope="key") == 1


WORKER = textwrap.dedent(
    """
    import os, sys
    from arbx_dagster.service.metrics import Metrics
    metrics = Metrics()
    assert metrics.multiprocess
    metrics.gauge("arbx_sse_clients", lambda: int(sys.argv[2]), "Connected SSE clients.")
    for _ in range(int(sys.argv[1])):
        metrics.observe_request("GET", "/health", 200, 0.01)
    metrics.refresh_gauges()
    if sys.argv[3] == "scrape":
        sys.stdout.write(metrics.render().decode())
        sys.stdout.write("requests=%g" % metrics.counter_total("arbx_http_requests_total"))
    elif sys.argv[3] == "wait":
        print("ready", flush=True)
        sys.stdin.read()  # alive until the test closes stdin
    """
)


def test_workers_sharing_a_directory_report_one_count(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def worker(requests: int, clients: int, then: str, **kwargs: object) -> subprocess.Popen:
        command = [sys.executable, "-c", WORKER, str(requests), str(clients), then]
        return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]

    # A worker that has gone (its counts must stay, its gauge must not)...
    gone = worker(5, 7, "exit")
    assert gone.wait(timeout=30) == 0
    # ...one still serving...
    alive = worker(3, 2, "wait", stdin=subprocess.PIPE)
    assert alive.stdout is not None and alive.stdout.readline().strip() == "ready"
    try:
        # ...and the one that answers the scrape.
        scraper = worker(1, 1, "scrape")
        out, _ = scraper.communicate(timeout=30)
    finally:
        alive.communicate(input="", timeout=30)
    text, _, total = out.rpartition("requests=")
    health = metric_value(
        text, "arbx_http_requests_total", method="GET", route="/health", status="200"
    )
    assert health == 5 + 3 + 1
    latency = "arbx_http_request_duration_seconds_count"
    assert metric_value(text, latency, route="/health") == 9
    assert metric_value(text, "arbx_sse_clients") == 2 + 1  # the live workers' only
    assert float(total) == 9  # /api/metrics' count is the service's too


def test_serve_gives_several_workers_a_fresh_directory_and_removes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with _shared_metrics(workers=1) as none:
        assert none is None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    with _shared_metrics(workers=2) as path:
        assert path is not None and os.environ["PROMETHEUS_MULTIPROC_DIR"] == path
        assert os.listdir(path) == []
    assert not os.path.exists(path)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_a_directory_given_by_the_deployment_is_emptied_of_old_samples_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "counter_4242.db").write_bytes(b"samples of an earlier run")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with _shared_metrics(workers=2) as path:
        assert path == str(tmp_path)
        assert sorted(os.listdir(path)) == ["notes.txt"]
    assert tmp_path.is_dir()
