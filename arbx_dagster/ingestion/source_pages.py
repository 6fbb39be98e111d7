"""How a source's pages are read: listing pages (JSON or HTML) and how they follow each
other, and product pages (``listing:`` and ``product:`` in ``sources.yaml``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from arbx_dagster.ingestion.source_types import ConfigModel, Css, FieldName, JmesPath, placeholders


class Pagination(ConfigModel):
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


class _Listing(ConfigModel):
    """Category/search pages: the cheap pass that the critical tier runs every 30 minutes."""

    url: str = Field(description="URL template, relative to base_url; {vars} from targets")
    targets: list[dict[str, str]] = Field(default_factory=lambda: [{}])
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = Pagination()

    @model_validator(mode="after")
    def _targets_fill_template(self) -> _Listing:
        needed = placeholders(self.url) - {"base_url", "page", "offset", "cursor"}
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


class ProductPage(ConfigModel):
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
