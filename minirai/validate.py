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
        if not backend.to_bool(finite.all()):
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


# -- arguments ------------------------------------------------------------------------------------------
_REALS = (int, float, np.integer, np.floating)


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, integer: bool = False,
                 none: bool = False) -> Any:
    """``value`` as a Python int or float, or a clear error naming ``name`` and what was expected.

    Accepts NumPy scalars (``np.float32(1e-3)``), refuses bools, strings, NaN and inf, and
    checks the range ``low``..``high`` (open ends when ``low_open``/``high_open``).
    """
    if value is None and none:
        return None
    kinds = (int, np.integer) if integer else _REALS
    what = "an integer" if integer else "a number"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        raise TypeError(f"{name} must be {what}{' or None' if none else ''}, got {value!r} "
                        f"({type(value).__name__})")
    try:
        value = int(value) if integer else float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        if integer and high is None and low in (0, 1) and not low_open:
            raise ValueError(f"{name} must be a {'non-negative' if low == 0 else 'positive'} integer, got {value}")
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {value:g}")
    return value


def check_pair_of_numbers(value: Any, name: str, **limits: Any) -> tuple[float, float]:
    """A tuple or list of two numbers, each checked as :func:`check_number` does."""
    if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2 or np.ndim(value) != 1:
        raise ValueError(f"{name} must be a pair of two numbers, got {value!r}")
    return (check_number(value[0], f"{name}[0]", **limits), check_number(value[1], f"{name}[1]", **limits))


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool, or a TypeError naming ``name`` (a string or a number is not taken for a flag)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_progress(value: Any, name: str) -> Any:
    """A training loop's ``progress``: True, False, or a dict of tqdm options."""
    if not isinstance(value, (bool, np.bool_, dict)):
        raise TypeError(f"{name} must be True, False or a dict of tqdm options (desc, position, ...), "
                        f"got {value!r} ({type(value).__name__})")
    return value


def check_seed(seed: Any, name: str = "seed") -> Any:
    """A seed for NumPy's generators: None, a non-negative integer, or a ``numpy.random.Generator``."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return check_number(seed, name, low=0, integer=True)


def check_pairs(pairs: Any, owner: str) -> list[tuple[Any, Any]]:
    """An optimizer's ``[(param, grad), ...]``: a list of pairs of arrays of one shape each."""
    hint = "pass model.parameters() (or trainer.parameters()), a list of (param, grad) pairs"
    if callable(pairs) or not hasattr(pairs, "__iter__") or isinstance(pairs, (str, bytes)):
        raise TypeError(f"{owner}: expected the (param, grad) pairs to optimize, got {type(pairs).__name__}; {hint}")
    pairs = list(pairs)
    if not pairs:
        raise ValueError(f"{owner} got no parameters to optimize")
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and all(isinstance(a, np.ndarray) or backend.is_device_array(a) for a in pair)):
            raise TypeError(f"{owner}: item {i} is not a (param, grad) pair of arrays ({type(pair).__name__}); {hint}")
        p, g = pair
        if p.shape != g.shape:
            raise ValueError(f"{owner}: parameter {i} has shape {tuple(p.shape)} but its gradient {tuple(g.shape)}")
    return [(p, g) for p, g in pairs]


def check_instance(value: Any, cls: type | tuple[type, ...], name: str, hint: str = "") -> None:
    """A TypeError naming ``name`` when ``value`` is not a ``cls``."""
    if not isinstance(value, cls):
        expected = cls.__name__ if isinstance(cls, type) else " or ".join(c.__name__ for c in cls)
        raise TypeError(f"{name} must be a minirai {expected}, got {type(value).__name__}"
                        + (f"; {hint}" if hint else ""))
