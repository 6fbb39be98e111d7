"""Jobs: ingest a tier, refresh everything downstream of raw prices."""

import dagster as dg

from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.matching import MATCH_PARTITIONS, match_model, product_matches
from arbx_dagster.domain.schema import TIERS

DOWNSTREAM = dg.AssetSelection.assets(raw_prices).downstream() - dg.AssetSelection.assets(
    raw_prices
)
# What new prices change: everything downstream but the match model, which keeps its own
# pace (daily, and when missing: the automation builds it), so a refresh does not retrain it.
REFRESHED = DOWNSTREAM - dg.AssetSelection.assets(match_model)
# Runs that refresh what lies downstream of raw prices carry this tag; dagster.yaml lets one
# such run go at a time (a delivery's own run, the automation's, a full refresh).
REFRESH_TAGS = {"arbx/refresh": "downstream"}


def _ingest_job(tier: str):
    return dg.define_asset_job(
        f"ingest_{tier}",
        selection=[raw_prices],
        config={"ops": {"raw_prices": {"config": {"tier": tier}}}},
        tags={"arbx/tier": tier},
        description=(
            f"Refresh the prices of the listings in the {tier} tier "
            f"(every {TIERS[tier]} minutes) for one day x retailer partition."
        ),
    )


INGEST_JOBS = {tier: _ingest_job(tier) for tier in TIERS}

backfill_raw_prices = dg.define_asset_job(
    "backfill_raw_prices",
    selection=[raw_prices],
    tags={"arbx/trigger": "backfill"},
    description="Rebuild past days from the raw-payload archive or dated exports "
    "(re-running a day replaces its rows). What `arbx backfill` runs.",
)

ingest_files = dg.define_asset_job(
    "ingest_files",
    selection=[raw_prices],
    tags={"arbx/trigger": "file-drop"},
    description="Ingest files dropped in a landing folder (launched by the file-drop sensor).",
)

deliver_files = dg.define_asset_job(
    "deliver_files",
    selection=dg.AssetSelection.assets(raw_prices) | REFRESHED,
    tags={"arbx/trigger": "file-drop", **REFRESH_TAGS},
    description="Ingest the files of one delivery and refresh everything downstream in the "
    "same run (launched by the file-drop sensor when one run can hold them).",
)

refresh_downstream = dg.define_asset_job(
    "refresh_downstream",
    selection=REFRESHED,
    tags=REFRESH_TAGS,
    description="Listings → matches → history → opportunities → intelligence, from the "
    "raw prices already landed.",
)

full_refresh = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    tags=REFRESH_TAGS,
    description="The whole graph: the selected raw-price partitions (one run for a range) "
    "and everything downstream. What `arbx demo` and `arbx backfill` run.",
)

# Sharded matching (ARBX_MATCH_SHARDS) always matches in full, in partitioned runs.
_REDONE = [normalized_listings] + ([product_matches] if MATCH_PARTITIONS is None else [])
rematch_all = dg.define_asset_job(
    "rematch_all",
    selection=_REDONE,
    config={"ops": {a.key.path[-1]: {"config": {"mode": "full"}} for a in _REDONE}},
    tags={"arbx/trigger": "full-rematch", **REFRESH_TAGS},
    description="Normalise and match the whole catalogue again (between these runs, "
    "normalized_listings and product_matches redo only what changed). Daily, and on demand.",
)

ALL_JOBS = [
    *INGEST_JOBS.values(),
    backfill_raw_prices,
    ingest_files,
    deliver_files,
    refresh_downstream,
    full_refresh,
    rematch_all,
]
