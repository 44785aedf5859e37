"""The datasets of a study, by name and options, and the grid its 2-D boundaries are drawn on
(shared by :mod:`~minirai.research.study`, which trains on them, and :mod:`~minirai.research.report`,
which draws them)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import data

GRID = 100                  # points per axis of the 2-D grid on which boundaries are compared


def load_dataset(name: str, options: dict[str, Any]) -> data.Dataset:
    try:
        return data.load(name, **options)
    except TypeError as error:
        raise ValueError(f"[data.{name}]: {error}") from None


def grid_points(X: np.ndarray, n: int = GRID) -> np.ndarray:
    """An n x n grid over the training inputs' range (with a 10% margin), as (n², 2)."""
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * (high - low)
    axes = [np.linspace(low[k] - margin[k], high[k] + margin[k], n) for k in range(2)]
    return np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, 2)
