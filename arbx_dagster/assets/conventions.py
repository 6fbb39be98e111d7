"""How ArbX's assets present themselves in Dagster's catalogue: group, owner, layer tag,
kinds and freshness policy — declared once here so that every asset says the same.

Kinds: ``polars`` (how a stage computes) and ``table`` (what it leaves: a warehouse table)
are fixed; the storage kind (``duckdb`` or ``postgres``) depends on ARBX_POSTGRES_URL, so
the code location adds it when it loads (:func:`with_storage_kind`, from the settings it
already reads) and every materialization also records the engine that actually ran under
``dagster/storage_kind``. The match model is a pickled file, not a table: no storage kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import dagster as dg

from arbx_dagster.assets.conditions import ON_FRESH_PRICES
from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.domain.schema import TIERS

OWNERS = ["team:arbx"]

# Four groups, in the order data flows: the graph opens as four boxes, not one per asset.
INGESTION = "ingestion"  # raw prices and the listings they become
MATCHING = "matching"  # the match model and the products it finds across retailers
OPPORTUNITIES = "opportunities"  # daily price history and the opportunities found in it
INTELLIGENCE = "intelligence"  # volatility, scraping tiers, market measurements
GROUPS = (INGESTION, MATCHING, OPPORTUNITIES, INTELLIGENCE)

# The layer an asset belongs to, as a tag one can filter the catalogue on.
LAYER_TAG = "arbx/layer"
LAYERS = ("raw", "refined", "model", "serving")


def layer(name: str) -> dict[str, str]:
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; use one of {LAYERS}")
    return {LAYER_TAG: name}


TABLE_KINDS = {"polars", "table"}
STORAGE_KINDS = ("duckdb", "postgres")

# Freshness (Dagster's own policies, evaluated by the daemon; the superseded
# ``build_last_update_freshness_checks`` is not used): the critical tier is scraped every
# 30 minutes, so prices older than twice that are late. The ``tier_freshness`` check stays:
# it judges each listing's last observation (a tier run can succeed while its listings go
# unseen) and raises the 🚨 alert, where a policy only judges when an asset last ran.
_CRITICAL = timedelta(minutes=TIERS["critical"])
PRICES_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=2 * _CRITICAL, warn_window=1.5 * _CRITICAL
)
# Everything after raw prices is refreshed when they land, a run later.
DOWNSTREAM_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=4 * _CRITICAL, warn_window=2 * _CRITICAL
)
# The match model is retrained at 05:00 Santiago: by 07:00 it must be that day's.
MATCH_MODEL_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 7 * * *", lower_bound_delta=timedelta(hours=2), timezone=MARKET_TZ
)


def with_storage_kind(
    assets: Sequence[dg.AssetsDefinition], engine: str
) -> list[dg.AssetsDefinition]:
    """The assets, each warehouse table also of kind ``engine`` (duckdb or postgres)."""
    if engine not in STORAGE_KINDS:
        raise ValueError(f"unknown warehouse engine {engine!r}")

    def add(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.merge_attributes(kinds={engine}) if "table" in spec.kinds else spec

    return list(dg.map_asset_specs(add, assets))


def refreshed_table(group: str, layer_name: str, *, kinds: frozenset[str] = frozenset()) -> dict:
    """What a warehouse table rebuilt whenever fresh prices land declares (``@dg.asset``
    keyword arguments): its group and layer, the team, the automation, kinds, freshness."""
    declared: dict[str, Any] = {
        "group_name": group,
        "owners": OWNERS,
        "tags": layer(layer_name),
        "automation_condition": ON_FRESH_PRICES,
        "kinds": {*TABLE_KINDS, *kinds},
        "freshness_policy": DOWNSTREAM_FRESHNESS,
    }
    return declared
