"""Catalogue / search JSON APIs (Falabella's listing API, Ripley's catalogue API).

Items are found with ``listing.items_path`` and read with one JMESPath per record field;
pagination totals and cursors are JMESPaths too. An ``items_path`` that matches nothing
(rather than an empty list) means the API changed shape: that is a layout error, not an
empty category.
"""

from __future__ import annotations

from typing import Any

from arbx_dagster.ingestion.connectors.crawl import CrawlConnector
from arbx_dagster.ingestion.connectors.pagination import ParsedPage
from arbx_dagster.ingestion.extract import PayloadError, json_value, load_json
from arbx_dagster.ingestion.sources import HttpJsonSource


class HttpJsonConnector(CrawlConnector):
    source: HttpJsonSource

    def parse_listing(self, content: bytes, url: str) -> ParsedPage:
        listing = self.source.listing
        try:
            data = load_json(content)
        except PayloadError as exc:
            return ParsedPage(items=[], structure_error=str(exc))
        found = json_value(data, listing.items_path)
        if not isinstance(found, list):
            what = "nothing" if found is None else type(found).__name__
            return ParsedPage(
                items=[], structure_error=f"items_path {listing.items_path!r} found {what}"
            )
        items = [_fields(item, listing.fields) for item in found]
        pagination = listing.pagination
        return ParsedPage(
            items=items,
            total_pages=_int(data, pagination.total_pages_path),
            total_items=_int(data, pagination.total_items_path),
            next_cursor=_text(data, pagination.cursor_path),
        )


def _fields(item: Any, fields: dict[str, str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {}
    return {name: json_value(item, expression) for name, expression in fields.items()}


def _int(data: Any, path: str | None) -> int | None:
    if path is None:
        return None
    value = json_value(data, path)
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _text(data: Any, path: str | None) -> str | None:
    if path is None:
        return None
    value = json_value(data, path)
    return str(value) if value not in (None, "") else None
