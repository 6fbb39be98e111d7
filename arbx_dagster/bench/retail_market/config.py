"""What the generated market is made of: its stores, categories, promotion lengths and
kinds of mistake, and the knobs of one market (:class:`RetailMarketConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

STORES = ("falabella", "ripley", "paris")
TZ = ZoneInfo("America/Santiago")
CRAWL_HOUR = {"falabella": 5, "ripley": 9, "paris": 15}  # each store's crawl window opens
HIDES_PRICE_WHEN_OUT = ("paris",)


@dataclass(frozen=True)
class Category:
    name: str
    low: int
    high: int
    titles: tuple[str, ...]
    packs: tuple[int, ...] = ()  # pack sizes sold in this category (empty: no packs)


CATEGORIES = (
    Category("televisores", 129_990, 1_999_990, ("Smart TV 50", "Smart TV 65 QLED", "TV 43 LED")),
    Category("celulares", 99_990, 1_499_990, ("Smartphone 128GB", "Smartphone 256GB Pro")),
    Category("computacion", 249_990, 2_499_990, ("Notebook 14", "Notebook Gamer 16")),
    Category("audio", 9_990, 399_990, ("Audifonos Bluetooth", "Parlante Portatil")),
    Category("linea blanca", 149_990, 1_299_990, ("Refrigerador No Frost", "Lavadora 18kg")),
    Category("electrohogar", 14_990, 199_990, ("Freidora de Aire", "Aspiradora Robot")),
    Category("muebles", 49_990, 899_990, ("Sofa 3 Cuerpos", "Escritorio", "Colchon 2 Plazas")),
    Category("juguetes", 4_990, 149_990, ("Set de Bloques", "Muneca", "Auto a Control")),
    Category("vestuario", 5_990, 79_990, ("Polera Algodon", "Zapatillas Running", "Jeans")),
    Category("bebidas", 2_990, 39_990, ("Bebida Lata 350cc", "Agua Mineral 1.5L"), (2, 6, 12, 24)),
    Category("cuidado personal", 1_990, 29_990, ("Shampoo 750ml", "Panales Talla G"), (2, 3, 4)),
)
CATEGORY_WEIGHTS = np.array([10, 10, 8, 10, 8, 10, 6, 8, 8, 6, 6], dtype=float)

# Promotion lengths in days (a weekend, a week, a fortnight) and how often each is chosen.
PROMOTION_DAYS = np.array([1, 2, 3, 4, 5, 7, 10, 14])
PROMOTION_DAY_WEIGHTS = np.array([8, 12, 14, 14, 14, 18, 10, 10]) / 100

# How a mistaken price comes about; weights are of the glitches that can happen to a product.
MECHANISMS = {
    "lost_digit": 0.24,
    "two_zeros_lost": 0.08,
    "thousands": 0.05,
    "placeholder": 0.09,
    "ninety_off": 0.13,
    "discount_typo": 0.11,
    "us_dollars": 0.05,
    "unit_price": 0.12,  # pack products only
    "accessory_price": 0.06,  # big-ticket products only
    "block_lost_digit": 0.07,
}


@dataclass(frozen=True)
class RetailMarketConfig:
    """Rates are per listing and day unless said otherwise."""

    seed: int = 1
    n_products: int = 300
    days: int = 180
    start: date = date(2026, 5, 4)  # 180 days: CyberDay (June) and CyberMonday (October)
    carry_rate: float = 0.8  # chance that a store carries a product
    late_listing_rate: float = 0.10  # listings that appear during the series
    delisting_rate: float = 0.03  # listings that disappear before the end
    store_dispersion: float = 0.05  # log sd of a store's price around the product's
    shift_rate: float = 1 / 120  # a listing's own permanent level shift
    product_shift_rate: float = 1 / 120  # a product's shift at every store (lagged)
    promotion_rate: float = 1 / 30
    promotion_after_cut: float = 0.3  # chance a permanent cut is followed by a promotion
    event_participation: float = 0.7
    fake_discount_rate: float = 0.3  # participating listings raising prices before events
    store_sales: int = 2  # store-only category sales per store
    card_rate: float = 0.6  # listings whose store card price is shown (when on)
    card_dip_rate: float = 1 / 60
    stockout_rate: float = 0.01
    match_rate: float = 0.2  # listings whose store follows the cheapest competitor
    missed_crawl_rate: float = 0.03
    second_crawl_rate: float = 0.07
    glitch_rate: float = 0.3  # glitches per listing over the series
    multi_day_share: float = 0.45  # glitches lasting two or three days
    first_day_share: float = 0.08  # glitches present when a listing first shows up
    card_glitch_share: float = 0.15
    out_of_stock_glitch_share: float = 0.03  # glitches planted on stock-out days
