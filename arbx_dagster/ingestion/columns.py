"""Which column of an export holds which record field, when ``columns:`` does not say.

Retailer exports name their columns their own way (``id``, ``title``, ``sale_price``,
``Precio Oferta``). A column named like a record field, or like one of the common names
below, is read as that field, so two CSV exports land without writing a mapping; what
``columns:`` maps explicitly always wins, and ``arbx sources check`` shows the mapping used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Common names per record field, most specific first (compared folded: lower case, spaces
# and dashes as underscores, accents kept out). Only names that mean one thing: a bare
# ``description`` or ``stock`` (a quantity? yes/no?) is left for an explicit mapping.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "sku_id", "id", "item_id", "product_sku", "article_id", "codigo", "code"),
    "product_id": ("product_id", "parent_id", "group_id"),
    "name": ("name", "title", "product_name", "product_title", "item_name", "nombre"),
    "brand": ("brand", "manufacturer", "marca", "brand_name"),
    "model": ("model", "model_number", "mpn", "modelo", "part_number"),
    "ean": ("ean", "gtin", "gtin13", "upc", "barcode", "ean13"),
    "category": ("category", "category_path", "categoria", "department"),
    "url": ("url", "link", "product_url"),
    "price_offer": (
        "price_offer", "price", "sale_price", "offer_price", "current_price", "precio",
        "precio_oferta", "precio_internet",
    ),
    "price_list": (
        "price_list", "list_price", "regular_price", "msrp", "original_price", "precio_normal",
    ),
    "price_card": ("price_card", "card_price", "precio_tarjeta"),
    "in_stock": ("in_stock", "availability", "available", "instock", "disponible"),
    "stock_qty": ("stock_qty", "quantity", "qty", "inventory", "stock_quantity"),
    "currency": ("currency", "moneda"),
    "observed_at": ("observed_at", "scraped_at", "timestamp"),
    "retailer": ("retailer", "store", "shop", "tienda"),
}  # fmt: skip


def fold(name: str) -> str:
    """``"Sale Price"`` / ``"sale-price"`` -> ``sale_price``."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def guess_columns(header: Iterable[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Record field -> column of ``header`` for every field found: ``explicit`` (the source's
    ``columns:``) first, then a column named like the field, then its common names. A column
    serves one field at most."""
    columns = list(header)
    chosen = {field: column for field, column in explicit.items() if column in columns}
    taken = set(chosen.values())
    by_fold: dict[str, str] = {}
    for column in columns:
        by_fold.setdefault(fold(column), column)
    for field, names in SYNONYMS.items():
        if field in chosen:
            continue
        for name in names:
            column = by_fold.get(name)
            if column is not None and column not in taken:
                chosen[field] = column
                taken.add(column)
                break
    return chosen
