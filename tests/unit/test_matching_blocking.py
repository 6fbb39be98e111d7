"""Vectorisation and blocking: same vectors as scikit-learn, exact top-k."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from arbx_dagster.domain.matching.blocking import candidate_pairs, similarity_pairs
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.vectorize import text_vectors

TITLES = [
    "smart tv samsung 55in crystal uhd un55cu7000gxzs",
    "televisor samsung led 55in un55cu7000",
    "apple iphone 15 128gb negro",
    "iphone 15 128gb negro apple",
    "notebook lenovo ideapad 3 15.6in ryzen 5 8gb 512gb 82ku00rflm",
    "lavadora carga frontal 9kg inverter",
    "a",
    "",
]


def test_character_part_equals_scikit_learns_tfidf() -> None:
    """The NumPy vectoriser computes what TfidfVectorizer(char_wb, 4-grams) computes."""
    ours = text_vectors(pl.Series(TITLES)).chars
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True)
    theirs = reference.fit_transform(TITLES)
    np.testing.assert_allclose((ours @ ours.T).toarray(), (theirs @ theirs.T).toarray(), atol=1e-5)


def test_word_part_and_idf_overlap() -> None:
    vectors = text_vectors(pl.Series(["sony tv un55 black", "sony tv un55 white", "lg fridge"]))
    cosine = (vectors.matrix @ vectors.matrix.T).toarray()
    assert cosine[0, 1] > 0.5 and cosine[0, 2] == 0.0
    np.testing.assert_allclose(np.diag(cosine), 1.0, atol=1e-5)
    shared_idf = (vectors.word_idf @ vectors.word_idf.T).toarray()
    # rows share 'sony', 'tv', 'un55': their IDF mass, less than either row's total
    assert 0 < shared_idf[0, 1] < vectors.word_idf_total[0]
    assert shared_idf[0, 2] == 0.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_similarity_pairs_are_each_listings_k_nearest_at_every_other_retailer(k: int) -> None:
    """Against a brute-force dense ranking: each listing's k best at each other retailer
    (both directions), nothing under the similarity floor, nothing within one retailer."""
    rng = np.random.default_rng(k)
    n = 120
    dense = rng.random((n, 40)) * (rng.random((n, 40)) < 0.2)
    matrix = sp.csr_matrix(dense / np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-9))
    retailer = np.array(["falabella", "paris", "ripley"])[rng.integers(0, 3, n)]
    records = pl.DataFrame({"idx": np.arange(n), "retailer": retailer})
    got = {tuple(sorted(p)) for p in similarity_pairs(matrix, records, k=k).iter_rows()}
    cosine = (matrix @ matrix.T).toarray()
    expected = set()
    for i in range(n):
        for other in set(retailer) - {retailer[i]}:
            pool = np.flatnonzero(retailer == other)
            ranked = pool[np.argsort(-cosine[i, pool], kind="stable")][:k]
            expected |= {tuple(sorted((i, int(j)))) for j in ranked if cosine[i, j] > 0.05}
    assert got == expected


def _records(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    raw = pl.DataFrame(rows, schema=["retailer", "sku", "name"], orient="row")
    return matching_records(enrich_listings(raw))


def test_similarity_blocker_proposes_nearest_across_retailers_only() -> None:
    records = _records(
        [
            ("falabella", "f1", TITLES[0]),
            ("falabella", "f2", TITLES[2]),
            ("falabella", "f3", "iphone 15 128gb azul apple"),
            ("ripley", "r1", TITLES[1]),
            ("ripley", "r2", TITLES[3]),
        ]
    )
    vectors = text_vectors(records["text"])
    pairs = similarity_pairs(vectors.matrix, records, k=1)
    retailer = dict(zip(records["idx"], records["retailer"], strict=True))
    assert all(retailer[i] != retailer[j] for i, j in pairs.iter_rows())
    assert (0, 3) in set(pairs.iter_rows()) and (1, 4) in set(pairs.iter_rows())


def test_candidates_are_the_union_of_code_keys_and_similarity() -> None:
    records = _records(
        [
            ("falabella", "f1", "Refrigerador No Frost LFX25971ST"),
            ("paris", "p1", "LG French Door LFX25971SW acero"),
            ("paris", "p2", "Cocina a gas 4 platos"),
        ]
    )
    vectors = text_vectors(records["text"])
    pairs, stats = candidate_pairs(records, vectors.matrix, k=1, min_similarity=0.99)
    found = {(i, j): (c, s) for i, j, c, s in pairs.iter_rows()}
    assert found[(0, 1)] == (True, False)  # stem LFX25971 shared; texts too far apart
    assert stats["candidates"] == pairs.height
