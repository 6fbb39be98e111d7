"""Context features: how a pair ranks among each listing's candidates at the other retailer.

Per listing and other retailer: the pair's rank among that listing's candidates, its gap
to the best and its margin over the best other candidate, and whether the two listings
are each other's best (``CONTEXT_FEATURES``). ``context_features`` ranks the pairs of one
frame among themselves; ``context_for_queries`` places each query pair alone among a
frame of candidates (labelled pairs scored as if each were the only extra one).
"""

from __future__ import annotations

import numpy as np
import polars as pl

CONTEXT_FEATURES: tuple[str, ...] = (
    "cosine_gap_i",  # best cosine of i among its candidates at j's retailer minus this one
    "cosine_gap_j",
    "cosine_rank_i",  # 1 = j is i's most similar candidate at j's retailer
    "cosine_rank_j",
    "cosine_margin_i",  # this cosine minus the best *other* candidate's (> 0: clear best)
    "cosine_margin_j",
    "mutual_best",  # each is the other's most similar candidate
)


def _rank_in_groups(group: np.ndarray, score: np.ndarray) -> dict[str, np.ndarray]:
    """Per row: rank of ``score`` within its group (1 = best, ties share the better rank),
    gap to the group's best and margin over the best *other* row of the group."""
    n = len(score)
    # one sort: by group, then score descending (scores are similarities in [0, 1])
    order = np.argsort(group * 4.0 + (1.0 - np.clip(score, 0.0, 1.0)), kind="stable")
    g, s = group[order], score[order]
    pos = np.arange(n)
    new_group = np.r_[True, g[1:] != g[:-1]] if n else np.zeros(0, bool)
    new_value = new_group | np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0)) if n else pos
    value_start = np.maximum.accumulate(np.where(new_value, pos, 0)) if n else pos
    sizes = np.diff(np.r_[np.flatnonzero(new_group), n]) if n else pos
    size = np.repeat(sizes, sizes) if n else pos
    best = s[group_start]
    second = np.where(size > 1, s[np.minimum(group_start + 1, n - 1)], 0.0) if n else s
    is_best = s >= best
    margin = np.where(is_best, s - second, s - best)
    out = {
        "rank": (value_start - group_start + 1).astype(np.float64),
        "gap": best - s,
        "margin": margin,
    }
    result = {}
    for key, values in out.items():
        back = np.empty(n, dtype=np.float64)
        back[order] = values
        result[key] = back
    return result


def context_features(
    scores: pl.DataFrame, records: pl.DataFrame, *, score: str = "cosine"
) -> pl.DataFrame:
    """``i, j`` and ``CONTEXT_FEATURES`` from every candidate's ``score`` (``i, j, score``).

    Per listing and other retailer: the pair's rank among that listing's candidates, its
    gap to the best and its margin over the best other candidate (the second best when it
    is the best itself; its own score when it is the only one). ``scores`` must hold all
    the candidates of the listings involved, or the ranks mean little.
    """
    retailers = sorted(records["retailer"].unique().to_list())
    code = records.select(
        pl.col("idx").cast(pl.Int64),
        pl.col("retailer").replace_strict(
            {r: n for n, r in enumerate(retailers)}, return_dtype=pl.Int64
        ),
    )
    frame = scores.select(
        pl.col("i").cast(pl.Int64), pl.col("j").cast(pl.Int64), pl.col(score).alias("s")
    )
    retailer_of = np.zeros(int(code["idx"].max()) + 1 if code.height else 0, dtype=np.int64)
    retailer_of[code["idx"].to_numpy()] = code["retailer"].to_numpy()
    i, j = frame["i"].to_numpy(), frame["j"].to_numpy()
    s = frame["s"].fill_null(0.0).fill_nan(0.0).to_numpy().astype(np.float64)
    n_retailers = max(len(retailers), 1)
    side_i = _rank_in_groups(i * n_retailers + retailer_of[j], s)
    side_j = _rank_in_groups(j * n_retailers + retailer_of[i], s)
    return frame.select("i", "j").with_columns(
        pl.Series("cosine_gap_i", side_i["gap"]),
        pl.Series("cosine_gap_j", side_j["gap"]),
        pl.Series("cosine_rank_i", side_i["rank"]),
        pl.Series("cosine_rank_j", side_j["rank"]),
        pl.Series("cosine_margin_i", side_i["margin"]),
        pl.Series("cosine_margin_j", side_j["margin"]),
        pl.Series(
            "mutual_best", ((side_i["rank"] == 1) & (side_j["rank"] == 1)).astype(np.float64)
        ),
    )


def context_for_queries(
    queries: pl.DataFrame, candidates: pl.DataFrame, records: pl.DataFrame, *, score: str = "cosine"
) -> pl.DataFrame:
    """``CONTEXT_FEATURES`` of ``queries`` (``i, j, score``), each placed alone among
    ``candidates`` (``i, j, score``), in the order of ``queries``.

    The same quantities as ``context_features`` computes inside one frame (for a query
    that is itself a candidate they coincide), but no query sees another query: labelled
    pairs are scored as if each were the only extra pair the matcher looked at.
    """
    retailer = records.select(pl.col("idx").cast(pl.Int64), pl.col("retailer"))

    def prepare(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.select(
                pl.col("i").cast(pl.Int64),
                pl.col("j").cast(pl.Int64),
                pl.col(score).fill_null(0.0).fill_nan(0.0).cast(pl.Float64).alias("s"),
            )
            .join(retailer.rename({"idx": "i", "retailer": "ri"}), on="i", how="left")
            .join(retailer.rename({"idx": "j", "retailer": "rj"}), on="j", how="left")
        )

    q = prepare(queries).with_row_index("q")
    c = prepare(candidates).unique(["i", "j"])
    out = q
    for side, other, group in (("i", "j", ["i", "rj"]), ("j", "i", ["j", "ri"])):
        others = (
            q.join(c.select(*group, pl.col(other).alias("o"), pl.col("s").alias("so")), on=group)
            .filter(pl.col("o") != pl.col(other))
            .group_by("q")
            .agg(
                (pl.col("so") > pl.col("s")).sum().alias("above"),
                pl.col("so").max().alias("best_other"),
            )
        )
        best_other = pl.col("best_other").fill_null(0.0)
        out = (
            out.join(others, on="q", how="left")
            .with_columns(
                (pl.max_horizontal(best_other, pl.col("s")) - pl.col("s")).alias(
                    f"cosine_gap_{side}"
                ),
                (pl.col("above").fill_null(0) + 1).cast(pl.Float64).alias(f"cosine_rank_{side}"),
                (pl.col("s") - best_other).alias(f"cosine_margin_{side}"),
            )
            .drop("above", "best_other")
        )
    out = out.sort("q").with_columns(
        mutual_best=((pl.col("cosine_rank_i") == 1) & (pl.col("cosine_rank_j") == 1)).cast(
            pl.Float64
        )
    )
    return out.select("i", "j", *[pl.col(c).cast(pl.Float64) for c in CONTEXT_FEATURES])
