"""The dashboard names no store of its own: its retailer filter is filled from the server
(``GET /api/retailers``, the retailers sources.yaml provides), so any retailer appears.
The browser test (tests/e2e/test_dashboard.py) shows it filled in a real page."""

from __future__ import annotations

import re

from arbx_dagster.service.routes.system import STATIC


def test_the_retailer_filter_offers_only_all_until_the_server_lists_the_retailers() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    select = re.search(r'<select id="f-retailer"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None
    assert re.findall(r"<option[^>]*>([^<]*)</option>", select.group(1)) == ["all"]
    for store in ("falabella", "ripley", "paris"):
        assert store not in page.lower()


def test_the_page_asks_the_server_for_the_retailers() -> None:
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert 'api("/api/retailers")' in script
