"""match_listings: matches, non-matches, one listing per retailer, transitivity, stable ids."""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.domain.matching import MatchResult, match_listings
from arbx_dagster.domain.matching.clustering import build_outputs, cluster, one_to_one
from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    LISTING_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    conform,
)

CATALOG = [
    ("falabella", "f-tv55", 'Smart TV Samsung 55" Crystal UHD UN55CU7000GXZS', "SAMSUNG", 399990),
    ("falabella", "f-tv50", 'Smart TV Samsung 50" Crystal UHD UN50CU7000GXZS', "SAMSUNG", 329990),
    ("falabella", "f-ip128", "Apple iPhone 15 128GB Negro", "APPLE", 799990),
    (
        "falabella",
        "f-nb",
        'Notebook Lenovo IdeaPad 3 15,6" Ryzen 5 8GB 512GB SSD 82KU00RFLM',
        "LENOVO",
        449990,
    ),
    ("falabella", "f-wash", "Lavadora Carga Frontal 9 kg Inverter", "LG", 299990),
    ("ripley", "r-tv55", "TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000", None, 389990),
    ("ripley", "r-ip256", "Apple iPhone 15 256GB Negro", "Apple", 899990),
    (
        "ripley",
        "r-nb",
        "NOTEBOOK LENOVO IDEAPAD 3 RYZEN 5 8GB RAM 512GB SSD 15.6 PULGADAS 82KU00RFLM",
        "Lenovo",
        439990,
    ),
    (
        "paris",
        "p-tv55",
        "Samsung Smart TV 55 pulgadas Crystal UHD 4K UN55CU7000",
        "Samsung",
        379990,
    ),
    ("paris", "p-ip128", "iPhone 15 128 GB Negro Apple", "Apple", 789990),
    ("paris", "p-tv50", 'Televisor Samsung 50" UN50CU7000', "Samsung", 319990),
]
EXPECTED = [
    {"f-tv55", "r-tv55", "p-tv55"},
    {"f-tv50", "p-tv50"},
    {"f-ip128", "p-ip128"},
    {"f-nb", "r-nb"},
]


def listings(rows: list[tuple] = CATALOG) -> pl.DataFrame:
    raw = pl.DataFrame(
        rows,
        schema={
            "retailer": pl.String,
            "sku": pl.String,
            "name": pl.String,
            "brand": pl.String,
            "price_offer": pl.Int64,
        },
        orient="row",
    )
    return conform(enrich_listings(raw), LISTING_SCHEMA)


def clusters(result: MatchResult) -> list[set[str]]:
    groups = result.product_matches.group_by("canonical_id").agg(pl.col("sku"))
    return [set(g) for g in groups["sku"].to_list() if len(g) > 1]


@pytest.fixture(scope="module")
def result() -> MatchResult:
    return match_listings(listings())


def test_outputs_follow_the_contracts(result: MatchResult) -> None:
    assert result.pairs.schema == pl.Schema(MATCH_PAIR_SCHEMA)
    assert result.product_matches.schema == pl.Schema(PRODUCT_MATCH_SCHEMA)
    assert result.canonical_products.schema == pl.Schema(CANONICAL_PRODUCT_SCHEMA)
    # Every listing exactly once.
    keys = result.product_matches.select("retailer", "sku")
    assert keys.height == len(CATALOG) and not keys.is_duplicated().any()
    assert result.product_matches["match_probability"].is_between(0, 1).all()
    assert set(result.canonical_products["canonical_id"]) == set(
        result.product_matches["canonical_id"]
    )


def test_same_products_meet_across_spanish_titles(result: MatchResult) -> None:
    found = clusters(result)
    for group in EXPECTED:
        assert group in found, (group, found)
    assert len(found) == len(EXPECTED)


def test_variants_do_not_match(result: MatchResult) -> None:
    canon = dict(
        zip(result.product_matches["sku"], result.product_matches["canonical_id"], strict=True)
    )
    assert canon["f-ip128"] != canon["r-ip256"]  # 128GB vs 256GB
    assert canon["p-ip128"] != canon["r-ip256"]
    assert canon["f-tv50"] != canon["f-tv55"]
    assert canon["p-tv50"] != canon["r-tv55"]  # 50" vs 55"
    assert canon["f-wash"] not in {canon[s] for s in canon if s != "f-wash"}


def test_pairs_are_closed_under_transitivity(result: MatchResult) -> None:
    pairs = {frozenset((a, b)) for a, b in result.pairs.select("left_sku", "right_sku").iter_rows()}
    for group in clusters(result):
        for a in group:
            for b in group - {a}:
                assert frozenset((a, b)) in pairs
    assert (result.pairs["left_retailer"] < result.pairs["right_retailer"]).all()


def test_canonical_product_fields(result: MatchResult) -> None:
    canon = result.product_matches.filter(pl.col("sku") == "f-tv55")["canonical_id"].item()
    row = result.canonical_products.filter(pl.col("canonical_id") == canon).row(0, named=True)
    assert row["brand"] == "samsung"
    assert row["model_code"].startswith("UN55CU7000")
    assert (row["n_listings"], row["n_retailers"]) == (3, 3)


def test_canonical_ids_are_stable_across_runs_and_row_order(result: MatchResult) -> None:
    again = match_listings(listings(list(reversed(CATALOG))))
    left = result.product_matches.select("retailer", "sku", "canonical_id").sort("retailer", "sku")
    right = again.product_matches.select("retailer", "sku", "canonical_id").sort("retailer", "sku")
    assert left.equals(right)


def test_at_most_one_listing_per_retailer_per_product() -> None:
    # Ripley sells the 55" TV twice (first party and a marketplace seller).
    rows = [
        *CATALOG,
        (
            "ripley",
            "r-tv55-mkp",
            "Smart TV Samsung 55 Crystal UHD UN55CU7000GXZS",
            "Samsung",
            409990,
        ),
    ]
    result = match_listings(listings(rows))
    per_retailer = result.product_matches.group_by("canonical_id", "retailer").len()
    assert per_retailer["len"].max() == 1
    canon = dict(
        zip(result.product_matches["sku"], result.product_matches["canonical_id"], strict=True)
    )
    assert canon["f-tv55"] == canon["p-tv55"]
    assert (canon["r-tv55"] == canon["f-tv55"]) != (canon["r-tv55-mkp"] == canon["f-tv55"])


def test_singletons_have_probability_one(result: MatchResult) -> None:
    single = result.product_matches.filter(pl.col("sku").is_in(["f-wash", "r-ip256"]))
    assert single["match_probability"].to_list() == [1.0, 1.0]


def test_transitive_clusters_never_hold_two_listings_of_one_retailer() -> None:
    # a(F)-b(R) and b(R)-c(P) are strong, a(F)-c2(P) is accepted too: c and c2 are both
    # Paris, so one transitive cluster would break the one-per-retailer rule.
    records = pl.DataFrame(
        {
            "idx": [0, 1, 2, 3],
            "retailer": ["falabella", "ripley", "paris", "paris"],
            "sku": ["a", "b", "c", "c2"],
            "name": ["x"] * 4,
            "brand": [None] * 4,
            "model_code": [None] * 4,
            "category": [None] * 4,
        },
        schema_overrides={
            "idx": pl.Int64,
            "brand": pl.String,
            "model_code": pl.String,
            "category": pl.String,
        },
    )
    scored = pl.DataFrame(
        {"i": [0, 1, 0], "j": [1, 2, 3], "probability": [0.95, 0.9, 0.8]},
        schema={"i": pl.Int64, "j": pl.Int64, "probability": pl.Float64},
    )
    edges = one_to_one(scored, records)
    assert edges.height == 3  # one-to-one holds per retailer pair
    membership, kept = cluster(edges, scored, records)
    pairs, matches, _canon = build_outputs(records, membership, kept, scored)
    per_retailer = matches.group_by("canonical_id", "retailer").len()
    assert per_retailer["len"].max() == 1
    by_sku = dict(zip(matches["sku"], matches["canonical_id"], strict=True))
    assert by_sku["a"] == by_sku["b"] == by_sku["c"] != by_sku["c2"]
    implied = pairs.filter((pl.col("left_sku") == "a") & (pl.col("right_sku") == "c"))
    assert implied.height == 1  # a-c never scored, joined through b


def test_one_to_one_is_greedy_by_probability() -> None:
    records = pl.DataFrame(
        {"idx": [0, 1, 2, 3], "retailer": ["falabella", "falabella", "ripley", "ripley"]},
        schema_overrides={"idx": pl.Int64},
    )
    scored = pl.DataFrame(
        {"i": [0, 0, 1, 1], "j": [2, 3, 2, 3], "probability": [0.9, 0.8, 0.85, 0.6]},
        schema={"i": pl.Int64, "j": pl.Int64, "probability": pl.Float64},
    )
    edges = one_to_one(scored, records).sort("i")
    assert edges.select("i", "j").rows() == [(0, 2), (1, 3)]


def test_empty_input() -> None:
    result = match_listings(conform(pl.DataFrame(), LISTING_SCHEMA))
    assert result.pairs.height == result.product_matches.height == 0


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (
            'Smart TV Samsung 55" Crystal UHD UN55CU7000GXZS',
            "TELEVISOR SAMSUNG LED 55 PULGADAS UN-55CU7000",
            True,
        ),
        ("Apple iPhone 15 128GB Negro", "iPhone 15 128 GB Negro Apple", True),
        ("Apple iPhone 15 128GB Negro", "Apple iPhone 15 256GB Negro", False),
        ("Apple iPhone 15 128GB Negro", "Apple iPhone 14 128GB Negro", False),
        ("Apple iPhone 15 128GB Negro", "Apple iPhone 15 Pro 128GB Negro", False),
        (
            "Audífonos Samsung Galaxy Buds3 Pro Blanco",
            "Audifonos Samsung Galaxy Buds3 FE Blanco",
            False,
        ),
        ("Apple iPhone 15 128GB Negro", "Apple iPhone 15 128GB Azul", False),
        (
            "Notebook Apple MacBook Air 13 M1 16GB 512GB",
            "Notebook Apple MacBook Air 13 M2 16GB 512GB",
            False,
        ),
        (
            'Smart TV Samsung 50" Crystal UHD UN50CU7000',
            'Smart TV Samsung 55" Crystal UHD UN55CU7000',
            False,
        ),
        ('Smart TV LG 55" OLED evo B2', "Smart TV LG 139 cm OLED evo B2", True),
        ("Notebook HP 15-dy1 8GB 512GB SSD", "Notebook HP 15-dy1 8GB 256GB SSD", False),
        ("Consola Xbox Series X 1TB", "Consola Xbox Series X 1000GB", True),
        (
            "Refrigerador LG No Frost 24.7 cu ft LFX25971ST",
            "LG 25 cu ft French Door LFX25971ST",
            True,
        ),
    ],
)
def test_pair_decisions(left: str, right: str, same: bool) -> None:
    rows = [("falabella", "a", left, None, 100000), ("ripley", "b", right, None, 100000)]
    result = match_listings(listings(rows))
    assert (result.pairs.height == 1) is same, result.candidates


def test_a_learned_scorer_is_a_drop_in() -> None:
    """Any fitted classifier plugs in through SklearnPairScorer, on the same feature frame."""
    from sklearn.linear_model import LogisticRegression

    from arbx_dagster.domain.matching import FEATURE_COLUMNS, RuleScorer, SklearnPairScorer
    from arbx_dagster.domain.matching.blocking import candidate_pairs
    from arbx_dagster.domain.matching.features import pair_features
    from arbx_dagster.domain.matching.normalize import matching_records
    from arbx_dagster.domain.matching.vectorize import text_vectors

    records = matching_records(listings())
    vectors = text_vectors(records["text"])
    pairs, _ = candidate_pairs(records, vectors.matrix)
    features = pair_features(records, vectors, pairs)
    assert list(features.columns) == ["i", "j", *FEATURE_COLUMNS]
    # Stand-in labels (the rule scorer's decisions): only the plumbing is under test here.
    labels = RuleScorer().predict_proba(features) >= 0.5
    # A linear model cannot take NaN: leave out the columns that may hold it.
    columns = tuple(c for c in FEATURE_COLUMNS if not features[c].is_nan().any())
    model = LogisticRegression(max_iter=1000).fit(features.select(columns).to_numpy(), labels)
    learned = match_listings(listings(), scorer=SklearnPairScorer(model, columns))
    assert learned.product_matches.height == len(CATALOG)
    assert learned.pairs["probability"].is_between(0, 1).all()
    assert {"f-tv55", "r-tv55", "p-tv55"} in clusters(learned)
