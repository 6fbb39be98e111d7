"""The shipped match model knows when two listings are *not* the same product.

Each test is a small two-store catalogue written for this file (not taken from any
dataset), matched by the pipeline's own model and engine exactly as ``product_matches``
matches: the failure classes real catalogues showed (an accessory against its product,
conflicting capacities, forms and pack counts, model codes that differ in a digit, a
listing whose counterpart is absent), each beside a true pair that must still match.
"""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.domain.matching import TrainedPairModel, enrich_listings, match_listings
from arbx_dagster.domain.matching.shipped import pipeline_model
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform


@pytest.fixture(scope="module")
def model() -> TrainedPairModel:
    return pipeline_model()


def matched(model: TrainedPairModel, left: list[str], right: list[str]) -> set[tuple[str, str]]:
    """Titles of the (left, right) pairs the pipeline's matcher accepts."""
    raw = pl.DataFrame(
        {
            "retailer": ["falabella"] * len(left) + ["ripley"] * len(right),
            "sku": [f"a{n}" for n in range(len(left))] + [f"b{n}" for n in range(len(right))],
            "name": left + right,
        }
    )
    listings = conform(enrich_listings(raw), LISTING_SCHEMA)
    pairs = match_listings(listings, scorer=model).pairs
    title = dict(zip(raw["sku"], raw["name"], strict=True))
    return {
        (title[row["left_sku"]], title[row["right_sku"]]) for row in pairs.iter_rows(named=True)
    }


def test_an_accessory_is_not_the_product_it_serves(model: TrainedPairModel) -> None:
    camera = "Canon PowerShot SX740 HS Digital Camera 20.3MP 40x Zoom Black"
    case = "Leather Case for Canon PowerShot SX740 HS Camera"
    phone = "Apple iPhone 15 Pro Max 256GB Titanio Natural"
    cover = "Funda de Silicona para iPhone 15 Pro Max Negra"
    got = matched(
        model,
        [camera, phone],
        [case, cover, "Canon PowerShot SX740 HS 20.3 MP Digital Camera (Black)"],
    )
    assert (camera, case) not in got
    assert (phone, cover) not in got
    assert (camera, "Canon PowerShot SX740 HS 20.3 MP Digital Camera (Black)") in got


def test_a_lens_or_battery_for_a_camera_is_not_the_camera(model: TrainedPairModel) -> None:
    gopro = "GoPro HERO12 Black Action Camera 5.3K60 Waterproof"
    lens = "Max Lens Mod 2.0 compatible with GoPro HERO12 Black"
    battery = "Rechargeable Enduro Battery for GoPro HERO12 Black HERO11"
    got = matched(model, [gopro], [lens, battery, "GoPro HERO12 Black - Waterproof Action Camera"])
    assert got == {(gopro, "GoPro HERO12 Black - Waterproof Action Camera")}


def test_a_kit_is_not_the_body_alone(model: TrainedPairModel) -> None:
    body = "Nikon Z6 II Mirrorless Camera Body Only"
    kit = "Nikon Z6 II Mirrorless Camera with NIKKOR Z 24-70mm f/4 S Lens Kit"
    got = matched(model, [body], [kit])
    assert (body, kit) not in got


def test_conflicting_capacities_forms_and_pack_counts_are_different_products(
    model: TrainedPairModel,
) -> None:
    left = [
        "SanDisk Ultra 64GB microSDXC UHS-I Memory Card with Adapter",
        "Kingston ValueRAM 8GB DDR4 2666MHz SO-DIMM Laptop Memory",
        "Crucial 256MB PC133 DIMM Desktop Memory Module",
        "Duracell Pilas Alcalinas AA Pack 4 Unidades",
    ]
    right = [
        "SanDisk Ultra 64GB SDXC UHS-I Memory Card Class 10",
        "Kingston ValueRAM 8GB DDR4 2666MHz DIMM Desktop Memory",
        "Crucial 1GB PC133 SO-DIMM Notebook Memory Module",
        "Duracell Pilas Alcalinas AA Pack 8 Unidades",
    ]
    assert matched(model, left, right) == set()


def test_one_line_in_two_capacities_or_sizes_is_two_products(model: TrainedPairModel) -> None:
    """Same series, same code, every other word shared: only the measure differs."""
    left = [
        "Kingston DataTraveler SE9 G2 64GB USB 3.0 Flash Drive DTSE9G2",
        "WD Red Plus NAS Hard Drive 3.5in SATA 2TB WD20EFPX",
    ]
    right = [
        "Kingston DataTraveler SE9 G2 16GB USB 3.0 Flash Drive DTSE9G2",
        "WD Red Plus NAS Hard Drive 3.5in SATA 4TB WD20EFPX",
        'Disco Duro WD Red Plus 2 TB 3.5" NAS WD20EFPX',
    ]
    assert matched(model, left, right) == {
        (left[1], 'Disco Duro WD Red Plus 2 TB 3.5" NAS WD20EFPX')
    }


def test_model_codes_one_digit_apart_are_different_products(model: TrainedPairModel) -> None:
    left = ["Epson 252XL T252XL120 Black Ink Cartridge High Capacity"]
    right = [
        "Epson 252XL T252XL220 Cyan Ink Cartridge High Capacity",
        "Epson T252XL120 252XL High-capacity Black Ink Cartridge",
    ]
    assert matched(model, left, right) == {
        (left[0], "Epson T252XL120 252XL High-capacity Black Ink Cartridge")
    }


def test_a_listing_whose_counterpart_is_absent_stays_alone(model: TrainedPairModel) -> None:
    """The other store sells the same line in other sizes, never this one: the best
    wrong candidate is not taken."""
    tv = 'Samsung 55" Crystal UHD 4K Smart TV UN55CU7000GXZS'
    siblings = [
        'Smart TV Samsung 50" Crystal UHD 4K UN50CU7000GXZS',
        'Smart TV Samsung 65" Crystal UHD 4K UN65CU7000GXZS',
    ]
    assert matched(model, [tv], siblings) == set()


def test_the_same_product_written_two_ways_still_matches(model: TrainedPairModel) -> None:
    left = [
        "Sony WH-1000XM5 Wireless Noise Cancelling Headphones Black",
        "Canon BG-E11 Battery Grip for EOS 5D Mark III",
    ]
    right = ["Audífonos Inalámbricos Sony WH1000XM5 Negro", "Canon BG-E11 battery grip"]
    assert matched(model, left, right) == set(zip(left, right, strict=True))
