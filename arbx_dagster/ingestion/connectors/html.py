"""Storefront HTML (Paris-style): a product grid read with CSS selectors. Product pages (full
mode) are read by the shared product parser (embedded JSON-LD, ``__NEXT_DATA__``,
``window.productJSON``, or CSS selectors).

``listing.container`` must be on every grid page: when it is gone the layout changed, which
is reported as such instead of as an empty category.
"""

from __future__ import annotations

from typing import Any

from arbx_dagster.ingestion.connectors.crawl import CrawlConnector
from arbx_dagster.ingestion.connectors.pagination import ParsedPage
from arbx_dagster.ingestion.extract import CssSpec, parse_html
from arbx_dagster.ingestion.sources import HtmlSource


class HtmlConnector(CrawlConnector):
    source: HtmlSource

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        listing = self.source.listing
        self._fields = {name: CssSpec.parse(spec) for name, spec in listing.fields.items()}
        nxt = listing.pagination.next_selector
        self._next = CssSpec.parse(nxt if "::" in nxt else f"{nxt}::attr(href)") if nxt else None

    def parse_listing(self, content: bytes, url: str) -> ParsedPage:
        listing = self.source.listing
        tree = parse_html(content)
        scope = tree.root
        if listing.container:
            scope = tree.css_first(listing.container)
            if scope is None:
                return ParsedPage(
                    items=[], structure_error=f"container {listing.container!r} not found"
                )
        if scope is None:
            return ParsedPage(items=[], structure_error="empty document")
        items = [
            {name: spec.extract(node) for name, spec in self._fields.items()}
            for node in scope.css(listing.item)
        ]
        next_url = self._next.extract(tree.root) if self._next and tree.root else None
        return ParsedPage(items=items, next_url=next_url if isinstance(next_url, str) else None)
