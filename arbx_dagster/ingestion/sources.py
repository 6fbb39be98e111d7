"""``sources.yaml``: which retailers ArbX reads, how, and how politely.

One entry per source, by ``connector``: ``http_json`` and ``html`` (pages read as in
``source_pages.py``, fetched as in ``http_policy.py``), ``file_drop`` and ``simulator``.
Reading and validating the file: ``sources_file.py``.
"""

from __future__ import annotations

import codecs
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from arbx_dagster.domain.money import currency_code
from arbx_dagster.domain.schema import RETAILER_NAME, RETAILERS
from arbx_dagster.ingestion.http_policy import (
    CircuitBreakerPolicy,
    HttpClientConfig,
    RateLimit,
    RetryPolicy,
)
from arbx_dagster.ingestion.source_pages import HtmlListing, JsonListing, ProductPage
from arbx_dagster.ingestion.source_types import MAPPABLE_FIELDS, ConfigModel, FieldName, Name, Tier


class FirstParty(ConfigModel):
    """How to tell the store itself from marketplace sellers (in this order)."""

    marketplace_sku_prefixes: tuple[str, ...] = ()  # Ripley: marketplace SKUs start with MPM
    seller_ids: tuple[str, ...] = ()  # Falabella: the seller id of Falabella itself
    seller_names: tuple[str, ...] = ()  # Paris: "Paris.cl"
    default_seller: str | None = None  # seller shown for first-party rows without one


# --- sources ---------------------------------------------------------------------------


class _Source(ConfigModel):
    name: Name
    enabled: bool = True
    # The currency its prices are printed in (read into integer minor units: whole CLP,
    # USD cents); the market's ``currency`` setting must be the same for its rows to land.
    currency: Annotated[str, AfterValidator(currency_code)] = "CLP"
    card_program: str | None = None
    default_tier: Tier = "tracking"
    first_party: FirstParty = FirstParty()
    constants: dict[FieldName, str] = Field(
        default_factory=dict, description="values for fields the store leaves out, e.g. condition"
    )
    assume_in_stock: bool = Field(
        False,
        description="a row that does not say whether it is in stock is (an export of what "
        "the store sells); otherwise unknown stock is never bought",
    )

    @property
    def fill_values(self) -> dict[str, str]:
        """What fills the fields a row leaves empty: ``constants``, and ``in_stock`` when
        stock is assumed."""
        assumed = {"in_stock": "true"} if self.assume_in_stock else {}
        return {**assumed, **self.constants}

    @property
    def retailers(self) -> tuple[str, ...]:
        """Retailers whose rows this source yields."""
        return (self.name,)

    def may_yield(self, retailer: str) -> bool:
        """Whether this source may have rows of ``retailer`` (a partition asks it)."""
        return retailer in self.retailers


class _HttpSource(_Source):
    base_url: str = Field(pattern=r"^https?://")
    timeout_seconds: float = Field(20.0, gt=0)
    client: HttpClientConfig = HttpClientConfig()
    user_agent: str | None = Field(
        None, description="default: ArbX's own (httpx) or the impersonated browser's (curl_cffi)"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    max_connections: int = Field(4, ge=1)
    rate_limit: RateLimit = RateLimit()
    retry: RetryPolicy = RetryPolicy()
    circuit_breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()


class HttpJsonSource(_HttpSource):
    connector: Literal["http_json"]
    listing: JsonListing
    product: ProductPage | None = None


class HtmlSource(_HttpSource):
    connector: Literal["html"]
    listing: HtmlListing
    product: ProductPage | None = None


class FileDropSource(_Source):
    """Exports dropped in a landing folder: ``<path>/<retailer>/*.csv`` or a retailer column."""

    connector: Literal["file_drop"]
    path: Path
    retailer: str | None = Field(None, description="fixed retailer; else folder or column")
    known_retailers: tuple[str, ...] | None = Field(
        None,
        description="retailers its folders may name; default: every folder in the landing "
        "folder (its name, lower case, is the retailer)",
    )
    formats: tuple[Literal["csv", "jsonl", "parquet"], ...] = ("csv", "jsonl", "parquet")
    columns: dict[str, str] = Field(default_factory=dict, description="record field -> column")
    infer_columns: bool = Field(
        True,
        description="read columns named like a field or a common name of one (id -> sku, "
        "title -> name, price -> price_offer); `columns` always wins",
    )
    csv_separator: str = Field(",", min_length=1, max_length=1)
    encoding: str = Field(
        "utf-8",
        description="the exports' text encoding (latin-1, cp1252, …); a row that is "
        "not text in it is quarantined, never stored garbled",
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise ValueError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1)") from None

    settle_seconds: float = Field(10.0, ge=0)
    require_stable_size: bool = True
    partial_suffixes: tuple[str, ...] = (".part", ".tmp", ".crdownload", ".partial")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        known = {*MAPPABLE_FIELDS, "retailer", "observed_at", "listing_rank", "fetch_status"}
        unknown = sorted(set(columns) - known)
        if unknown:
            raise ValueError(f"unknown record fields {unknown}")
        return columns

    @property
    def retailers(self) -> tuple[str, ...]:
        """The fixed retailer, else the declared ones, else the landing folder's folders."""
        if self.retailer:
            return (self.retailer,)
        if self.known_retailers is not None:
            return self.known_retailers
        return retailer_folders(Path(self.path).expanduser())

    def may_yield(self, retailer: str) -> bool:
        """Its retailers' folders, and any retailer a ``retailer`` column of a file at the top
        of the landing folder may name (which only reading the file tells)."""
        if retailer in self.retailers:
            return True
        root = Path(self.path).expanduser()
        open_ended = self.retailer is None and self.known_retailers is None
        loose = root.is_dir() and any(
            p.is_file() and not p.name.startswith((".", "_", "~")) for p in root.iterdir()
        )
        return open_ended and loose


def retailer_folders(root: Path) -> tuple[str, ...]:
    """The retailers a landing folder's sub-folders name (``landing/walmart/`` -> walmart):
    lower-cased, hidden and ``_``-prefixed folders left out, names that cannot be a retailer
    (``"My Store"``) too."""
    if not root.is_dir():
        return ()
    names = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    return tuple(sorted(n for n in names if RETAILER_NAME.match(n)))


class SimulatorSource(_Source):
    """The deterministic market simulator behind the connector interface."""

    connector: Literal["simulator"]
    simulated_retailers: tuple[str, ...] = Field(RETAILERS, alias="retailers")
    seed: int = 7
    n_products: int = Field(400, ge=1)
    days: int = Field(60, ge=1)
    end: date | None = Field(None, description="last simulated day; default: today (Chile)")

    @property
    def retailers(self) -> tuple[str, ...]:
        return self.simulated_retailers


Source = Annotated[
    HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource,
    Field(discriminator="connector"),
]
HttpSource = HttpJsonSource | HtmlSource


class ArchiveConfig(ConfigModel):
    """Where raw payloads go: a local folder or any fsspec URL (``s3://bucket/arbx``).
    Unset, ``resources.sources.resolve_sources`` puts it in ``$ARBX_HOME/archive``."""

    root: str = ".arbx/archive"
    codec: Literal["zstd", "gzip"] = "zstd"
    storage_options: dict[str, Any] = Field(default_factory=dict)


class SourcesConfig(ConfigModel):
    version: Literal[1] = 1
    archive: ArchiveConfig = ArchiveConfig()
    retailers: list[Source]

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        """``defaults:`` fill each retailer's unset keys (nested tables merged)."""
        if not isinstance(data, dict) or "defaults" not in data:
            return data
        data = dict(data)
        defaults = data.pop("defaults") or {}
        if not isinstance(defaults, dict):
            raise ValueError("defaults must be a mapping")
        retailers = data.get("retailers")
        if isinstance(retailers, list):
            data["retailers"] = [
                _merge(defaults, r, r.get("connector")) if isinstance(r, dict) else r
                for r in retailers
            ]
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesConfig:
        names = [s.name for s in self.retailers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"retailer names must be unique; repeated: {dupes}")
        return self

    def get(self, name: str) -> HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource:
        for source in self.retailers:
            if source.name == name:
                return source
        raise KeyError(f"no source named {name!r}; known: {[s.name for s in self.retailers]}")

    def enabled(self) -> list[HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource]:
        return [s for s in self.retailers if s.enabled]

    def provided_retailers(self) -> list[str]:
        """Every retailer an enabled source covers, sorted: the partitions, and the only
        retailers ``enabled_retailers`` may name."""
        return sorted({retailer for source in self.enabled() for retailer in source.retailers})

    def fetched(self, retailers: list[str]) -> list[str]:
        """Those of ``retailers`` some enabled source is asked for prices (a scraper, an API,
        the simulator): a retailer fed only by file drops gets its prices when files land
        (the file-drop sensor), so a tier's schedule has nothing to ask it."""
        return [
            r
            for r in retailers
            if any(not isinstance(s, FileDropSource) for s in self.sources_for(r))
        ]

    def sources_for(
        self, retailer: str
    ) -> list[HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource]:
        """Enabled sources whose rows include ``retailer`` (a store may have several)."""
        return [s for s in self.enabled() if s.may_yield(retailer)]


_HTTP_ONLY = {
    "timeout_seconds", "client", "user_agent", "headers", "max_connections", "rate_limit", "retry",
    "circuit_breaker",
}  # fmt: skip


def _merge(defaults: dict[str, Any], source: dict[str, Any], kind: object) -> dict[str, Any]:
    merged = dict(source)
    for key, value in defaults.items():
        if key in _HTTP_ONLY and kind not in ("http_json", "html"):
            continue
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**value, **merged[key]}
    return merged
