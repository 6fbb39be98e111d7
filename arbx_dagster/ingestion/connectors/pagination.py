"""Listing pages one after another: the request for the next page of a target, by
pagination kind (``page``, ``offset``, ``cursor``, ``none``), from what the last page said."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urljoin

from arbx_dagster.ingestion.source_pages import Pagination


@dataclass
class ParsedPage:
    """A listing page as a parser read it."""

    items: list[dict[str, Any]]
    structure_error: str | None = None  # items path / container not found: layout changed
    total_pages: int | None = None
    total_items: int | None = None
    next_cursor: str | None = None
    next_url: str | None = None


def template_url(base_url: str, url: str) -> str:
    """URL templates are appended to ``base_url`` unless absolute."""
    if url.startswith(("http://", "https://")):
        return url
    return base_url.rstrip("/") + "/" + url.lstrip("/")


class Pager:
    """The next listing request for one target, by pagination kind."""

    def __init__(self, pagination: Pagination) -> None:
        self.p = pagination
        self.page = pagination.first
        self.offset = pagination.first
        self.cursor: str | None = None
        self.next_url: str | None = None
        self.visited: set[str] = set()  # cursors / next links already followed (no loops)

    def request(
        self, base_url: str, template: str, target: Mapping[str, str], params: Mapping[str, str]
    ) -> tuple[str, dict[str, str | int]]:
        if self.next_url:  # a link from the page: its query travels as params (see below)
            url, _, in_url = self.next_url.partition("?")
            return url, dict(parse_qsl(in_url, keep_blank_values=True))
        values: dict[str, Any] = {**target, "base_url": base_url}
        position: dict[str, Any] = {
            "page": self.page,
            "offset": self.offset,
            "cursor": self.cursor or "",
        }
        url, _, in_url = template.format(**values, **position).partition("?")
        # httpx replaces (not merges) a URL's query with ``params``: merge them ourselves
        query: dict[str, str | int] = dict(parse_qsl(in_url, keep_blank_values=True))
        query.update({k: v.format(**values, **position) for k, v in params.items()})
        if self.p.kind != "none" and f"{{{_position_key(self.p.kind)}}}" not in template:
            value = position[_position_key(self.p.kind)]
            if value != "":
                query[self.p.query_param] = value
        if self.p.size_param and self.p.page_size:
            query[self.p.size_param] = self.p.page_size
        return template_url(base_url, url), query

    def advance(self, parsed: ParsedPage, page_url: str) -> bool:
        n = len(parsed.items)
        if self.p.kind == "none" or n == 0:
            return False
        if self.p.kind == "page":
            if (
                parsed.total_pages is not None
                and self.page - self.p.first + 1 >= parsed.total_pages
            ):
                return False
            self.page += 1
            return True
        if self.p.kind == "offset":
            size = self.p.page_size or n
            if n < size:
                return False
            if parsed.total_items is not None and self.offset + n >= parsed.total_items:
                return False
            self.offset += size
            return True
        if parsed.next_url:
            following = urljoin(page_url, parsed.next_url)
            if following in self.visited:
                return False
            self.visited.add(following)
            self.next_url = following
            return True
        if parsed.next_cursor and parsed.next_cursor not in self.visited:
            self.visited.add(parsed.next_cursor)
            self.cursor = parsed.next_cursor
            return True
        return False


def _position_key(kind: str) -> str:
    return {"page": "page", "offset": "offset", "cursor": "cursor"}[kind]
