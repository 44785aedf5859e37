"""Checks at the boundary: bad input is a clear error before any arithmetic.

Each message names the thing, what was expected and what was found, so a learner
sees "X has 3 columns, the network expects 2" instead of a traceback from inside
NumPy's matmul.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend

Array = Any


def check_array(a: Any, name: str, *, ndim: int | tuple[int, ...] | None = None,
                allow_int: bool = False) -> None:
    """Raise TypeError/ValueError unless ``a`` is a non-empty, finite, real numeric array.

    ``allow_int`` accepts integer (label) arrays; float arrays are always accepted.
    """
    if not (isinstance(a, np.ndarray) or backend.is_device_array(a)):
        raise TypeError(f"{name} must be a NumPy or CuPy array, got {type(a).__name__}; "
                        "convert it with numpy.asarray first")
    kind = a.dtype.kind
    if kind not in ("f", "i", "u") or (kind in ("i", "u") and not allow_int):
        expected = "a float or integer array" if allow_int else "a float array (float32 or float64)"
        raise TypeError(f"{name} must be {expected}, got dtype {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {tuple(a.shape)}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)})")
    if kind == "f":
        xp = backend.array_module(a)
        finite = xp.isfinite(a)
        if not bool(finite.all()):
            bad = backend.to_numpy(~finite)
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            value = backend.to_numpy(a)[where]
            raise ValueError(f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
                             f"the first is {value} at index {where}")


def check_inputs(X: Any, n_features: int | None, name: str = "X") -> None:
    """X must be a finite float matrix (N, n_features)."""
    check_array(X, name, ndim=2)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} columns (shape {tuple(X.shape)}), "
                         f"but the network's first layer expects {n_features}")


def check_targets(y: Any, n_rows: int, name: str = "y") -> None:
    """y must be a finite array with one row per example of X."""
    check_array(y, name, allow_int=True, ndim=(1, 2))
    if y.shape[0] != n_rows:
        raise ValueError(f"{name} has {y.shape[0]} rows but X has {n_rows}; "
                         "they must have one row per example")


def check_same_dtype(expected: np.dtype, a: Any, name: str) -> None:
    """Floating inputs must match the network's dtype (no silent float64 upcasts)."""
    if a.dtype != expected:
        raise TypeError(f"{name} has dtype {a.dtype} but the network's parameters are {expected}; "
                        f"convert it with .astype({str(expected)!r})")
