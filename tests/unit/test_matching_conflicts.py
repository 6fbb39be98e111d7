"""Identity conflicts: evidence no score argues with. Each rule is shown on a pair of
titles written for this file, beside a pair it must leave to the model."""

from __future__ import annotations

import numpy as np
import polars as pl

from arbx_dagster.domain.matching.conflicts import (
    COLUMNS,
    CONFLICT_CAP,
    cap_conflicts,
    conflicting,
)
from arbx_dagster.domain.matching.evaluation import to_listing_frame
from arbx_dagster.domain.matching.features import pair_features
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.vectorize import text_vectors


def conflicts(pairs: list[tuple[str, str]]) -> list[bool]:
    """Per pair of titles: whether a rule says they are two products."""
    titles = [title for pair in pairs for title in pair]
    raw = pl.DataFrame(
        {
            "retailer": ["falabella", "ripley"] * len(pairs),
            "sku": [f"s{n}" for n in range(len(titles))],
            "name": titles,
        }
    )
    records = matching_records(to_listing_frame(enrich_listings(raw)))
    features = pair_features(
        records,
        text_vectors(records["text"]),
        pl.DataFrame({"i": range(0, len(titles), 2), "j": range(1, len(titles), 2)}),
    )
    return conflicting(features).tolist()


def test_different_measures_of_one_kind_are_two_products() -> None:
    assert conflicts(
        [
            ("Pendrive Kingston Exodia 64GB USB 3.2", "Pendrive Kingston Exodia 128GB USB 3.2"),
            ('Smart TV LG 55" UHD 4K ThinQ AI', "Smart TV LG 65 pulgadas UHD 4K ThinQ AI"),
            ("Lavadora Samsung 18kg Carga Superior", "Lavadora Samsung 20 kg Carga Superior"),
        ]
    ) == [True, True, True]


def test_the_same_measure_written_two_ways_or_stated_once_is_left_to_the_model() -> None:
    assert conflicts(
        [
            ("Disco Duro WD Blue 1TB SATA", "WD Blue 1000GB SATA Hard Drive"),
            ('Smart TV LG 55" UHD 4K', "Smart TV LG 55 pulgadas UHD 4K"),
            # one side names the capacity only: nothing contradicts
            ("Notebook Lenovo IdeaPad 3 8GB 512GB SSD", "Notebook Lenovo IdeaPad 3 512GB"),
        ]
    ) == [False, False, False]


def test_a_conflicting_pair_is_capped_below_cannot_link() -> None:
    features = pl.DataFrame({name: [0.0, 0.0] for name in COLUMNS}).with_columns(
        unit_conflict=pl.Series([1.0, 0.0])
    )
    capped = cap_conflicts(features, np.array([0.99, 0.99]))
    assert capped.tolist() == [CONFLICT_CAP, 0.99]
