"""Shelf prices (steps ending in 990) and spells of days, on listing x day arrays."""

from __future__ import annotations

import numpy as np


def _step(value: np.ndarray) -> np.ndarray:
    """Shelf price steps: 1.290 and 4.490 under 10.000 CLP, 24.990 under 100.000, then
    129.990 / 135.990-like steps of 5.000, and 10.000 over a million."""
    return np.select(
        [value < 10_000, value < 100_000, value < 1_000_000], [100, 1_000, 5_000], 10_000
    )


def nearest_990(value: np.ndarray | float) -> np.ndarray:
    """Nearest shelf price (ending in 90 under 10.000 CLP, in 990 above)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.round((value + 10) / step) * step - 10, 190).astype(np.int64)


def below_990(value: np.ndarray | float) -> np.ndarray:
    """The shelf price at or below ``value`` (how sale prices are set)."""
    value = np.asarray(value, dtype=float)
    step = _step(value)
    return np.maximum(np.floor((value + 10) / step) * step - 10, 90).astype(np.int64)


def spells(starts: np.ndarray, durations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which cells are inside a spell, and the start column of that spell (-1: none).

    ``starts`` (L, D) marks spell starts, ``durations`` (L, D) each start's length in days; a
    new start ends the previous spell."""
    days = starts.shape[1]
    column = np.arange(days)[None, :]
    last = np.maximum.accumulate(np.where(starts, column, -1), axis=1)
    length = np.take_along_axis(durations, np.clip(last, 0, None), axis=1)
    return (last >= 0) & (column - last < length), last


def at_spell_start(values: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per cell, the value drawn at its spell's start."""
    return np.take_along_axis(values, np.clip(last, 0, None), axis=1)


def lagged(path: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Each row of ``path`` delayed by its ``lag`` days (the first value held)."""
    index = np.clip(np.arange(path.shape[1])[None, :] - lag[:, None], 0, None)
    return np.take_along_axis(path, index, axis=1)
