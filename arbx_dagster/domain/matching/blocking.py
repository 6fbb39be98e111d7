"""Candidate generation: which cross-retailer pairs are worth scoring at all.

Comparing every listing with every other is quadratic, so two cheap, vectorised
generators propose candidates and only those are scored:

* exact keys: listings sharing a normalised model code or code stem meet directly
  (keys shared by too many listings are dropped: they are not discriminative);
* similarity: a TF-IDF vector of character 4-grams and words per listing
  (``vectorize``), and for each listing its ``k`` most similar listings at every *other*
  retailer, computed as chunked sparse matrix products (features shared by too many
  listings pruned, so the product stays sparse) with a linear-time top-k per row and per
  column, so memory stays bounded whatever the catalogue size.

Pairs never join two listings of the same retailer. They are oriented so the
alphabetically smaller retailer is on the left (``i`` side).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import polars as pl
import scipy.sparse as sp

from arbx_dagster.domain.matching.normalize import MIN_KEY_LEN, UNIT_TOKEN
from arbx_dagster.domain.matching.vectorize import normalize, tfidf_matrix

__all__ = [
    "blocking_recall",
    "candidate_pairs",
    "code_key_pairs",
    "prune_common_features",
    "similarity_pairs",
    "tfidf_matrix",
]

PAIR_SCHEMA = {"i": pl.Int64, "j": pl.Int64}

# Nearest listings per other retailer the pipeline's similarity blocker proposes. On
# simulated markets of 100k listings, 3 with refined code keys find as many true pairs
# (pair completeness 0.95) as 5 with plain keys, with a fifth fewer candidates; 2 instead
# of 3 scores 16 % fewer candidates (the largest cost at a million listings) for 0.2
# points of match precision and recall (0.971 / 0.958 -> 0.969 / 0.956 on simulator seed
# 11, not the benchmark's seed), and on abt_buy the same pairs at 2.6 instead of 4.0
# candidates per record (pair completeness 0.988 -> 0.985, F1 0.941 both).
DEFAULT_NEIGHBOURS = 2

# Bound on the work of one chunk of rows: (row, shared feature, column) triples of its
# sparse product, an upper bound on the similarities it holds (about 4x their number on
# listing titles): 16M triples, a few hundred MB at most.
DEFAULT_CHUNK_CELLS = 16_000_000
# Threads computing chunks (the sparse products and most NumPy work release the GIL).
DEFAULT_WORKERS = 2
# Features (n-grams, words) held by more than this share of listings are not used to
# look for neighbours (see ``prune_common_features``).
DEFAULT_MAX_DF = 0.1
# ... and by more than this many listings, whatever the catalogue size: this bounds the
# work per feature, so the product grows roughly linearly with the catalogue.
DEFAULT_MAX_DF_COUNT = 2_000
# Pairs whose (pruned) cosine is below this share no distinctive text at all: they are
# never similarity candidates (shared model codes still meet through the code keys).
DEFAULT_MIN_SIMILARITY = 0.05
# Resolution of the histograms that find each group's k-th best value (``_topk_groups``):
# at most ``_LEVELS`` buckets per group and ``_HIST_CELLS`` buckets in all.
_LEVELS = 1024
_HIST_CELLS = 4_000_000


def _orient(pairs: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """Keep cross-retailer pairs once, smaller retailer (then index) on the ``i`` side."""
    retailer = records.select(pl.col("idx"), pl.col("retailer"))
    p = (
        pairs.join(retailer.rename({"idx": "i", "retailer": "ri"}), on="i")
        .join(retailer.rename({"idx": "j", "retailer": "rj"}), on="j")
        .filter(pl.col("ri") != pl.col("rj"))
    )
    swap = (pl.col("ri") > pl.col("rj")) | (
        (pl.col("ri") == pl.col("rj")) & (pl.col("i") > pl.col("j"))
    )
    return p.select(
        pl.when(swap).then(pl.col("j")).otherwise(pl.col("i")).alias("i"),
        pl.when(swap).then(pl.col("i")).otherwise(pl.col("j")).alias("j"),
    ).unique()


def code_key_pairs(records: pl.DataFrame, *, max_block: int = 30) -> pl.DataFrame:
    """Pairs of listings sharing a model code or code stem (at different retailers).

    ``records`` needs ``idx``, ``retailer`` and list columns ``codes`` and ``stems``
    (``brand`` and ``name_norm`` refine over-shared codes when present). A key held by
    more than ``max_block`` listings is a series name or a generation marker rather than
    a product identity, and would blow the candidate count up quadratically; instead of
    dropping it, it is refined by what else names the product: the brand, then each
    measure of the title ('128gb', '55in'). A refined key still over the limit is dropped.
    """
    keys = (
        records.select("idx", "retailer", pl.concat_list("codes", "stems").alias("key"))
        .explode("key")
        .drop_nulls("key")
        .filter(pl.col("key").str.len_chars() >= MIN_KEY_LEN)
        .unique(["idx", "key"])
    )
    refiners = _refiners(records)
    chosen = []
    for refiner in [None, *refiners]:
        if refiner is not None:
            keys = keys.join(refiner, on="idx").select(
                "idx", "retailer", pl.col("key") + "|" + pl.col("part")
            )
        sizes = keys.group_by("key").agg(
            pl.len().alias("n"), pl.col("retailer").n_unique().alias("n_retailers")
        )
        fits = sizes.filter(pl.col("n") <= max_block)
        chosen.append(
            keys.join(fits.filter(pl.col("n_retailers") > 1).select("key"), on="key", how="semi")
        )
        keys = keys.join(fits.select("key"), on="key", how="anti")  # refine the rest
        if keys.height == 0:
            break
    matched = pl.concat(chosen)
    # Each retailer's listings joined only to later retailers' (not the whole self-join,
    # two thirds of which a retailer filter would throw away).
    retailers = sorted(matched["retailer"].unique().to_list())
    pairs = [
        matched.filter(pl.col("retailer") == a)
        .select("key", pl.col("idx").alias("i"))
        .join(
            matched.filter(pl.col("retailer") > a).select("key", pl.col("idx").alias("j")),
            on="key",
        )
        .select("i", "j")
        for a in retailers[:-1]
    ]
    if not pairs:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    return pl.concat(pairs).unique().cast(PAIR_SCHEMA)


def _refiners(records: pl.DataFrame) -> list[pl.DataFrame]:
    """``idx, part`` frames that narrow an over-shared code: brand, then each measure."""
    out = []
    if "brand" in records.columns:
        out.append(records.select("idx", pl.col("brand").alias("part")).drop_nulls("part"))
    if "name_norm" in records.columns:
        out.append(
            records.select(
                "idx",
                pl.col("name_norm")
                .str.split(" ")
                .list.eval(pl.element().filter(pl.element().str.contains(UNIT_TOKEN)))
                .alias("part"),
            )
            .explode("part")
            .drop_nulls("part")
            .unique()
        )
    return out


def prune_common_features(
    matrix: sp.csr_matrix,
    max_df: float,
    max_df_count: int = DEFAULT_MAX_DF_COUNT,
    *,
    catalogue_size: int | None = None,
) -> sp.csr_matrix:
    """Drop n-grams held by more than ``max_df`` of the listings (or more than
    ``max_df_count`` listings), then re-normalise.

    ``catalogue_size`` (default: the matrix's rows) is what ``max_df`` is a share of: a
    match block of a larger catalogue passes the catalogue's size, so a small block prunes
    no more than the whole catalogue would (a tenth of 40 listings would prune everything).

    The cost of ``X_A @ X_B.T`` is the sum over features of (listings at A having it) x
    (listings at B having it): a handful of n-grams shared by whole categories ('sam',
    ' tv', 'gb ') make it quadratic while adding almost nothing to the ranking (their IDF
    is low). Without them the product stays sparse and neighbours are ranked by the rare
    n-grams: model codes, model names, sizes.
    """
    n = matrix.shape[0]
    limit = max(2, min(int(max_df * max(n, catalogue_size or 0)), max_df_count))
    if n == 0 or limit >= n:
        return matrix
    df = np.diff(matrix.tocsc().indptr)
    keep = np.flatnonzero(df <= limit)
    if len(keep) == 0:
        return sp.csr_matrix((n, 0), dtype=np.float32)
    return normalize(matrix[:, keep]).astype(np.float32).tocsr()


def _topk_sparse(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, k: int, by: str
) -> np.ndarray:
    """Mask of the ``k`` highest values per row (``by='row'``) or per column, vectorised.

    One stable argsort on ``group * 2 - value`` (values are cosines in [0, 1]) orders by
    group, then by value descending; the rank inside each group is the position minus
    the group's first position.
    """
    group = rows if by == "row" else cols
    if len(group) == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(group.astype(np.float64) * 2.0 - vals, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(sorted_group)]))
    rank = np.arange(len(sorted_group)) - run_start
    mask = np.zeros(len(vals), dtype=bool)
    mask[order[rank < k]] = True
    return mask


def _topk_groups(group: np.ndarray, vals: np.ndarray, n_groups: int, k: int) -> np.ndarray:
    """Positions of the ``k`` highest values of every group (values in [0, 1]).

    Sorting millions of similarities per chunk was the blocker's bottleneck. Instead a
    histogram of the values per group (``np.bincount`` over group x bucket) gives the
    bucket holding each group's k-th best; only entries in or above it survive (a
    handful per group) and those are ranked exactly. Linear in the number of entries.
    """
    if len(vals) == 0:
        return np.empty(0, dtype=np.int64)
    cells = min(_HIST_CELLS, 2 * len(vals))  # the histogram costs no more than the values
    levels = int(np.clip(cells // max(n_groups, 1), 16, _LEVELS))
    level = (levels - 1) - np.minimum(
        (np.clip(vals, 0.0, 1.0) * levels).astype(np.int64), levels - 1
    )
    hist = np.bincount(group * levels + level, minlength=n_groups * levels)
    cut = (np.cumsum(hist.reshape(n_groups, levels), axis=1) < k).sum(axis=1)
    near = np.flatnonzero(level <= cut[group])
    best = _topk_sparse(group[near], group[near], vals[near], k, "row")
    return near[best]


class _ColumnTopK:
    """Running ``k`` best rows per column across row chunks, with a rising floor.

    Each column's current k-th best value is a threshold: later entries below it cannot
    enter, so after the first chunks almost everything is rejected by one comparison.
    """

    def __init__(self, n_cols: int, k: int, pool_limit: int = 2_000_000) -> None:
        self.k, self.n_cols, self.pool_limit = k, n_cols, pool_limit
        self.floor = np.full(n_cols, -np.inf, dtype=np.float32)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        keep = vals >= self.floor[cols]
        self.parts.append((rows[keep], cols[keep], vals[keep]))
        self.size += int(keep.sum())
        if self.size > self.pool_limit:
            self._compact()

    def _compact(self) -> None:
        rows, cols, vals = (np.concatenate(x) for x in zip(*self.parts, strict=True))
        best = _topk_groups(cols, vals, self.n_cols, self.k)
        rows, cols, vals = rows[best], cols[best], vals[best]
        counts = np.bincount(cols, minlength=self.n_cols)
        lowest = np.full(self.n_cols, np.inf, dtype=np.float32)
        np.minimum.at(lowest, cols, vals)
        self.floor = np.where(counts >= self.k, lowest, -np.inf).astype(np.float32)
        self.parts, self.size = [(rows, cols, vals)], len(rows)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        self._compact()
        rows, cols, _ = self.parts[0]
        return rows, cols


def _row_chunks(xa: sp.csr_matrix, xb_t: sp.csr_matrix, budget: int) -> np.ndarray:
    """Row boundaries of ``xa`` such that each chunk's product with ``xb_t`` holds at most
    about ``budget`` entries (an upper bound: every shared feature counted once)."""
    per_feature = np.diff(xb_t.indptr).astype(np.float64)  # B listings holding each feature
    entries = np.zeros(xa.shape[0]) if xa.nnz == 0 else None
    if entries is None:
        row_of = np.repeat(np.arange(xa.shape[0]), np.diff(xa.indptr))
        entries = np.bincount(row_of, weights=per_feature[xa.indices], minlength=xa.shape[0])
    # greedy cut: a new chunk whenever the running total would pass the budget
    total = np.cumsum(entries)
    bounds = [0]
    while bounds[-1] < xa.shape[0]:
        start = bounds[-1]
        base = total[start - 1] if start else 0.0
        stop = int(np.searchsorted(total, base + budget, side="right"))
        bounds.append(min(max(stop, start + 1), xa.shape[0]))
    return np.asarray(bounds)


def _chunk_neighbours(
    xa: sp.csr_matrix,
    xb_t: sp.csr_matrix,
    start: int,
    stop: int,
    k: int,
    min_similarity: float,
    floor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One chunk of A's rows against every B column: the ``k`` best columns of each row
    (``rows, cols``), and the ``k`` best rows of each column inside the chunk among those
    at or above the column's current ``floor`` (``rows, cols, values``)."""
    sim = (xa[start:stop] @ xb_t).tocsr()
    if min_similarity > 0:
        sim.data[sim.data < min_similarity] = 0
    sim.eliminate_zeros()
    rows = np.repeat(np.arange(start, start + sim.shape[0], dtype=np.int64), np.diff(sim.indptr))
    cols, vals = sim.indices.astype(np.int64), sim.data
    best = _topk_groups(rows - start, vals, sim.shape[0], k)
    keep = np.flatnonzero(vals >= floor[cols])
    top = keep[_topk_groups(cols[keep], vals[keep], xb_t.shape[1], k)]
    return rows[best], cols[best], rows[top], cols[top], vals[top]


def _neighbours_between(
    xa: sp.csr_matrix,
    xb_t: sp.csr_matrix,
    pool: ThreadPoolExecutor,
    workers: int,
    k: int,
    min_similarity: float,
    chunk_cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows of A, columns of B)``: each A row's ``k`` best B columns and each B column's
    ``k`` best A rows, over chunks of A's rows computed on ``pool`` (at most one chunk in
    flight per thread, so memory stays bounded)."""
    columns = _ColumnTopK(xb_t.shape[1], k)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    pending: deque[Future] = deque()

    def take(done: Future) -> None:
        best_r, best_c, top_r, top_c, top_v = done.result()
        rows.append(best_r)
        cols.append(best_c)
        columns.add(top_r, top_c, top_v)

    bounds = _row_chunks(xa, xb_t, chunk_cells)
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        floor = columns.floor.copy()  # a snapshot: a stale floor only keeps more
        pending.append(
            pool.submit(_chunk_neighbours, xa, xb_t, start, stop, k, min_similarity, floor)
        )
        if len(pending) >= workers:
            take(pending.popleft())
    while pending:
        take(pending.popleft())
    top_rows, top_cols = columns.result()
    return np.concatenate([*rows, top_rows]), np.concatenate([*cols, top_cols])


def similarity_pairs(
    matrix: sp.csr_matrix,
    records: pl.DataFrame,
    *,
    k: int = 4,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    workers: int = DEFAULT_WORKERS,
) -> pl.DataFrame:
    """For every listing, its ``k`` nearest listings (cosine) at each other retailer.

    Both directions are taken for every pair of retailers (A's neighbours at B and B's at
    A), so a listing whose best partner ranks it low still gets a chance. The product
    ``X_A[chunk] @ X_B.T`` is computed for chunks of A's rows sized so that the chunk's
    similarities stay under about ``chunk_cells`` entries (bounded by the number of B
    listings sharing each feature of the chunk's rows); row-wise top-k is taken per chunk
    and the column-wise top-k of B is carried across chunks, so memory is bounded by the
    chunk plus ``k`` entries per listing. Entries under ``min_similarity`` are dropped
    first. Chunks run on ``workers`` threads (the sparse products release the GIL), at
    most one chunk in flight per thread.
    """
    retailers = sorted(records["retailer"].unique().to_list())
    retailer = records["retailer"].to_numpy()
    idx = records["idx"].to_numpy().astype(np.int64)
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    workers = max(1, workers)
    with ThreadPoolExecutor(workers) as pool:
        for a_pos, a in enumerate(retailers):
            for b in retailers[a_pos + 1 :]:
                ia, ib = idx[retailer == a], idx[retailer == b]
                if len(ia) == 0 or len(ib) == 0:
                    continue
                rows, cols = _neighbours_between(
                    matrix[ia], matrix[ib].T.tocsr(), pool, workers, k, min_similarity, chunk_cells
                )
                out_i.append(ia[rows])
                out_j.append(ib[cols])
    if not out_i:
        return pl.DataFrame(schema=PAIR_SCHEMA)
    return pl.DataFrame(
        {"i": np.concatenate(out_i), "j": np.concatenate(out_j)}, schema=PAIR_SCHEMA
    ).unique()


def candidate_pairs(
    records: pl.DataFrame,
    matrix: sp.csr_matrix,
    *,
    k: int = 4,
    max_block: int = 30,
    max_df: float = DEFAULT_MAX_DF,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    workers: int | None = None,
    catalogue_size: int | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Union of code-key and similarity candidates, with counts for reporting.

    Returns ``(pairs, stats)`` where ``pairs`` has ``i, j, by_code, by_similarity`` and
    ``stats`` the number of candidates each generator produced and the union.
    """
    by_code = _orient(code_key_pairs(records, max_block=max_block), records)
    sparse = prune_common_features(matrix, max_df, catalogue_size=catalogue_size)
    by_sim = _orient(
        similarity_pairs(
            sparse,
            records,
            k=k,
            chunk_cells=chunk_cells,
            min_similarity=min_similarity,
            workers=workers or DEFAULT_WORKERS,
        ),
        records,
    )
    pairs = (
        pl.concat(
            [
                by_code.with_columns(by_code=pl.lit(True), by_similarity=pl.lit(False)),
                by_sim.with_columns(by_code=pl.lit(False), by_similarity=pl.lit(True)),
            ]
        )
        .group_by("i", "j")
        .agg(pl.col("by_code").any(), pl.col("by_similarity").any())
        .sort("i", "j")
    )
    stats = {
        "listings": records.height,
        "candidates_code": by_code.height,
        "candidates_similarity": by_sim.height,
        "candidates": pairs.height,
    }
    return pairs, stats


def blocking_recall(
    candidates: pl.DataFrame, truth: pl.DataFrame, left_retailer: str
) -> dict[str, float]:
    """Pair completeness: share of true pairs (``left_sku, right_sku``) among candidates.

    ``candidates`` carries ``left_retailer, left_sku, right_retailer, right_sku``.
    """
    oriented = candidates.select(
        pl.when(pl.col("left_retailer") == left_retailer)
        .then(pl.col("left_sku"))
        .otherwise(pl.col("right_sku"))
        .alias("left_sku"),
        pl.when(pl.col("left_retailer") == left_retailer)
        .then(pl.col("right_sku"))
        .otherwise(pl.col("left_sku"))
        .alias("right_sku"),
    ).unique()
    found = truth.unique().join(oriented, on=["left_sku", "right_sku"], how="semi").height
    return {"pair_completeness": found / truth.height if truth.height else 1.0}
