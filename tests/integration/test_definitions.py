"""The code location loads, and every asset explains itself in the UI."""

from __future__ import annotations

import dagster as dg
import pytest

from arbx_dagster.definitions import _executor, defs
from arbx_dagster.settings import Settings

EXPECTED_FLOW = [
    ("raw_prices", "normalized_listings"),
    ("normalized_listings", "product_matches"),
    ("product_matches", "price_history"),
    ("price_history", "opportunities"),
    ("opportunities", "intelligence_metrics"),
]


def test_definitions_load_and_validate() -> None:
    dg.Definitions.validate_loadable(defs)


def test_every_asset_has_a_description_and_a_group() -> None:
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        assert node.group_name and node.group_name != "default", key


def test_the_graph_flows_from_raw_prices_to_intelligence() -> None:
    graph = defs.resolve_asset_graph()
    for upstream, downstream in EXPECTED_FLOW:
        parents = {k.path[-1] for k in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{downstream} should depend on {upstream}"


def test_the_full_refresh_job_covers_every_asset() -> None:
    job = defs.resolve_job_def("full_refresh")
    assert {k.path[-1] for k in job.asset_layer.executable_asset_keys} >= {
        step for pair in EXPECTED_FLOW for step in pair
    }


def test_blocking_checks_guard_the_early_stages() -> None:
    graph = defs.resolve_asset_graph()
    blocking = {
        key.asset_key.path[-1]
        for key in graph.asset_check_keys
        if graph.get_check_spec(key).blocking
    }
    assert {"raw_prices", "normalized_listings", "product_matches"} <= blocking


def test_steps_run_in_process_on_duckdb_or_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBX_STEP_EXECUTOR", raising=False)
    duckdb = Settings.from_env().model_copy(update={"postgres_url": None})
    postgres = duckdb.model_copy(update={"postgres_url": "postgresql://x@127.0.0.1/arbx"})
    assert _executor(duckdb) is dg.in_process_executor  # one writing process
    assert _executor(postgres) is None  # Dagster's default: a process per step
    monkeypatch.setenv("ARBX_STEP_EXECUTOR", "in_process")
    assert _executor(Settings.from_env().model_copy(update={"postgres_url": "pg"})) is (
        dg.in_process_executor
    )
    monkeypatch.setenv("ARBX_STEP_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="ARBX_STEP_EXECUTOR"):
        _executor(Settings.from_env().model_copy(update={"postgres_url": "pg"}))
