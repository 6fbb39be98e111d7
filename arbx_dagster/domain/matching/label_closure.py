"""The pairs a set of labelled pairs implies, beyond the ones written down.

"Same product" is an equivalence: if A matches B and B matches C, A matches C; and if A
does not match D, nothing that matches A matches anything that matches D. Public
labelled-pair sets mention most offers in several pairs, so their labels imply many pairs
nobody labelled — on the WDC training sets, half again to twice as many matches and four
to eight times as many non-matches. ``implied_pairs`` adds them: more of the training labels' own
information, without a single new label (the entity-matching literature's transitive
augmentation).

Pairs keep their orientation: an implied pair joins a record seen on the left of some
labelled pair with one seen on the right, as a blocker would propose them across two
catalogues. Non-matches are drawn, with a seed, up to ``negatives_per_given`` times the
labelled ones, so they do not swamp the matches. Where the labels contradict each other (a
non-match inside a group of matches), the group's matches are implied and nothing is
implied from the contradicting non-match.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from arbx_dagster.domain.matching.training import LABEL


def _fields(pairs: pl.DataFrame) -> list[str]:
    return [c.removeprefix("left_") for c in pairs.columns if c.startswith("left_")]


def _side(pairs: pl.DataFrame, side: str, fields: list[str]) -> pl.DataFrame:
    return pairs.select(pl.col(f"{side}_{f}").alias(f) for f in fields)


def implied_pairs(
    pairs: pl.DataFrame, *, seed: int = 0, negatives_per_given: float = 1.0
) -> pl.DataFrame:
    """``pairs`` (``left_*`` / ``right_*`` record fields and ``label``) followed by the
    pairs their labels imply and that are not among them (module docstring)."""
    if pairs.height == 0:
        return pairs
    fields = _fields(pairs)
    left, right = _side(pairs, "left", fields), _side(pairs, "right", fields)
    nodes = pl.concat([left, right]).unique(maintain_order=True).with_row_index("node")

    def node_ids(side: pl.DataFrame) -> np.ndarray:
        joined = side.join(nodes, on=fields, how="left", nulls_equal=True, maintain_order="left")
        return joined["node"].cast(pl.Int64).to_numpy()

    i, j = node_ids(left), node_ids(right)
    label = pairs[LABEL].cast(pl.Int64).to_numpy()
    match = label == 1
    graph = sp.coo_matrix(
        (np.ones(int(match.sum())), (i[match], j[match])), shape=(nodes.height, nodes.height)
    )
    _, group = connected_components(graph, directed=False)
    on_left, on_right = np.unique(i), np.unique(j)
    lefts = pl.DataFrame({"x": on_left, "group": group[on_left]})
    rights = pl.DataFrame({"y": on_right, "group": group[on_right]})
    known = pl.DataFrame({"x": np.r_[i, j], "y": np.r_[j, i]}).unique()

    matches = lefts.join(rights, on="group").filter(pl.col("x") != pl.col("y")).select("x", "y")
    apart = pl.DataFrame({"a": group[i[~match]], "b": group[j[~match]]}).filter(
        pl.col("a") != pl.col("b")
    )
    apart = pl.concat([apart, apart.select(a="b", b="a")]).unique()
    non_matches = (
        apart.join(lefts.rename({"group": "a"}), on="a")
        .join(rights.rename({"group": "b"}), on="b")
        .select("x", "y")
        .unique()
    )
    matches = _once(matches.join(known, on=["x", "y"], how="anti"))
    non_matches = _once(non_matches.join(known, on=["x", "y"], how="anti"))
    cap = round(negatives_per_given * int((~match).sum()))
    if non_matches.height > cap:
        non_matches = non_matches.sample(cap, seed=seed).sort("x", "y")
    implied = pl.concat(
        [
            matches.with_columns(pl.lit(1).alias(LABEL)),
            non_matches.with_columns(pl.lit(0).alias(LABEL)),
        ]
    )
    return pl.concat([pairs, _as_pairs(implied, nodes, fields, pairs.schema)])


def _once(pairs: pl.DataFrame) -> pl.DataFrame:
    """One orientation of each pair (a record seen on both sides can pair either way)."""
    reverse = pairs.select(x="y", y="x")
    twice = pairs.join(reverse, on=["x", "y"], how="semi")
    return pl.concat(
        [pairs.join(twice, on=["x", "y"], how="anti"), twice.filter(pl.col("x") < pl.col("y"))]
    ).sort("x", "y")


def _as_pairs(
    implied: pl.DataFrame, nodes: pl.DataFrame, fields: list[str], schema: pl.Schema
) -> pl.DataFrame:
    """Implied ``x, y, label`` rows written out as ``pairs`` rows (left ``x``, right ``y``)."""
    as_left = nodes.select(
        pl.col("node").alias("x"), *[pl.col(f).alias(f"left_{f}") for f in fields]
    )
    as_right = nodes.select(
        pl.col("node").alias("y"), *[pl.col(f).alias(f"right_{f}") for f in fields]
    )
    rows = (
        implied.with_columns(pl.col("x", "y").cast(as_left["x"].dtype))
        .join(as_left, on="x", how="left", maintain_order="left")
        .join(as_right, on="y", how="left", maintain_order="left")
    )
    return rows.select(
        pl.col(c) if c in rows.columns else pl.lit(None).alias(c) for c in schema.names()
    ).cast(dict(schema))
