"""`arbx bench freshness --daemon`: through a real deployment (`arbx up` on PostgreSQL and
Redis), each planted change reaches the API, the SSE stream and the alert channel, and the
report says how long it took and which runs carried it."""

from __future__ import annotations

import pytest

from arbx_dagster.bench.freshness_daemon import CHANNELS, run_freshness_daemon


@pytest.mark.services
@pytest.mark.slow
def test_through_a_real_deployment_each_change_reaches_the_api_the_stream_and_the_alerts(
    postgres_url: str, redis_url: str
) -> None:
    """`--daemon`: the market goes in through the landing folder, the changes through the
    signed webhook; the daemon's own runs carry them to every channel."""
    report = run_freshness_daemon(
        600, 20, postgres_url=postgres_url, redis_url=redis_url, sensor_seconds=2
    )
    assert report["daemon"] is True and report["warehouse"] == "postgres"
    awaited = report["awaited"]
    assert awaited == {"spread": 3, "glitch": 3}
    seen = report["seen_by_kind"]
    # Every planted glitch and nearly every spread opens an opportunity the API lists and
    # the stream announces.
    for channel in ("api", "sse"):
        assert seen[channel]["glitch"] == awaited["glitch"], report
        assert seen[channel]["spread"] >= awaited["spread"] - 1, report
    # What is sent at once is alerted: not a spread held for review, nor a high-severity
    # glitch (it waits for its re-fetch, which cannot reach the simulated store).
    assert 1 <= report["alertable"] < sum(awaited.values()), report
    assert report["seen"]["alert"] >= report["alertable"] - 1, report
    for channel in CHANNELS:
        latency = report["seconds"][channel]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["max"] < 600
    # What set the changes off is in the report: the webhook's delivery (one file, every
    # retailer) is one run that ingests it and refreshes downstream (a tier's schedule may
    # tick meanwhile: its runs are listed too).
    jobs = ("ingest_files", "deliver_files", "__ASSET_JOB")
    runs = [r for r in report["runs_after_changes"] if r["job"] in jobs]
    assert [r["job"] for r in runs] == ["deliver_files"], report
    # (the watch ends once every channel saw its changes: the downstream run may still be
    # writing its last assets)
    assert all(r["status"] in ("SUCCESS", "STARTED") for r in runs), report
