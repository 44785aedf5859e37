"""Gradient checks by central finite differences (float64).

For every entry θ_k of every checked array:

    numeric_k = (f(θ + ε e_k) - f(θ - ε e_k)) / (2 ε)            error O(ε²)

and the relative error against the analytic gradient a_k is

    rel_k = |a_k - numeric_k| / max(|a_k|, |numeric_k|, floor)

Central differences carry an absolute rounding noise of about 10·u·|f|/ε (u = 2.2e-16,
float64's rounding unit) whatever the size of the entry. An error below that noise cannot
be told from rounding, so the floor is ``noise / tol``: a tiny entry is judged against
the noise, not against its own size (a correct 1e-10 entry off by 5e-13 is no false
alarm, while 1e-7 computed as 2e-7 still fails by orders of magnitude).

Layers and chains are checked through the scalar ``f = Σ y ⊙ G`` with a *random*
upstream gradient ``G`` (with ones, a wrong transpose can hide), and the input
gradient is checked as well as every parameter gradient (a wrong ``dx`` hides when
nothing downstream uses it).

On failure a table shows, per array, the worst relative error and where it occurred.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import backend
from .layers import Layer
from .losses import Loss
from .network import Sequential
from .validate import check_array, check_bool, check_instance, check_number, check_seed

Array = Any


@dataclass
class GradcheckRow:
    """The worst entry of one checked array."""
    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    index: tuple[int, ...]
    analytic: float
    numeric: float


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


@dataclass
class GradcheckResult:
    rows: list[GradcheckRow]
    tol: float

    @property
    def max_rel_error(self) -> float:
        return max((r.max_rel_error for r in self.rows), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tol

    def __bool__(self) -> bool:
        return self.ok

    def table(self) -> str:
        head = f"{'array':<24} {'shape':<14} {'max rel err':>12} {'at index':<14} {'analytic':>13} {'numeric':>13}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            flag = "  <-- FAIL" if r.max_rel_error > self.tol else ""
            lines.append(f"{r.name:<24} {str(r.shape):<14} {r.max_rel_error:>12.3e} {str(r.index):<14} "
                         f"{r.analytic:>13.6g} {r.numeric:>13.6g}{flag}")
        return "\n".join(lines)


def numeric_gradient(f: Callable[[], float], array: Array, eps: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every entry of ``array``.

    ``array`` is perturbed in place and restored; ``f`` must read it. Returns a NumPy array.
    """
    grad = np.zeros(array.shape)
    for index in np.ndindex(*array.shape):
        original = backend.to_float(array[index])
        array[index] = original + eps
        f_plus = f()
        array[index] = original - eps
        f_minus = f()
        array[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def compare(name: str, analytic: Array, numeric: np.ndarray, floor: float = 1e-10) -> GradcheckRow:
    a = backend.to_numpy(analytic).astype(np.float64)
    if a.shape != numeric.shape:
        raise GradcheckError(f"{name}: analytic gradient has shape {a.shape}, expected {numeric.shape}")
    rel = np.abs(a - numeric) / np.maximum(np.maximum(np.abs(a), np.abs(numeric)), floor)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else ()
    return GradcheckRow(name, tuple(a.shape), float(rel[worst]) if rel.size else 0.0,
                        tuple(int(i) for i in worst), float(a[worst]), float(numeric[worst]))


def check_float64(arrays: dict[str, Array]) -> None:
    for name, a in arrays.items():
        if a.dtype != np.float64:
            raise TypeError(f"gradcheck needs float64 arrays (float32 differences are noise); "
                            f"{name} is {a.dtype}")


def check_gradients(f: Callable[[], float], arrays: dict[str, Array], analytic: dict[str, Array], *,
                    eps: float = 1e-5, tol: float = 1e-6, raise_on_failure: bool = True,
                    verbose: bool = True) -> GradcheckResult:
    """Compare ``analytic[name]`` with central differences of ``f`` w.r.t. ``arrays[name]``.

    The general tool behind :func:`gradcheck`; RAI uses it for the relaxed objective.
    """
    check_float64(arrays)
    noise = 10 * np.finfo(np.float64).eps * abs(f()) / eps     # rounding noise of one difference
    floor = max(1e-10, noise / tol)
    rows = [compare(name, analytic[name], numeric_gradient(f, arrays[name], eps), floor) for name in arrays]
    result = GradcheckResult(rows, tol)
    if not result.ok:
        message = f"gradient check failed (tolerance {tol:g}):\n{result.table()}"
        if verbose:
            print(message)
        if raise_on_failure:
            raise GradcheckError(message)
    return result


def gradcheck(module: Layer | Sequential | Loss, x: Array, target: Array | None = None, *,
              eps: float = 1e-5, tol: float = 1e-6, seed: int = 0, raise_on_failure: bool = True,
              verbose: bool = True) -> GradcheckResult:
    """Check a layer, a Sequential or a loss against finite differences (float64).

    * Layer / Sequential: ``f = Σ module.forward(x) ⊙ G`` with random ``G``; checks dL/dx
      (``"x"``) and every parameter gradient.
    * Loss: ``f = loss.forward(x, target)``; checks d/dpred (``"pred"``) and, when the loss
      provides it (``grad_target``), d/dtarget (``"target"``).

    Returns a :class:`GradcheckResult`; on failure prints its table and raises
    :class:`GradcheckError` (unless ``raise_on_failure=False``).
    """
    check_instance(module, (Layer, Sequential, Loss), "gradcheck: module")
    check_array(x, "gradcheck: x", ndim=None)
    eps = check_number(eps, "gradcheck: eps", low=0, low_open=True)
    tol = check_number(tol, "gradcheck: tol", low=0, low_open=True)
    check_seed(seed, "gradcheck: seed")
    raise_on_failure = check_bool(raise_on_failure, "gradcheck: raise_on_failure")
    verbose = check_bool(verbose, "gradcheck: verbose")
    if isinstance(module, Loss):
        if target is None:
            raise ValueError("gradcheck of a loss needs a target")
        check_array(target, "gradcheck: target", allow_int=True)
        check_float64({"pred": x, **({"target": target} if target.dtype.kind == "f" else {})})
        module.forward(x, target)
        analytic = {"pred": module.backward().copy()}
        arrays = {"pred": x}
        if module.grad_target is not None and target.dtype == np.float64:
            analytic["target"] = module.grad_target.reshape(target.shape).copy()
            arrays["target"] = target

        def f() -> float:
            return backend.to_float(module.forward(x, target))
        return check_gradients(f, arrays, analytic, eps=eps, tol=tol,
                               raise_on_failure=raise_on_failure, verbose=verbose)

    if target is not None:
        raise ValueError("gradcheck: target is for a loss; a layer or chain is checked on x alone")
    params = module.params if isinstance(module, Layer) else {name: p for name, p, _ in module.named_parameters()}
    check_float64({"x": x, **params})         # before anything runs: a refused check changes nothing
    width = module.in_features
    if width is not None and (x.ndim != 2 or x.shape[1] != width):
        raise ValueError(f"gradcheck: x must have shape (N, {width}) for this {type(module).__name__}, "
                         f"got {tuple(x.shape)}")
    xp = backend.array_module(x)
    y = module.forward(x)
    upstream = backend.to_device(np.random.default_rng(seed).standard_normal(y.shape), xp)
    dx = module.backward(upstream)
    named = ([(f"0.{k}", layer_p, layer_g) for k, layer_p, layer_g in
              ((k, module.params[k], module.grads[k]) for k in module.params)]
             if isinstance(module, Layer) else module.named_parameters())
    arrays = {"x": x, **{name: p for name, p, _ in named}}
    analytic = {"x": dx.copy(), **{name: g.copy() for name, _, g in named}}

    def f() -> float:
        return backend.to_float((module.forward(x) * upstream).sum())
    return check_gradients(f, arrays, analytic, eps=eps, tol=tol,
                           raise_on_failure=raise_on_failure, verbose=verbose)
