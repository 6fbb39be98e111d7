"""The code location loads, and every asset explains itself in the UI."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy

from arbx_dagster.assets import ALL_ASSETS
from arbx_dagster.assets.checks import check_description
from arbx_dagster.assets.conventions import GROUPS, LAYER_TAG, LAYERS, with_storage_kind
from arbx_dagster.definitions import _executor, defs
from arbx_dagster.pipeline import quality_checks as q
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


def test_every_asset_is_owned_tagged_and_in_one_of_a_few_groups() -> None:
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    groups = {graph.get(key).group_name for key in keys}
    assert groups == set(GROUPS) and len(groups) < len(keys), "a few groups, not one per asset"
    for key in keys:
        node = graph.get(key)
        assert node.owners == ["team:arbx"], key
        assert node.tags[LAYER_TAG] in LAYERS, key
        assert node.kinds, key
        assert node.freshness_policy is not None, key


def test_warehouse_tables_are_of_kind_table_and_of_the_configured_engine() -> None:
    graph = defs.resolve_asset_graph()
    engine = Settings.from_env().warehouse_engine
    tables = {k.path[-1] for k in graph.get_all_asset_keys() if "table" in graph.get(k).kinds}
    assert tables == {
        "raw_prices",
        "normalized_listings",
        "product_matches",
        "price_history",
        "opportunities",
        "intelligence_metrics",
    }
    for name in tables:
        kinds = graph.get(dg.AssetKey(name)).kinds
        assert {"polars", "table", engine} <= kinds and len(kinds & {"duckdb", "postgres"}) == 1
    # the match model is a pickled file: no warehouse kind
    assert graph.get(dg.AssetKey("match_model")).kinds == {"scikitlearn"}


def test_freshness_policies_follow_the_scraping_cadence() -> None:
    graph = defs.resolve_asset_graph()
    policies = {k.path[-1]: graph.get(k).freshness_policy for k in graph.get_all_asset_keys()}
    prices = policies.pop("raw_prices")
    assert isinstance(prices, TimeWindowFreshnessPolicy)
    # critical listings are scraped every 30 min: prices an hour old are late
    assert prices.fail_window.to_timedelta() == timedelta(hours=1)
    model = policies.pop("match_model")  # retrained daily at 05:00 in Santiago
    assert isinstance(model, CronFreshnessPolicy) and model.timezone == "America/Santiago"
    for name, policy in policies.items():  # refreshed a run after prices land
        assert isinstance(policy, TimeWindowFreshnessPolicy), name
        assert policy.fail_window.to_timedelta() > prices.fail_window.to_timedelta(), name


def test_the_storage_kind_follows_the_engine() -> None:
    kinds = {
        spec.key.path[-1]: spec.kinds
        for asset in with_storage_kind(ALL_ASSETS, "postgres")
        for spec in asset.specs
    }
    assert {"postgres", "table"} <= kinds["raw_prices"] and "duckdb" not in kinds["raw_prices"]
    assert kinds["match_model"] == {"scikitlearn"}
    with pytest.raises(ValueError, match="sqlite"):
        with_storage_kind(ALL_ASSETS, "sqlite")


def test_asset_check_descriptions_are_the_whole_docstring() -> None:
    graph = defs.resolve_asset_graph()
    described = {key.name: graph.get_check_spec(key).description for key in graph.asset_check_keys}
    for name, description in described.items():
        assert description and description.endswith((".", ")")), f"{name}: {description!r}"
    # the reasoning after the first line is kept, its line breaks folded
    assert described["tier_freshness"] == check_description(q.tier_freshness)
    why = "the simulator publishes one observation per listing per day"
    assert why in described["tier_freshness"]
    assert described["raw_prices_are_plausible"].endswith("the market's currency.")


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
