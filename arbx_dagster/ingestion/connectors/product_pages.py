"""Product pages: where an item's page is, how it is read (``product.embedded``, the same
for every store), and the links in what was read, made absolute."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from arbx_dagster.ingestion.archive import PayloadRef
from arbx_dagster.ingestion.connectors.pagination import template_url
from arbx_dagster.ingestion.extract import (
    CssSpec,
    PayloadError,
    embedded_json,
    json_value,
    load_json,
    parse_html,
)
from arbx_dagster.ingestion.records import to_text
from arbx_dagster.ingestion.source_pages import ProductPage
from arbx_dagster.ingestion.stats import FetchStats


@dataclass
class ParsedProduct:
    fields: dict[str, Any]
    error: str | None = None  # embedded JSON not found / unreadable


@dataclass(frozen=True)
class ProductPayload:
    """A product page as fetched (or archived): ``ok``, ``gone`` (404/410), ``failed``."""

    outcome: str
    ref: PayloadRef | None = None
    content: bytes = b""


# item fields, batch stats, seq of the listing entry -> the item's product page
ProductSource = Callable[[dict[str, Any], FetchStats, int | None], ProductPayload]


def parse_product_page(
    product: ProductPage | None, content: bytes, sku: str | None
) -> ParsedProduct:
    """A product page or API response, per ``product.embedded`` (same for every kind)."""
    if product is None:
        return ParsedProduct({})
    template = {"sku": sku or ""}
    if product.embedded == "json":
        try:
            data = load_json(content)
        except PayloadError as exc:
            return ParsedProduct({}, str(exc))
        return ParsedProduct(
            {k: json_value(data, v, **template) for k, v in product.fields.items()}
        )
    tree = parse_html(content)
    fields: dict[str, Any] = {}
    error = None
    if product.embedded != "none":
        data, error = embedded_json(tree, product.embedded, product.variable)
        if data is not None:
            fields = {k: json_value(data, v, **template) for k, v in product.fields.items()}
    if tree.root is not None:
        for name, spec in product.selectors.items():
            if fields.get(name) is None:
                fields[name] = CssSpec.parse(spec).extract(tree.root)
    return ParsedProduct(fields, error)


def product_url(product: ProductPage | None, base_url: str, item: dict[str, Any]) -> str | None:
    """The product page of an item: ``product.url`` filled from the item's fields."""
    if product is None:
        return None
    template = product.url
    values = {k: to_text(k, item.get(k)) or "" for k in ("url", "sku", "product_id")}
    needed = [k for k in values if f"{{{k}}}" in template]
    if any(not values[k] for k in needed):
        return None
    filled = template.format(**values, base_url=base_url)
    return template_url(base_url, filled)


def present(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that were found (not None, an empty string or an empty list)."""
    return {k: v for k, v in fields.items() if v is not None and v != [] and v != ""}


def absolute_links(fields: dict[str, Any], page_url: str) -> dict[str, Any]:
    """``url`` and every image URL of extracted fields, resolved against their page."""
    resolved = dict(fields)
    if "url" in fields:
        resolved["url"] = resolve_link(page_url, to_text("url", fields["url"]))
    if "image_urls" in fields:
        images = fields["image_urls"]
        links = images if isinstance(images, list | tuple) else [images]
        absolute = [resolve_link(page_url, to_text("url", link)) for link in links]
        resolved["image_urls"] = [link for link in absolute if link] or None
    return resolved


def resolve_link(page_url: str | None, link: str | None) -> str | None:
    """A link as the browser would follow it from ``page_url``."""
    if not link:
        return None
    return urljoin(page_url or "", link)
