"""JSON-LD on product pages: the schema.org Product is found wherever the page puts it, and a
page without one says why instead of yielding a guess."""

from __future__ import annotations

import json
from typing import Any

from arbx_dagster.ingestion.extract import _json_ld_product, embedded_json, json_value, parse_html

PRODUCT = {
    "@context": "https://schema.org",
    "@type": "Product",
    "name": 'Notebook Lenovo IdeaPad Slim 3 15.6" Ryzen 5 16GB 512GB',
    "sku": "LEN82XB",
    "gtin13": "0196803123456",
    "brand": {"@type": "Brand", "name": "Lenovo"},
    "offers": {
        "@type": "Offer",
        "price": "449990",
        "priceCurrency": "CLP",
        "availability": "https://schema.org/InStock",
    },
}
BREADCRUMBS = {"@type": "BreadcrumbList", "itemListElement": [{"name": "Tecnología"}]}


def _page(*blocks: Any | str) -> bytes:
    """An HTML page with one ``<script type="application/ld+json">`` per block."""
    scripts = "".join(
        '<script type="application/ld+json">'
        + (block if isinstance(block, str) else json.dumps(block))
        + "</script>"
        for block in blocks
    )
    return f"<html><head>{scripts}</head><body><h1>x</h1></body></html>".encode()


def test_a_top_level_product_is_read() -> None:
    node, error = _json_ld_product(parse_html(_page(BREADCRUMBS, PRODUCT)))
    assert error is None
    assert node["sku"] == "LEN82XB"
    assert json_value(node, "offers.price") == "449990"
    assert json_value(node, "brand.name") == "Lenovo"


def test_a_product_inside_a_graph_or_a_list_or_with_several_types_is_found() -> None:
    in_graph = {"@context": "https://schema.org", "@graph": [BREADCRUMBS, PRODUCT]}
    as_list = [BREADCRUMBS, PRODUCT]
    typed = {**PRODUCT, "@type": ["Product", "IndividualProduct"]}
    for page in (_page(in_graph), _page(as_list), _page(typed)):
        node, error = _json_ld_product(parse_html(page))
        assert error is None and node["gtin13"] == "0196803123456"


def test_a_broken_block_does_not_hide_a_good_one() -> None:
    node, error = _json_ld_product(parse_html(_page('{"@type": "Product", "name": ', PRODUCT)))
    assert error is None and node["name"].startswith("Notebook Lenovo")


def test_a_page_without_a_product_says_why() -> None:
    assert _json_ld_product(parse_html(_page(BREADCRUMBS))) == (None, "no JSON-LD Product")
    assert _json_ld_product(parse_html(b"<html><body>redesigned</body></html>")) == (
        None,
        "no JSON-LD Product",
    )
    node, error = _json_ld_product(parse_html(_page('{"@type": "Product",')))
    assert node is None and error is not None and error.startswith("JSON-LD is not valid JSON")


def test_embedded_json_reads_json_ld_for_product_pages() -> None:
    node, error = embedded_json(parse_html(_page(PRODUCT)), "json_ld")
    assert error is None and node["offers"]["priceCurrency"] == "CLP"
