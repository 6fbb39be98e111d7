"""``sources.yaml``: which retailers ArbX reads, how, and how politely.

Adding a retailer is an edit to this file, so it is validated up front with errors that say
where the problem is (``sources.yaml:14: retailers[1] (ripley).listing.pagination.kind: must
be one of page, cursor, offset, none (got 'pages')``) rather than failing mid-scrape.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import string
import typing
from collections.abc import Callable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import jmespath
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from arbx_dagster.domain.money import currency_code
from arbx_dagster.domain.schema import RETAILER_NAME, RETAILERS
from arbx_dagster.settings import Settings

ENV_VAR = "ARBX_SOURCES"
DEFAULT_FILE = "sources.example.yaml"
DEFAULT_FILE_IN_HOME = "sources.yaml"  # in ARBX_HOME: what `arbx import` writes
USER_AGENT = "ArbX/0.1 (+https://github.com/arbx; price-intelligence bot)"

# Record fields a mapping may fill. ``seller_id`` only feeds the first-party rule.
MAPPABLE_FIELDS: tuple[str, ...] = (
    "sku", "product_id", "variant", "url", "name", "brand", "model", "ean", "category",
    "price_list", "price_offer", "price_card", "card_program", "currency", "in_stock",
    "stock_qty", "seller", "seller_id", "is_first_party", "condition", "image_urls",
)  # fmt: skip
FieldName = Literal[
    "sku", "product_id", "variant", "url", "name", "brand", "model", "ean", "category",
    "price_list", "price_offer", "price_card", "card_program", "currency", "in_stock",
    "stock_qty", "seller", "seller_id", "is_first_party", "condition", "image_urls",
]  # fmt: skip
Tier = Literal["critical", "important", "tracking"]


class SourcesError(ValueError):
    """``sources.yaml`` is missing or wrong; the message lists every problem with its place."""


# --- expression types ------------------------------------------------------------------


def _check_jmespath(expression: str) -> str:
    """Compile once at load time so a typo fails the config, not the 3 a.m. scrape."""
    try:
        jmespath.compile(_fill_templates(expression))
    except jmespath.exceptions.JMESPathError as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"invalid JMESPath {expression!r}: {reason}") from None
    return expression


def _check_css(spec: str) -> str:
    from arbx_dagster.ingestion.extract import CssSpec

    CssSpec.parse(spec)  # raises ValueError with the reason
    return spec


def _fill_templates(expression: str) -> str:
    return re.sub(r"\{(sku|product_id)\}", "x", expression)


JmesPath = Annotated[str, AfterValidator(_check_jmespath)]
Css = Annotated[str, AfterValidator(_check_css)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- politeness ------------------------------------------------------------------------


class RateLimit(_Model):
    """Token bucket shared by every worker scraping the retailer."""

    requests_per_second: float = Field(1.0, gt=0)
    burst: int = Field(2, ge=1)


class RetryPolicy(_Model):
    """Exponential backoff with jitter; ``Retry-After`` wins when the server sends one."""

    max_attempts: int = Field(4, ge=1, le=20)
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    retry_on_status: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retry_after_seconds: float = Field(120.0, ge=0)


class CircuitBreakerPolicy(_Model):
    """Stop hammering a retailer that keeps failing; probe again after a cool-down."""

    failure_threshold: int = Field(5, ge=1)
    cooldown_seconds: float = Field(300.0, gt=0)


ClientKind = Literal["httpx", "curl_cffi"]
# curl_cffi's names for "the latest it knows" of each browser; pinned versions (chrome124,
# safari184, …) are accepted when the installed curl_cffi knows them.
BROWSERS = ("chrome", "edge", "safari", "safari_ios", "chrome_android", "firefox", "tor")
DEFAULT_BROWSER = "chrome"


class HttpClientConfig(_Model):
    """Which HTTP client fetches a source's pages (``client:`` in ``sources.yaml``).

    ``httpx`` (default): a plain client with ArbX's honest User-Agent. ``curl_cffi``: a
    session that impersonates a real browser (its TLS and HTTP/2 fingerprint and its default
    headers, User-Agent included) for a store whose bot protection refuses plain clients;
    ``impersonate`` names the browser (default ``chrome``, the latest Chrome curl_cffi
    knows; or a pinned version such as ``chrome124``). Retries, rate limit, circuit breaker,
    timeouts, ``headers`` and the archive work the same with either. ``client: curl_cffi``
    is short for ``client: {kind: curl_cffi}``.
    """

    kind: ClientKind = "httpx"
    impersonate: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @field_validator("impersonate")
    @classmethod
    def _known_browser(cls, value: str | None) -> str | None:
        if value is None:
            return value
        known = impersonation_targets()
        if value not in known:
            close = difflib.get_close_matches(value, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown browser {value!r} to impersonate: one of {', '.join(BROWSERS)}, "
                f"or a version curl_cffi knows such as chrome124{hint}"
            )
        return value

    @model_validator(mode="after")
    def _impersonation_needs_curl_cffi(self) -> HttpClientConfig:
        if self.impersonate is not None and self.kind != "curl_cffi":
            raise ValueError(
                f"impersonate needs kind: curl_cffi (the {self.kind} client cannot "
                "impersonate a browser)"
            )
        return self

    @property
    def browser(self) -> str | None:
        """The browser a ``curl_cffi`` client impersonates (None for ``httpx``)."""
        if self.kind != "curl_cffi":
            return None
        return self.impersonate or DEFAULT_BROWSER


def impersonation_targets() -> frozenset[str]:
    """Browser names the installed curl_cffi can impersonate."""
    from curl_cffi.requests.impersonate import BrowserTypeLiteral  # only where it is used

    return frozenset((*typing.get_args(BrowserTypeLiteral), *BROWSERS))


# --- crawling --------------------------------------------------------------------------


class Pagination(_Model):
    """How listing pages follow each other.

    ``page``: ``param`` = 1, 2, … until the first empty page, or ``total_pages_path``.
    ``offset``: ``param`` = start, start + page_size, … until a short page or ``total_items_path``.
    ``cursor``: the next cursor from ``cursor_path`` (JSON) or the next link's href
    (``next_selector``, HTML) until there is none. ``none``: one page per target.
    """

    kind: Literal["page", "cursor", "offset", "none"] = "none"
    param: str | None = None
    start: int | None = None
    page_size: int | None = Field(None, ge=1)
    size_param: str | None = None
    total_pages_path: JmesPath | None = None
    total_items_path: JmesPath | None = None
    cursor_path: JmesPath | None = None
    next_selector: Css | None = None
    max_pages: int = Field(200, ge=1)

    @model_validator(mode="after")
    def _complete(self) -> Pagination:
        if self.kind == "offset" and self.page_size is None:
            raise ValueError("offset pagination needs page_size")
        if self.kind == "cursor" and not (self.cursor_path or self.next_selector):
            raise ValueError("cursor pagination needs cursor_path (JSON) or next_selector (HTML)")
        return self

    @property
    def first(self) -> int:
        if self.start is not None:
            return self.start
        return 0 if self.kind == "offset" else 1

    @property
    def query_param(self) -> str:
        return self.param or {"page": "page", "offset": "offset", "cursor": "cursor"}.get(
            self.kind, "page"
        )


def _require_sku(fields: dict[str, str]) -> dict[str, str]:
    if "sku" not in fields:
        raise ValueError("must map 'sku' (the retailer's id of the listing)")
    return fields


class _Listing(_Model):
    """Category/search pages: the cheap pass that the critical tier runs every 30 minutes."""

    url: str = Field(description="URL template, relative to base_url; {vars} from targets")
    targets: list[dict[str, str]] = Field(default_factory=lambda: [{}])
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = Pagination()

    @model_validator(mode="after")
    def _targets_fill_template(self) -> _Listing:
        needed = _placeholders(self.url) - {"base_url", "page", "offset", "cursor"}
        for i, target in enumerate(self.targets):
            missing = sorted(needed - set(target))
            if missing:
                raise ValueError(f"targets[{i}] lacks {missing} used by url {self.url!r}")
        return self


class JsonListing(_Listing):
    items_path: JmesPath = Field(description="JMESPath to the list of items in a page")
    fields: Annotated[dict[FieldName, JmesPath], AfterValidator(_require_sku)]


class HtmlListing(_Listing):
    container: Css | None = Field(None, description="Must exist on every page, else layout changed")
    item: Css = Field(description="CSS selector of one product tile")
    fields: Annotated[dict[FieldName, Css], AfterValidator(_require_sku)]


class ProductPage(_Model):
    """Product detail page or API (full mode).

    ``embedded`` says where the data is: ``json`` (the response is JSON), or in an HTML page
    as ``json_ld`` (schema.org Product), ``next_data`` (``__NEXT_DATA__``), ``script_var``
    (``window.<variable> = {...}``); ``fields`` read it with JMESPath (``{sku}`` picks the
    variant). ``selectors`` read HTML pages with CSS.
    """

    url: str = Field("{url}", description="template: {url}, {sku}, {product_id}, {base_url}")
    embedded: Literal["json", "json_ld", "next_data", "script_var", "none"] = "json"
    variable: str | None = Field(None, description="script_var: e.g. productJSON")
    fields: dict[FieldName, JmesPath] = Field(default_factory=dict)
    selectors: dict[FieldName, Css] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ProductPage:
        if self.embedded == "script_var" and not self.variable:
            raise ValueError("embedded: script_var needs variable (e.g. productJSON)")
        if self.fields and self.embedded == "none":
            raise ValueError("fields read embedded JSON: set embedded, or use selectors")
        if self.selectors and self.embedded == "json":
            raise ValueError("selectors read HTML pages; a JSON response uses fields")
        if not self.fields and not self.selectors:
            raise ValueError("map at least one field (fields or selectors)")
        return self


class FirstParty(_Model):
    """How to tell the store itself from marketplace sellers (in this order)."""

    marketplace_sku_prefixes: tuple[str, ...] = ()  # Ripley: marketplace SKUs start with MPM
    seller_ids: tuple[str, ...] = ()  # Falabella: the seller id of Falabella itself
    seller_names: tuple[str, ...] = ()  # Paris: "Paris.cl"
    default_seller: str | None = None  # seller shown for first-party rows without one


# --- sources ---------------------------------------------------------------------------


class _Source(_Model):
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


class ArchiveConfig(_Model):
    """Where raw payloads go: a local folder or any fsspec URL (``s3://bucket/arbx``).
    Unset, ``resources.sources.resolve_sources`` puts it in ``$ARBX_HOME/archive``."""

    root: str = ".arbx/archive"
    codec: Literal["zstd", "gzip"] = "zstd"
    storage_options: dict[str, Any] = Field(default_factory=dict)


class SourcesConfig(_Model):
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


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


# --- loading ---------------------------------------------------------------------------


def default_sources_path() -> Path:
    """``$ARBX_SOURCES``, else the state folder's ``sources.yaml`` (what ``arbx import``
    writes), else the documented example: the working folder's, else the one shipped in
    the package (the repository's top-level file, linked), so an installed ArbX runs."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    # An installed package is a folder on disk, so its data files are plain paths.
    shipped = Path(str(resources.files("arbx_dagster") / DEFAULT_FILE))
    for candidate in (
        Settings.from_env().home / DEFAULT_FILE_IN_HOME,
        Path.cwd() / DEFAULT_FILE,
        shipped,
    ):
        if candidate.exists():
            return candidate
    return Path(DEFAULT_FILE)


def load_sources(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> SourcesConfig:
    """Read and validate ``sources.yaml``; raise :class:`SourcesError` listing every problem."""
    path = Path(path) if path is not None else default_sources_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError(f"{path}: cannot read sources file ({exc.strerror or exc})") from None
    return parse_sources(text, origin=str(path), environ=environ)


def parse_sources(
    text: str, origin: str = "sources.yaml", environ: Mapping[str, str] | None = None
) -> SourcesConfig:
    """Validate YAML text. ``${VAR}`` / ``${VAR:-default}`` in values (not comments) expand
    from ``environ`` (default: the process environment); a default may itself hold
    references (``${ARBX_ARCHIVE:-${ARBX_HOME:-.arbx}/archive}``), read only when needed."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise SourcesError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SourcesError(f"{origin}: expected a mapping with a 'retailers' list at the top")
    data = _expand_env(data, (), root, origin, os.environ if environ is None else environ)
    try:
        return SourcesConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(error, data, root, origin) for error in exc.errors()]
        raise SourcesError("\n".join(lines)) from None


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand_env(
    value: Any,
    loc: tuple[Any, ...],
    root: yaml.Node | None,
    origin: str,
    environ: Mapping[str, str],
) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, (*loc, k), root, origin, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*loc, i), root, origin, environ) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def unset(name: str) -> str:
        line = _line_of(root, loc)
        where = f"{origin}:{line}" if line else origin
        raise SourcesError(
            f"{where}: {_loc_text(loc, {})}: environment variable {name} is not set "
            f"(use ${{{name}:-default}} for a default)"
        )

    return _substitute(value, environ, unset)


def _substitute(text: str, environ: Mapping[str, str], unset: Callable[[str], str]) -> str:
    """Expand ``${NAME}`` and ``${NAME:-default}`` (a default is expanded in turn, only when
    used); anything else between ``${`` and ``}`` is kept as written."""
    out: list[str] = []
    done = 0
    while (start := text.find("${", done)) >= 0:
        end = _closing_brace(text, start + 2)
        if end < 0:
            break
        name, has_default, default = text[start + 2 : end].partition(":-")
        out.append(text[done:start])
        if not _ENV_NAME.fullmatch(name):
            out.append(text[start : end + 1])
        elif name in environ:
            out.append(environ[name])
        elif has_default:
            out.append(_substitute(default, environ, unset))
        else:
            out.append(unset(name))
        done = end + 1
    return "".join(out) + text[done:]


def _closing_brace(text: str, position: int) -> int:
    """Where the ``}`` closing a ``${`` opened just before ``position`` is (-1: nowhere)."""
    depth = 1
    while position < len(text):
        if text.startswith("${", position):
            depth += 1
            position += 2
            continue
        if text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return -1


def _describe(error: Any, data: dict[str, Any], root: yaml.Node | None, origin: str) -> str:
    loc = _clean_loc(tuple(error["loc"]))
    if error["type"].startswith("union_tag"):
        loc = (*loc, "connector")
    where = _loc_text(loc, data)
    line = _line_of(root, loc)
    prefix = f"{origin}:{line}" if line else origin
    return f"{prefix}: {where or '(top)'}: {_message(error)}"


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's internal steps (union tags, ``[key]``) from an error location."""
    kinds = {"http_json", "html", "file_drop", "simulator"}
    cleaned: list[Any] = []
    for i, step in enumerate(loc):
        if step in kinds and i > 0 and isinstance(loc[i - 1], int):
            continue
        if step == "[key]" or (isinstance(step, str) and step.startswith("function-")):
            continue
        cleaned.append(step)
    return tuple(cleaned)


def _loc_text(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """``retailers[1] (ripley).listing.pagination.kind`` from pydantic's location tuple."""
    text = ""
    for i, step in enumerate(loc):
        if not isinstance(step, int):
            text += f".{step}" if text else str(step)
            continue
        text += f"[{step}]"
        if i == 1 and loc[0] == "retailers" and step < len(data.get("retailers") or []):
            entry = data["retailers"][step]
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                text += f" ({entry['name']})"
    return text


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node the error location reaches."""
    node, line = root, None
    for step in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
            if node is None:  # a missing key: point at the mapping that lacks it
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            break
    return node.start_mark.line + 1 if node is not None else line


_PATTERN_HINTS = {
    r"^[a-z][a-z0-9_-]*$": "must be lower case letters, digits, '-' or '_', starting with a letter",
    r"^https?://": "must start with http:// or https://",
}


def _message(error: Any) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be one of {', '.join(expected)} (got {value!r})"
    if kind == "union_tag_invalid":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        return f"must be one of {', '.join(expected)} (got {ctx.get('tag')!r})"
    if kind == "union_tag_not_found":
        return "missing 'connector' (http_json, html, file_drop or simulator)"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERN_HINTS.get(pattern, f"must match {pattern}") + f" (got {value!r})"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see sources.example.yaml)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
