"""True and false positives and negatives of a detector, and the metrics they give."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def metrics(self) -> dict[str, float | int]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def count_hits(predicted: pl.DataFrame, truth: pl.DataFrame, key: list[str]) -> Counts:
    """Counts of ``predicted`` against ``truth``, each a set of distinct ``key`` values."""
    predicted, truth = predicted.select(key).unique(), truth.select(key).unique()
    tp = predicted.join(truth, on=key, how="semi").height
    return Counts(tp=tp, fp=predicted.height - tp, fn=truth.height - tp)
