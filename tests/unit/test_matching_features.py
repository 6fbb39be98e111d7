"""Pair features: what each piece of evidence says about two listings."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from arbx_dagster.domain.matching.candidate_context import (
    CONTEXT_FEATURES,
    context_features,
    context_for_queries,
)
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS, PairFeaturizer
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.vectorize import text_vectors


def featurize(
    left: str, right: str, *, others: list[str] = (), descriptions: tuple = (None, None)
) -> dict[str, float]:
    """Features of the pair (left at falabella, right at ripley); ``others`` are extra
    falabella listings that only matter for the context features."""
    names = [left, right, *others]
    raw = pl.DataFrame(
        {
            "retailer": ["falabella", "ripley"] + ["falabella"] * len(others),
            "sku": [str(n) for n in range(len(names))],
            "name": names,
            "description": [*descriptions, *([None] * len(others))],
        },
        schema_overrides={"description": pl.String},
    )
    records = matching_records(enrich_listings(raw))
    pairs = pl.DataFrame({"i": [0, *range(2, len(names))], "j": [1] * (len(names) - 1)})
    frame = PairFeaturizer(records, text_vectors(records["text"])).features(pairs)
    return frame.row(0, named=True)


def test_every_feature_is_a_float_column() -> None:
    f = featurize("Smart TV Samsung 55 UN55CU7000", "Televisor Samsung 55 pulgadas UN-55CU7000")
    assert set(FEATURE_COLUMNS) <= set(f)
    assert all(isinstance(f[c], float) for c in FEATURE_COLUMNS)


def test_same_code_written_differently_is_found_and_rare() -> None:
    f = featurize("Smart TV Samsung 55 UN55CU7000GXZS", "TELEVISOR SAMSUNG LED UN-55CU7000")
    assert f["code_stem"] == 1.0 and f["code_conflict"] == 0.0
    assert f["code_share_max"] > 0  # the shorter code is inside the longer title
    assert f["code_found_idf"] > 0  # ... and it is rare
    assert f["char_cosine"] > f["word_cosine"]  # n-grams see through the suffix


def test_codes_of_one_side_missing_on_the_other() -> None:
    f = featurize("Refrigerador LG LFX25971ST", "Refrigerador LG GT25SV")
    assert f["code_conflict"] == 1.0
    assert f["code_share_max"] == 0.0
    assert f["code_missing_idf"] > 0


def test_a_code_found_only_in_the_other_description() -> None:
    f = featurize(
        "Parlante Bose SoundLink Flex 865983",
        "Parlante portatil Bose",
        descriptions=(None, "Bluetooth, resistente al agua, modelo 865983"),
    )
    assert f["code_share_max"] == 0.0  # not in the title
    assert f["code_share_desc"] == 1.0  # but in the description


def test_without_descriptions_the_description_feature_is_missing() -> None:
    f = featurize("Notebook HP 15-fd0001la", "Notebook HP 15-FD0001LA")
    assert math.isnan(f["code_share_desc"])


def test_units_conflict_when_both_sides_name_different_values() -> None:
    f = featurize("Celular Samsung A55 8GB 256GB", "Celular Samsung A55 8GB 128GB")
    assert f["unit_conflict"] == 1.0  # gb: 256 vs 128 (8gb agrees but does not hide it)
    assert f["unit_shared"] == 1.0
    same = featurize("Refrigerador 24.7 cu ft LFX25971ST", "Refrigerador 25 cu ft LFX25971ST")
    assert same["unit_conflict"] == 0.0  # 24.7 ~ 25 after rounding


def test_numbers_versions_tiers_and_colours() -> None:
    f = featurize("Apple iPhone 15 128GB Negro", "Apple iPhone 14 128GB Negro")
    assert f["model_number_conflict"] == 1.0
    f = featurize("Xiaomi Redmi Pad 2 128GB", "Xiaomi Redmi Pad 128GB")
    assert f["model_number_one_side"] == 1.0
    f = featurize("Apple iPhone 15 Pro 128GB", "Apple iPhone 15 128GB")
    assert f["tier_one_side"] == 1.0
    f = featurize("Apple iPhone 15 128GB Negro", "Apple iPhone 15 128GB Azul")
    assert f["color_conflict"] == 1.0


def test_idf_weighted_overlap() -> None:
    same = featurize("Lenovo IdeaPad Slim 3 notebook", "notebook Lenovo IdeaPad Slim 3")
    assert same["idf_jaccard"] == pytest.approx(1.0)
    subset = featurize("Lenovo IdeaPad Slim 3", "Lenovo IdeaPad Slim 3 notebook gris oferta")
    assert subset["idf_containment"] == pytest.approx(1.0)
    assert subset["idf_jaccard"] < 1.0


def test_context_ranks_the_pair_among_each_listings_candidates() -> None:
    f = featurize(
        "Audifonos Sony WH-1000XM5 negro",
        "Audifonos Sony WH1000XM5 negro",
        others=["Audifonos Sony WH-1000XM4 negro", "Parlante JBL Flip 6"],
    )
    assert f["mutual_best"] == 1.0
    assert f["cosine_rank_i"] == 1.0 and f["cosine_rank_j"] == 1.0
    assert f["cosine_margin_j"] > 0  # beats the XM4 for the ripley listing
    assert f["cosine_gap_i"] == 0.0


def test_context_of_a_query_equals_its_context_inside_the_frame() -> None:
    """Labelled pairs get the context they would have had among the blocker's candidates."""
    rng = np.random.default_rng(3)
    records = pl.DataFrame({"idx": range(40), "retailer": ["a"] * 20 + ["b"] * 20})
    pairs = pl.DataFrame({"i": rng.integers(0, 20, 120), "j": rng.integers(20, 40, 120)})
    pairs = pairs.unique(maintain_order=True)
    pairs = pairs.with_columns(cosine=pl.Series(np.round(rng.random(pairs.height), 1)))
    inside = context_features(pairs, records)
    alone = context_for_queries(pairs, pairs, records)
    for column in CONTEXT_FEATURES:
        np.testing.assert_allclose(inside[column].to_numpy(), alone[column].to_numpy())
    # a query that is not a candidate is inserted alone: it does not see other queries
    extra = pl.DataFrame({"i": [0], "j": [39], "cosine": [2.0]})
    ranked = context_for_queries(extra, pairs, records).row(0, named=True)
    assert ranked["cosine_rank_i"] == 1.0 and ranked["cosine_margin_i"] > 0
