"""Pagination kinds and their stop rules, against an in-memory transport (no sockets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from arbx_dagster.ingestion.connectors import FetchMode, FetchRequest, build_connector
from arbx_dagster.ingestion.connectors.base import concat_batches
from arbx_dagster.ingestion.sources_file import parse_sources

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
FAST = "rate_limit: {requests_per_second: 1000, burst: 100}"


def _run(yaml_text: str, handler: object, **request: object) -> tuple[object, object, list[str]]:
    seen: list[str] = []

    def recording(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return handler(req)  # type: ignore[operator]

    source = parse_sources(yaml_text).retailers[0]
    connector = build_connector(source, transport=httpx.MockTransport(recording))
    frame, stats = concat_batches(connector.fetch(FetchRequest(observed_at=NOW, **request)))
    return frame, stats, seen


def _items(*skus: str) -> list[dict]:
    return [{"id": s, "title": f"Item {s}", "price": "$1.990"} for s in skus]


def test_cursor_pagination_follows_the_next_cursor_until_none() -> None:
    pages = {"": ("c2", ["1", "2"]), "c2": ("c3", ["3"]), "c3": (None, ["4"])}

    def handler(request: httpx.Request) -> httpx.Response:
        cursor, skus = pages[request.url.params.get("after", "")]
        return httpx.Response(200, json={"items": _items(*skus), "next": cursor})

    frame, stats, urls = _run(
        f"""
retailers:
  - name: shop
    connector: http_json
    base_url: https://shop.test
    {FAST}
    listing:
      url: /api/search?q=tv
      pagination: {{kind: cursor, param: after, cursor_path: next}}
      items_path: items
      fields: {{sku: id, name: title, price_offer: price}}
""",
        handler,
        mode=FetchMode.LISTING_PAGES,
    )
    assert frame["sku"].to_list() == ["1", "2", "3", "4"]
    assert frame["listing_rank"].to_list() == [1, 2, 3, 4]
    assert urls == [
        "https://shop.test/api/search?q=tv",
        "https://shop.test/api/search?q=tv&after=c2",
        "https://shop.test/api/search?q=tv&after=c3",
    ]
    assert stats.pages == 3


def test_offset_pagination_stops_at_the_total_and_a_repeating_cursor_stops_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["offset"])
        skus = [str(i) for i in range(start, min(start + 2, 5))]
        return httpx.Response(200, json={"total": 5, "results": _items(*skus)})

    frame, _, urls = _run(
        f"""
retailers:
  - name: shop
    connector: http_json
    base_url: https://shop.test
    {FAST}
    listing:
      url: /api/list
      pagination: {{kind: offset, page_size: 2, size_param: limit, total_items_path: total}}
      items_path: results
      fields: {{sku: id, name: title, price_offer: price}}
""",
        handler,
    )
    assert frame["sku"].to_list() == ["0", "1", "2", "3", "4"]
    assert [u.split("?")[1] for u in urls] == [
        "offset=0&limit=2",
        "offset=2&limit=2",
        "offset=4&limit=2",
    ]

    def looping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": _items("x"), "next": "same"})

    _, _, urls = _run(
        f"""
retailers:
  - name: shop
    connector: http_json
    base_url: https://shop.test
    {FAST}
    listing:
      url: /api/search
      pagination: {{kind: cursor, cursor_path: next}}
      items_path: items
      fields: {{sku: id}}
""",
        looping,
    )
    assert len(urls) == 2  # the cursor came back: stop instead of looping forever


def test_html_next_links_and_the_max_pages_guard() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("p", "1"))
        body = f"""<html><body><ul class="grid">
          <li class="tile" data-sku="S{page}"><h3>Item {page}</h3><b>$9.990</b></li></ul>
          <a class="next" href="?p={page + 1}">Siguiente</a></body></html>"""
        return httpx.Response(200, text=body, headers={"content-type": "text/html"})

    frame, stats, urls = _run(
        f"""
retailers:
  - name: shop
    connector: html
    base_url: https://shop.test
    {FAST}
    listing:
      url: /c/tv
      pagination: {{kind: cursor, next_selector: a.next, max_pages: 3}}
      container: ul.grid
      item: li.tile
      fields: {{sku: "::attr(data-sku)", name: h3, price_offer: b}}
""",
        handler,
    )
    assert frame["sku"].to_list() == ["S1", "S2", "S3"]
    assert urls[1] == "https://shop.test/c/tv?p=2"
    assert stats.truncated and "stopped after max_pages=3" in stats.errors[0]


def test_a_product_api_in_full_mode_and_a_non_json_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/list":
            return httpx.Response(200, json={"items": _items("A", "B")})
        if request.url.path.endswith("/A"):
            return httpx.Response(200, json={"product": {"brand": "LG", "stock": 3}})
        return httpx.Response(200, text="<html>maintenance</html>")

    frame, stats, _ = _run(
        f"""
retailers:
  - name: shop
    connector: http_json
    base_url: https://shop.test
    {FAST}
    listing:
      url: /api/list
      items_path: items
      fields: {{sku: id, name: title, price_offer: price}}
    product:
      url: /api/product/{{sku}}
      fields: {{brand: product.brand, stock_qty: product.stock}}
""",
        handler,
    )
    assert frame.select("sku", "brand", "stock_qty", "price_offer").rows() == [
        ("A", "LG", 3, 1_990),
        ("B", None, None, 1_990),  # the product page was unreadable: listing data only
    ]
    assert stats.layout_errors == 1 and "response is not JSON" in stats.errors[0]
    assert json.dumps(stats.as_metadata())  # plain values, ready for run metadata
