"""The shipped match model: its files fit the code, it loads the same every time, users'
labels adapt it and settle their pairs, and learned word weights stay out of it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from arbx_dagster.domain.matching import TrainedPairModel, match_listings
from arbx_dagster.domain.matching.corpus import CORPUS_SCHEMA
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS
from arbx_dagster.domain.matching.shipped import (
    ShippedModelError,
    load_model,
    pipeline_model,
    read_corpus,
    read_recipe,
)
from arbx_dagster.domain.matching.tokens import (
    GRAM_SIZES,
    fit_token_evidence,
    out_of_fold_scores,
)
from arbx_dagster.domain.matching.training import ModelSettings
from arbx_dagster.domain.matching.training_pairs import simulated_listings
from arbx_dagster.domain.matching.transfer import TRANSFER_COLUMNS

FAST = ModelSettings(max_iter=40, calibration_folds=2)


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return simulated_listings(seed=101, n_products=120)[0]


def test_the_shipped_files_fit_the_features_this_code_computes() -> None:
    """A feature added without `arbx model build` would leave the model blind to it."""
    corpus = read_corpus()
    assert list(corpus.columns) == list(CORPUS_SCHEMA)
    assert set(FEATURE_COLUMNS) <= set(corpus.columns)
    recipe = read_recipe()
    assert set(recipe.columns) <= set(TRANSFER_COLUMNS)
    assert {"simulator", "abt_buy", "wdc_cameras", "wdc_computers"} == set(recipe.sources)
    assert dict(corpus.group_by("source").len().iter_rows()) == recipe.sources
    # never prices, never a single market's word weights
    assert "price_ratio" not in recipe.columns and "token_evidence" not in recipe.columns


def test_a_corpus_built_for_other_features_is_refused(tmp_path) -> None:
    (tmp_path / "match_model.json").write_text(read_recipe().to_json())
    read_corpus().drop("cosine").write_parquet(tmp_path / "match_corpus.parquet")
    with pytest.raises(ShippedModelError, match="arbx model build"):
        read_corpus(tmp_path)
    with pytest.raises(ShippedModelError, match="missing"):
        read_recipe(tmp_path / "nowhere")


def test_the_model_loads_as_recorded() -> None:
    model = load_model()
    recipe = read_recipe()
    assert (model.version, model.threshold, model.calibration) == (
        recipe.version,
        recipe.threshold,
        recipe.calibration,
    )
    assert model.metrics["precision"] >= 0.9 and model.metrics["recall"] >= 0.85
    assert load_model() is model  # fitted once per process


def test_user_labels_adapt_the_model_and_settle_their_pairs(market: pl.DataFrame) -> None:
    """A user rejects a pair the model matches and confirms two listings it keeps apart:
    the next match run follows them, and the model's version says it learned from them."""
    plain = pipeline_model()
    matched = match_listings(market, scorer=plain).pairs
    rejected = matched.row(0, named=True)
    a = market.filter(pl.col("retailer") == "falabella").row(0, named=True)
    b = market.filter((pl.col("retailer") == "paris") & (pl.col("name") != a["name"])).row(
        -1, named=True
    )
    labels = pl.DataFrame(
        {
            "left_retailer": [rejected["left_retailer"], a["retailer"]],
            "left_sku": [rejected["left_sku"], a["sku"]],
            "right_retailer": [rejected["right_retailer"], b["retailer"]],
            "right_sku": [rejected["right_sku"], b["sku"]],
            "is_match": [False, True],
        }
    )
    adapted = pipeline_model(labels=labels, listings=market)
    assert adapted.version != plain.version
    assert adapted.metrics["user_labels"] == 2
    assert pipeline_model(labels=labels, listings=market).version == adapted.version
    settled = match_listings(market, scorer=adapted, decisions=labels).pairs
    keys = set(
        settled.select("left_retailer", "left_sku", "right_retailer", "right_sku").iter_rows()
    )
    assert (
        rejected["left_retailer"],
        rejected["left_sku"],
        rejected["right_retailer"],
        rejected["right_sku"],
    ) not in keys
    assert (a["retailer"], a["sku"], b["retailer"], b["sku"]) in keys


def test_word_weights_learn_what_a_market_writes() -> None:
    """Words both titles share, or that one has alone, get weights of their own; a pair
    is never scored by a model that saw it (out of fold)."""
    left = pl.Series(["acme tv 55in black", "acme tv 55in white", "acme case for tv"] * 20)
    right = pl.Series(["acme television 55in black", "acme tv 55in black", "acme tv 55in"] * 20)
    labels = np.array([1, 0, 0] * 20)
    tokens = fit_token_evidence(left, right, labels)
    scores = tokens.pair_scores(left, right)
    assert scores[0] > scores[1] and scores[0] > scores[2]
    weights = dict(zip(tokens.vocabulary, tokens.one_side, strict=True))
    assert weights["case"] < 0  # an accessory word on one side argues against
    oof = out_of_fold_scores(left, right, labels)
    assert oof.shape == labels.shape and not np.allclose(oof, scores)


def _spelled_capacities(capacities: list[int]) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Pairs of memory titles: the same capacity written '8gb' and '8go' (a match), or
    two capacities (not one)."""
    left, right, labels = [], [], []
    for c in capacities:
        for d in capacities:
            left.append(f"acme ram {c}gb")
            right.append(f"acme ram {d}go" if c == d else f"acme ram {d}gb")
            labels.append(int(c == d))
    return pl.Series(left), pl.Series(right), np.array(labels)


def test_character_ngrams_tell_a_spelling_from_another_value() -> None:
    """With n-grams a capacity never seen in training is still recognised written another
    way ('64gb' and '64go'), and told apart from another capacity; whole words cannot."""
    left, right, labels = _spelled_capacities([1, 2, 4, 8, 16, 32, 128, 256])
    unseen = (
        pl.Series(["acme ram 64gb", "acme ram 64gb"]),
        pl.Series(["acme ram 64go", "acme ram 512gb"]),
    )
    words = fit_token_evidence(left, right, labels).pair_scores(*unseen)
    assert words[0] == pytest.approx(words[1])
    grams = fit_token_evidence(left, right, labels, gram_sizes=GRAM_SIZES)
    same, other = grams.pair_scores(*unseen)
    assert same > 0 > other
    assert grams.gram_sizes == GRAM_SIZES  # scoring listings splits them the same way
    assert len(grams.listing_matrix(pl.Series(["acme ram 64go"])).indices) > 3


def test_the_word_weights_vocabulary_is_chosen_on_validation_pairs() -> None:
    """Whole words or words and n-grams: whichever the validation pairs prefer (here the
    capacities of the validation pairs never occur in training)."""
    from arbx_dagster.domain.matching.training import train_selected_model

    def frame(capacities: list[int]) -> pl.DataFrame:
        left, right, labels = _spelled_capacities(capacities)
        return pl.DataFrame(
            {"cosine": 0.5, "left_title": left, "right_title": right, "label": labels}
        )

    train, valid = frame(list(range(1, 30))), frame([64, 96, 128, 512])
    model = train_selected_model(train, valid, columns=("cosine",), tokens=True, choices=(FAST,))
    assert model.tokens is not None and model.tokens.gram_sizes == GRAM_SIZES
    assert model.metrics["f1"] == 1.0


def test_a_model_trained_with_word_weights_carries_them(market: pl.DataFrame) -> None:
    from arbx_dagster.domain.matching.training import train_pair_model
    from arbx_dagster.domain.matching.training_pairs import labelled_pairs

    listings, truth = simulated_listings(seed=101, n_products=120)
    pairs = labelled_pairs(listings, truth=truth)
    model: TrainedPairModel = train_pair_model(pairs, seed=0, tokens=True)
    assert model.tokens is not None and "token_evidence" in model.columns
    # the engine computes the evidence from the listings, the frame path from the titles
    result = match_listings(listings, scorer=model)
    assert result.pairs.height > 0
    again = TrainedPairModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict_proba(pairs), model.predict_proba(pairs))
