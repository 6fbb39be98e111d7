"""The pairs labelled pairs imply: "same product" is an equivalence, and a non-match
extends to everything matching either side."""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.matching.label_closure import implied_pairs


def _pairs(*rows: tuple[str, str, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "label": [r[2] for r in rows],
            "left_name": [r[0] for r in rows],
            "left_brand": ["acme"] * len(rows),
            "right_name": [r[1] for r in rows],
            "right_brand": ["acme"] * len(rows),
        },
        schema={
            "label": pl.Int8,
            "left_name": pl.String,
            "left_brand": pl.String,
            "right_name": pl.String,
            "right_brand": pl.String,
        },
    )


def _implied(pairs: pl.DataFrame, **kwargs: float) -> set[tuple[str, str, int]]:
    out = implied_pairs(pairs, **kwargs)
    assert out.head(pairs.height).equals(pairs), "the labelled pairs come first, unchanged"
    assert out.schema == pairs.schema
    return set(out.slice(pairs.height).select("left_name", "right_name", "label").rows())


def test_two_listings_matching_a_third_match_each_other_across_the_two_sides() -> None:
    # left A = right B, left C = right B, left C = right D: A (left) and D (right) are one product
    pairs = _pairs(("A", "B", 1), ("C", "B", 1), ("C", "D", 1))
    assert _implied(pairs) == {("A", "D", 1)}


def test_a_non_match_extends_to_everything_that_matches_either_side() -> None:
    # A = B = C, and C is not D: A is not D either
    pairs = _pairs(("A", "B", 1), ("C", "B", 1), ("C", "D", 0))
    assert _implied(pairs) == {("A", "D", 0)}


def test_nothing_is_implied_between_two_listings_of_one_side() -> None:
    # A and C only ever appear on the left (one store): a blocker would never pair them
    pairs = _pairs(("A", "B", 1), ("C", "B", 1))
    assert _implied(pairs) == set()


def test_a_pair_labelled_either_way_round_is_never_implied_again() -> None:
    # B and C appear on both sides: (C, B) is the labelled (B, C) turned round
    pairs = _pairs(("A", "B", 1), ("B", "C", 1), ("C", "D", 1))
    assert _implied(pairs) == {("A", "C", 1), ("A", "D", 1), ("B", "D", 1)}


def test_a_pair_both_sides_could_hold_is_implied_once() -> None:
    # every listing appears on both sides of the cycle: A-C and B-D once each, one way round
    pairs = _pairs(("A", "B", 1), ("B", "C", 1), ("C", "D", 1), ("D", "A", 1))
    implied = _implied(pairs)
    assert {frozenset((x, y)) for x, y, _ in implied} == {
        frozenset(("A", "C")),
        frozenset(("B", "D")),
    }
    assert len(implied) == 2


def test_a_non_match_inside_a_group_of_matches_implies_nothing() -> None:
    # contradictory labels: A = B = C (through D) but A is labelled apart from C
    pairs = _pairs(("A", "B", 1), ("C", "B", 1), ("C", "D", 1), ("A", "D", 0))
    assert {label for *_, label in _implied(pairs)} <= {1}


def test_implied_non_matches_are_capped_by_the_labelled_ones_and_drawn_by_seed() -> None:
    # one big group on each side of one labelled non-match: 5 x 5 implied non-matches
    group_a = [(f"a{k}", "hub_a", 1) for k in range(5)] + [("a0", f"ra{k}", 1) for k in range(4)]
    group_b = [(f"b{k}", "hub_b", 1) for k in range(5)] + [("b0", f"rb{k}", 1) for k in range(4)]
    pairs = _pairs(*group_a, *group_b, ("a0", "hub_b", 0), ("b0", "hub_a", 0))
    unlimited = _implied(pairs, negatives_per_given=100.0)
    capped = _implied(pairs, negatives_per_given=1.0)
    assert sum(1 for *_, label in unlimited if label == 0) > 2
    assert sum(1 for *_, label in capped if label == 0) == 2
    assert capped == _implied(pairs, negatives_per_given=1.0)
    assert {p for p in capped if p[2] == 1} == {p for p in unlimited if p[2] == 1}


def test_no_labelled_pairs_imply_none() -> None:
    empty = _pairs()
    assert implied_pairs(empty).equals(empty)
