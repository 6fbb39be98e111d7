"""The pipeline through real faults on PostgreSQL + Redis: the database lost in the middle
of a run, Redis gone for a whole run, the run's process killed with SIGKILL. After each
(and a plain re-run where the fault stopped the run) the warehouse holds exactly what a
clean run leaves: the same rows of raw_prices, price_history and opportunities, no key
twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import small_market
from fault_proxy import FaultProxy

from arbx_dagster.storage.databases import throwaway_database

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def clean(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fingerprint of one undisturbed run."""
    with throwaway_database(postgres_url) as url:
        result = small_market.materialize(
            small_market.resources(url, tmp_path_factory.mktemp("clean"))
        )
        assert result.success
        found = small_market.fingerprint(url)
    assert all(t["rows"] > 0 and t["duplicate_keys"] == 0 for t in found.values()), found
    return found


def _when(condition: Callable[[], bool], then: Callable[[], None], timeout: float = 120) -> None:
    """Call ``then`` in the background as soon as ``condition`` holds."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                then()
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def test_the_database_lost_mid_run_then_a_rerun_leaves_what_a_clean_run_does(
    clean: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    with throwaway_database(postgres_url) as url, FaultProxy("127.0.0.1", 5432) as proxy:
        resources = small_market.resources(proxy.url(url), tmp_path)
        lost = threading.Event()
        outage = proxy.outage()

        def go_down() -> None:
            outage.__enter__()
            lost.set()

        # Down once listings are normalised: matching, history and opportunities are under way.
        _when(lambda: small_market.progress(url) > 0, go_down)
        cut = small_market.materialize(resources)
        assert lost.is_set(), "the run ended before the fault was injected"
        outage.__exit__(None, None, None)
        assert not cut.success  # the run said it failed, it did not store half a result

        rerun = small_market.materialize(resources)
        assert rerun.success
        assert small_market.fingerprint(url) == clean


def test_without_redis_a_run_leaves_what_a_clean_run_does(
    clean: dict[str, Any], postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with throwaway_database(postgres_url) as url, FaultProxy("127.0.0.1", 6379) as proxy:
        with proxy.outage():  # Redis configured, and gone for the whole run
            result = small_market.materialize(
                small_market.resources(url, tmp_path, redis_url=proxy.url(redis_url))
            )
        assert result.success
        assert small_market.fingerprint(url) == clean


def test_a_run_killed_with_sigkill_then_rerun_leaves_what_a_clean_run_does(
    clean: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    script = Path(small_market.__file__)
    with throwaway_database(postgres_url) as url:
        run = subprocess.Popen(
            [sys.executable, str(script), url, str(tmp_path)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while small_market.progress(url) == 0 and time.monotonic() < deadline:
                assert run.poll() is None, run.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                time.sleep(0.05)
            os.kill(run.pid, signal.SIGKILL)
        finally:
            run.wait(timeout=30)
        assert run.returncode == -signal.SIGKILL

        rerun = small_market.materialize(small_market.resources(url, tmp_path))
        assert rerun.success
        assert small_market.fingerprint(url) == clean
