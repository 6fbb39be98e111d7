"""Finding, in a whole catalogue, the listings that could be a changed listing's match.

An incremental match (``incremental.py``) matches a changed listing against a *pool*: the
listings at other retailers of its match block that share the most informative keys with
it — title words, pairs of adjacent title words and model codes (and their stems), each
weighted by its log inverse document frequency. A key held by more than ``MAX_POSTINGS``
listings names a shelf ('samsung', '55'), not a product, and is not searched.

Counting a key's postings means reading every title of the catalogue, which at a million
listings costs more than matching a thousand changes. So a full match records the
catalogue's *stop keys* (those over ``MAX_POSTINGS``); later pools search only the listings
whose title or codes contain one of the changed listings' other keys as text (a fast
multi-pattern scan), which holds every posting of those keys. A key that grew past the
limit since the full match is still searched (a few more candidates); the daily full
match records it.
"""

from __future__ import annotations

import polars as pl

from arbx_dagster.domain.matching.blocking import DEFAULT_NEIGHBOURS
from arbx_dagster.domain.matching.model_codes import MIN_KEY_LEN, code_stem
from arbx_dagster.domain.schema import LISTING_KEY_SCHEMA

POOL_PER_RETAILER = DEFAULT_NEIGHBOURS  # as many as the similarity blocker proposes
MAX_POSTINGS = 2_000
KEY = ["retailer", "sku"]
STOP_KEY_SCHEMA: dict[str, pl.DataType] = {"key": pl.Int64()}
_TITLE, _CODES = "name_norm", "model_codes"


def retrieval_keys(rows: pl.LazyFrame, *, texts: bool = False) -> pl.LazyFrame:
    """``row, key``: the title words, pairs of adjacent title words and model codes (and
    their stems) of each listing, hashed (each kind apart, so a million titles' keys are
    joined and counted as integers); a key repeated in one listing repeats here. With
    ``texts``, also ``text`` (what the key hashes, as it reads in the title or the codes)
    and ``field`` (``name_norm`` or ``model_codes``)."""
    tokens = (
        rows.select("row", word=pl.col(_TITLE).fill_null("").str.split(" "))
        .explode("word")
        .with_columns(
            next=pl.col("word").shift(-1),
            same=pl.col("row") == pl.col("row").shift(-1),
        )
    )
    # Adjacent word pairs: in a large catalogue most single words name a shelf ('galaxy',
    # '55'), a pair of them a product line ('galaxy a54').
    is_word = pl.col("word").str.len_chars() >= 2
    words = tokens.filter(is_word).select(
        "row", key=pl.col("word").hash(seed=0), text=pl.col("word"), field=pl.lit(_TITLE)
    )
    pairs = tokens.filter(pl.col("same") & is_word & (pl.col("next").str.len_chars() >= 2)).select(
        "row",
        key=pl.struct(pl.col("word").hash(seed=0), pl.col("next").hash(seed=0).alias("n")).hash(
            seed=2
        ),
        text=pl.col("word") + " " + pl.col("next"),
        field=pl.lit(_TITLE),
    )
    codes = (
        rows.select("row", code=pl.col(_CODES).fill_null("").str.split(" "))
        .explode("code")
        .filter(pl.col("code").str.len_chars() >= MIN_KEY_LEN)
    )
    stem = code_stem(pl.col("code"))
    keyed = pl.concat(
        [
            words,
            pairs,
            codes.select("row", key=pl.col("code").hash(seed=1), text="code", field=pl.lit(_CODES)),
            codes.select("row", key=stem.hash(seed=1), text=stem, field=pl.lit(_CODES)),
        ]
    )
    keyed = keyed.with_columns(pl.col("key").reinterpret(signed=True))  # as BIGINT stores it
    return keyed if texts else keyed.select("row", "key")


def stop_keys(listings: pl.DataFrame, max_postings: int = MAX_POSTINGS) -> pl.DataFrame:
    """``key``: the keys more than ``max_postings`` listings of the catalogue hold."""
    rows = listings.select(_TITLE, _CODES).with_row_index("row")
    return (
        retrieval_keys(rows.lazy())
        .unique()
        .group_by("key")
        .len("postings")
        .filter(pl.col("postings") > max_postings)
        .select("key")
        .sort("key")
        .collect()
    )


def _holding_any(rows: pl.DataFrame, seed_keys: pl.DataFrame) -> pl.DataFrame:
    """The rows whose title or codes contain the text of one of ``seed_keys``: every row
    that holds one of those keys, and some that only contain it inside a longer word."""
    found = pl.lit(False)
    for field in (_TITLE, _CODES):
        patterns = seed_keys.filter(pl.col("field") == field)["text"].unique().to_list()
        if patterns:
            found = found | pl.col(field).fill_null("").str.contains_any(patterns)
    return rows.filter(found)


def candidate_pool(
    blocked: pl.DataFrame,
    seeds: pl.DataFrame,
    stop: pl.DataFrame | None = None,
    per_retailer: int = POOL_PER_RETAILER,
    max_postings: int = MAX_POSTINGS,
) -> pl.DataFrame:
    """``retailer, sku`` of the listings at other retailers of the seeds' block that share
    the most informative keys with a seed (summed log inverse document frequency),
    ``per_retailer`` per seed and retailer. ``stop``: the catalogue's stop keys
    (:func:`stop_keys`); without them every title is read to count the postings."""
    if seeds.height == 0:
        return pl.DataFrame(schema=LISTING_KEY_SCHEMA)
    rows = blocked.select(*KEY, "block", _TITLE, _CODES).with_row_index("row")
    seed_rows = rows.join(seeds, on=KEY, how="semi")
    seed_keys = retrieval_keys(seed_rows.lazy(), texts=True).collect()
    searched = rows
    if stop is not None:
        seed_keys = seed_keys.join(stop, on="key", how="anti")
        searched = _holding_any(rows, seed_keys)
    # Only the postings of the seeds' keys are gathered.
    wanted = seed_keys["key"].unique().implode()
    postings = (
        retrieval_keys(searched.lazy()).filter(pl.col("key").is_in(wanted)).unique().collect()
    )
    weights = (
        postings.group_by("key")
        .len("postings")
        .filter(pl.col("postings") <= max_postings)
        .select("key", weight=(pl.lit(float(rows.height)) / pl.col("postings")).log())
    )
    side = rows.select("row", "retailer", "block")
    hits = (
        seed_keys.select(seed="row", key="key")
        .join(weights, on="key")
        .join(postings.join(weights.select("key"), on="key", how="semi"), on="key")
        .filter(pl.col("row") != pl.col("seed"))
        .group_by("seed", "row")
        # Rounded: the order the weights are summed in must not break ties.
        .agg(score=pl.col("weight").sum().round(9))
        .join(
            side.rename({"row": "seed", "retailer": "seed_retailer", "block": "seed_block"}),
            on="seed",
        )
        .join(side, on="row")
        .filter(
            (pl.col("retailer") != pl.col("seed_retailer"))
            & (pl.col("block") == pl.col("seed_block"))
        )
        .sort("score", "row", descending=[True, False])
        .group_by("seed", "retailer", maintain_order=True)
        .head(per_retailer)
    )
    return rows.join(hits.select("row").unique(), on="row", how="semi").select(KEY)


__all__ = [
    "MAX_POSTINGS",
    "POOL_PER_RETAILER",
    "STOP_KEY_SCHEMA",
    "candidate_pool",
    "retrieval_keys",
    "stop_keys",
]
