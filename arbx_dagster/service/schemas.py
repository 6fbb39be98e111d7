"""Request and response models: strict input (unknown fields, NaN, control characters and
out-of-range numbers are 422s), and response shapes for the OpenAPI document."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from arbx_dagster.domain.config import SETTING_ALIASES, Thresholds, setting_key

# No control characters: PostgreSQL refuses NUL in text, and nobody needs the others.
SAFE_TEXT = r"^[^\x00-\x1f\x7f]*$"
MAX_SKUS = 100  # listings one /api/opportunities request may ask for
RetailerName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
JobName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
PartitionKey = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}\|[a-z][a-z0-9_-]*$", max_length=80)
]
TagKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=63)]
TagValue = Annotated[str, Field(pattern=SAFE_TEXT, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- opportunities ---------------------------------------------------------------------


class Opportunity(BaseModel):
    """One opportunity row (later migrations may add columns: they are passed through)."""

    model_config = ConfigDict(extra="allow")

    opportunity_id: str
    kind: str
    canonical_id: str | None = None
    product_name: str | None = None
    category: str | None = None
    buy_retailer: str
    buy_sku: str
    buy_url: str | None = None
    buy_price: int
    buy_price_type: str
    ref_retailer: str | None = None
    ref_sku: str | None = None
    ref_price: int
    margin_clp: int
    roi_pct: float = Field(description="Spreads: return on the buy; glitches: capped at 1000")
    depth_pct: float | None = Field(
        None, description="Buy price versus reference, e.g. -99.9 (how a glitch is read)"
    )
    confidence: float
    severity: str | None = None
    observed_at: str | None = None
    review: str | None = Field(
        None,
        description="Why a spread waits for a person (weak identity, implausible gap); "
        "null when it does not. Held spreads are not alerted; labelling the pair "
        "(`/api/matches/{id}/label`, `arbx matches label`) settles it.",
    )
    status: str
    first_seen: str
    last_seen: str
    expired_at: str | None = None
    times_seen: int


class OpportunityFilters(BaseModel):
    """The query string of ``/api/opportunities`` (validated in one go: it is the hot path)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["spread", "glitch"] | None = None
    retailer: RetailerName | None = Field(None, description="Where to buy")
    sku: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=128, pattern=SAFE_TEXT)]],
            Field(min_length=1, max_length=MAX_SKUS),
        ]
        | None
    ) = Field(
        None,
        description="The SKU to buy (exact): one listing's opportunities; repeat the "
        f"parameter for several listings (at most {MAX_SKUS})",
    )
    category: Annotated[str, Field(max_length=100, pattern=SAFE_TEXT)] | None = Field(
        None, description="Category contains this (any case)"
    )
    min_margin: Annotated[int, Field(ge=0, le=10_000_000_000)] | None = None
    min_roi: Annotated[float, Field(ge=-100, le=1_000_000, allow_inf_nan=False)] | None = None
    severity: Literal["low", "medium", "high"] | None = None
    review: Literal["held", "clear"] | None = Field(
        None, description="held: only spreads waiting for review; clear: only the others"
    )
    status: Literal["live", "new", "active", "expired", "all"] = "live"
    sort: Literal["margin", "roi", "confidence", "last_seen", "first_seen", "buy_price"] = "margin"
    order: Literal["asc", "desc"] = "desc"
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str, Field(max_length=600, pattern=r"^[A-Za-z0-9_-]+$")] | None = Field(
        None, description="next_cursor of the previous page"
    )


class OpportunityPage(BaseModel):
    items: list[Opportunity]
    count: int
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")
    sort: str
    order: str
    generated_at: str


# --- pipeline --------------------------------------------------------------------------


class RetailerList(BaseModel):
    retailers: list[str] = Field(
        description="retailers the enabled sources of sources.yaml provide"
    )


class PartitionRange(Strict):
    start: PartitionKey
    end: PartitionKey


class LaunchBody(Strict):
    job: JobName = Field(description="A job of the code location, e.g. ingest_critical")
    partition: PartitionKey | None = Field(
        None, description="One raw-price partition, `<day>|<retailer>`"
    )
    partition_range: PartitionRange | None = Field(
        None, description="A contiguous range of partitions, launched as one run"
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=10)

    @model_validator(mode="after")
    def _one_scope(self) -> LaunchBody:
        if self.partition and self.partition_range:
            raise ValueError("give partition or partition_range, not both")
        return self


class LaunchAnswer(BaseModel):
    run_id: str
    job_name: str
    status: str
    scope: str


class TerminateAnswer(BaseModel):
    run_id: str
    job_name: str
    status: str


class PipelineStatus(BaseModel):
    code_location: str
    jobs: list[str]
    runs: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    sensors: list[dict[str, Any]]


# --- config and labels -----------------------------------------------------------------

NonNegativeInt = Annotated[int, Field(ge=0, le=10_000_000_000)]
NonNegativeFloat = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
Retailers = Annotated[list[RetailerName], Field(min_length=1, max_length=50)]


def _setting_type(default: Any) -> Any:
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return NonNegativeInt
    if isinstance(default, float):
        return NonNegativeFloat
    if isinstance(default, tuple):
        return Retailers
    return Annotated[str, Field(max_length=200, pattern=SAFE_TEXT)]


def _config_update_model() -> type[BaseModel]:
    """Every business setting (``Thresholds``), optional: a new setting is editable through
    the API as soon as it exists. Values are checked again by ``coerce_setting``."""
    defaults = Thresholds()
    fields: dict[str, Any] = {
        f.name: (_setting_type(getattr(defaults, f.name)) | None, None)
        for f in dataclasses.fields(Thresholds)
    }
    # money settings by their currency-neutral names too (min_margin = min_margin_clp)
    fields.update({alias: fields[key] for alias, key in SETTING_ALIASES.items()})
    return create_model(
        "ConfigUpdate",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Any subset of the business settings; unknown keys are refused.",
        **fields,
    )


ConfigUpdate = _config_update_model()


def config_changes(update: BaseModel) -> dict[str, Any]:
    """The settings to change, by their stored names; ``ValueError`` when a setting is given
    twice (by both of its names) with different values."""
    changes: dict[str, Any] = {}
    for name, value in update.model_dump(exclude_unset=True, exclude_none=True).items():
        key = setting_key(name)
        if key in changes and changes[key] != value:
            raise ValueError(f"{key} given twice with different values")
        changes[key] = value
    return changes


class LabelBody(Strict):
    decision: Literal["confirm", "reject"]
    note: Annotated[str, Field(max_length=500, pattern=SAFE_TEXT)] | None = None


class HealthAnswer(BaseModel):
    status: Literal["ok", "degraded", "down"]
    components: dict[str, dict[str, Any]]
