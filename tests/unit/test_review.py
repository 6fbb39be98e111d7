"""Spreads held for review: weak identity evidence or a gap implausible for the category,
settled by a person's label."""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.review import gap_fences, hold_for_review, shares_model_code


def market(rows: list[tuple[str, str, str, str, str, int, str]]) -> pl.DataFrame:
    """(retailer, sku, name_norm, model_codes, canonical_id, price_offer, category)."""
    return pl.DataFrame(
        rows,
        schema=[
            "retailer",
            "sku",
            "name_norm",
            "model_codes",
            "canonical_id",
            "price_offer",
            "category",
        ],
        orient="row",
    )


def spread(buy: tuple[str, str], ref: tuple[str, str], buy_price: int, ref_price: int) -> dict:
    return {
        "opportunity_id": f"{buy[1]}-{ref[1]}",
        "buy_retailer": buy[0],
        "buy_sku": buy[1],
        "ref_retailer": ref[0],
        "ref_sku": ref[1],
        "buy_price": buy_price,
        "ref_price": ref_price,
        "category": "televisores",
    }


TVS = market(
    [
        ("falabella", "f1", "smart tv samsung 55in un55cu7000", "UN55CU7000", "c1", 399990, "tv"),
        (
            "ripley",
            "r1",
            "televisor samsung 55in un55cu7000gxzs",
            "UN55CU7000GXZS",
            "c1",
            449990,
            "tv",
        ),
        ("falabella", "f2", "iphone 15 pro 128gb negro", "", "c2", 900000, "tv"),
        ("paris", "p2", "apple iphone 15 pro 128gb black", "", "c2", 990000, "tv"),
    ]
)


def test_listings_that_share_a_model_code_are_not_held() -> None:
    spreads = pl.DataFrame([spread(("falabella", "f1"), ("ripley", "r1"), 399990, 449990)])
    assert hold_for_review(spreads, TVS)["review"].to_list() == [None]


def test_a_code_written_in_the_other_title_counts_as_shared() -> None:
    frame = pl.DataFrame(
        {
            "buy_codes": ["MB739LLA"],
            "ref_codes": [""],
            "buy_name": ["apple ipod mb739lla"],
            "ref_name": ["ipod classic 120gb black"],
        }
    )
    assert shares_model_code(frame).to_list() == [False]
    # written with separators, as stores do ('MB739LL/A'): still the same code
    frame = frame.with_columns(ref_name=pl.lit("ipod classic 120gb mb739ll a black"))
    assert shares_model_code(frame).to_list() == [True]


def test_a_spread_resting_on_wording_alone_is_held() -> None:
    spreads = pl.DataFrame([spread(("falabella", "f2"), ("paris", "p2"), 900000, 990000)])
    review = hold_for_review(spreads, TVS)["review"].to_list()
    assert review == ["weak identity: the two listings share no model code"]


def test_a_gap_beyond_three_times_is_held_even_with_a_shared_code() -> None:
    spreads = pl.DataFrame([spread(("falabella", "f1"), ("ripley", "r1"), 100000, 449990)])
    (review,) = hold_for_review(spreads, TVS)["review"].to_list()
    assert review.startswith("implausible gap: x4.5")


def test_a_gap_within_an_ordinary_promotion_is_never_implausible() -> None:
    """Half off is an ordinary promotion: a x2 gap is never held for its size alone."""
    spreads = pl.DataFrame([spread(("falabella", "f1"), ("ripley", "r1"), 225000, 449990)])
    assert hold_for_review(spreads, TVS)["review"].to_list() == [None]


def test_the_fence_follows_the_category_when_it_has_enough_products() -> None:
    rows = []
    for n in range(30):  # tight category: stores within 10 % of each other
        rows += [
            ("falabella", f"f{n}", f"item {n}", f"CODE{n:04d}", f"c{n}", 100000, "tight"),
            ("ripley", f"r{n}", f"item {n}", f"CODE{n:04d}", f"c{n}", 110000, "tight"),
        ]
    per_category, overall = gap_fences(market(rows))
    assert set(per_category) == {"tight"}
    assert per_category["tight"] == overall
    import math

    assert math.isclose(math.exp(per_category["tight"]), 2.0)  # the floor: never below x2


def test_a_confirmed_pair_is_never_held() -> None:
    spreads = pl.DataFrame([spread(("falabella", "f2"), ("paris", "p2"), 900000, 990000)])
    confirmed = pl.DataFrame(
        {
            "left_retailer": ["paris"],
            "left_sku": ["p2"],
            "right_retailer": ["falabella"],
            "right_sku": ["f2"],
        }
    )
    assert hold_for_review(spreads, TVS, confirmed)["review"].to_list() == [None]
