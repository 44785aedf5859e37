"""The fast twin of ``Optimizer.step``: packed runs, fused kernels, cache-sized chunks.

``Optimizer.step`` (the textbook path) calls ``update(param, grad, state)`` once per array:
a deep net has 202 of them, each a handful of NumPy passes. Every built-in rule is
elementwise, so the same rule can run over many arrays at once if they lie side by side:

* **runs.** A packed model's parameters (``mlp`` packs, see :mod:`minirai.packing`) are views
  of one flat array. At its first fast step, :func:`runs_of` finds the runs of adjacent pairs
  (:func:`contiguous_runs`) and gives each run one flat state array, of which each
  ``optimizer.state[i]`` entry becomes a view: the state still reads per array, with the same
  values. Each step checks that those views are still the state's entries (a learner may have
  replaced one), and lays the state out again if not.
* **fused kernels.** On the CPU, Adam's and Rprop's ``update`` over a run is one compiled loop
  (:mod:`minirai.fast.kernels`) instead of ten passes.
* **chunks.** Where no kernel runs (SGD, no Numba), a large run is updated in 64K-entry
  chunks that stay in the processor's cache.

Every path gives ``Optimizer.step``'s numbers bit for bit (the rule is elementwise, and the
kernels do its arithmetic in its order and dtype). Optimizers of other classes, subclasses of
the built-in ones included (a learner's own rule, which may not be elementwise), always take
their own ``step`` and ``update``.
"""
from __future__ import annotations

import math
import weakref
from typing import Any, Iterable

import numpy as np

from .. import backend
from ..optim import SGD, Adam, Optimizer, Rprop
from . import kernels

Array = Any
Run = tuple[list[int], Array, Array, dict[str, Array]]   # (pair indices, params, grads, state)

#: entries per chunk on the CPU (64K float32 = 256 KB: in L2 cache with room to spare)
CHUNK_SIZE = 65536


class Layout:
    """An optimizer's runs, and the state views they handed out (to notice a replaced entry)."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.pairs = [(id(p), id(g)) for p, g in optimizer.pairs]
        self.runs = lay_out_state(optimizer)
        self.views = [(i, key, optimizer.state[i][key]) for members, *_ in self.runs if len(members) > 1
                      for i in members for key in optimizer.state[i]]

    def current(self, optimizer: Optimizer) -> bool:
        return (self.pairs == [(id(p), id(g)) for p, g in optimizer.pairs]
                and all(optimizer.state[i].get(key) is view for i, key, view in self.views))


_layouts: "weakref.WeakKeyDictionary[Optimizer, Layout]" = weakref.WeakKeyDictionary()


def runs_of(optimizer: Optimizer) -> list[Run]:
    """The optimizer's runs (laid out at the first call, and again if its state was replaced);
    empty for a class without a fast twin."""
    if type(optimizer) not in FAST_UPDATES:
        return []
    layout = _layouts.get(optimizer)
    if layout is None or not layout.current(optimizer):
        layout = _layouts[optimizer] = Layout(optimizer)
    return layout.runs


def lay_out_state(optimizer: Optimizer) -> list[Run]:
    """Find the optimizer's runs and move each run's state into flat arrays (state[i] entries become
    views, with the same values)."""
    runs = []
    for members, params, grads in contiguous_runs(optimizer.pairs):
        if len(members) == 1:
            runs.append((members, params, grads, optimizer.state[members[0]]))
            continue
        xp = backend.array_module(params)
        first = optimizer.state[members[0]]
        if any(optimizer.state[i].keys() != first.keys()
               or any(tuple(v.shape) != tuple(optimizer.pairs[i][0].shape) or v.dtype != first[k].dtype
                      for k, v in optimizer.state[i].items()) for i in members):
            runs += [([i], *optimizer.pairs[i], optimizer.state[i]) for i in members]   # state of another shape
            continue
        flat_state = {key: xp.empty(params.shape, value.dtype) for key, value in first.items()}
        offset = 0
        for i in members:
            size = optimizer.pairs[i][0].size
            for key, flat in flat_state.items():
                view = flat[offset:offset + size].reshape(optimizer.state[i][key].shape)
                view[...] = optimizer.state[i][key]
                optimizer.state[i][key] = view
            offset += size
        runs.append((members, params, grads, flat_state))
    return runs


def step(optimizer: Optimizer) -> None:
    """``optimizer.step()``, fast: one update per run, compiled where a kernel exists."""
    if type(optimizer) not in FAST_UPDATES:
        optimizer.step()
        return
    optimizer.steps += 1
    update_runs(optimizer, runs_of(optimizer))


def update_pairs(optimizer: Optimizer, indices: Iterable[int]) -> None:
    """The rule on pairs ``indices`` only, at the optimizer's current step count (no step is counted):
    whole runs where a run lies inside them, ``update`` per pair elsewhere."""
    chosen = set(indices)
    runs = [run for run in runs_of(optimizer) if set(run[0]) <= chosen]
    update_runs(optimizer, runs)
    covered = {i for run in runs for i in run[0]}
    for i in sorted(chosen - covered):
        optimizer.update(*optimizer.pairs[i], optimizer.state[i])


def update_runs(optimizer: Optimizer, runs: list[Run]) -> None:
    """Apply a built-in optimizer's rule to ``runs`` (some of :func:`runs_of`) at its current step."""
    if not runs:
        return
    fused_update = FAST_UPDATES[type(optimizer)]
    for _, params, grads, state in runs:
        if fused_update is not None and kernels.ready(params, grads, *state.values()):
            fused_update(optimizer, params.reshape(-1), grads.reshape(-1),
                         {k: v.reshape(-1) for k, v in state.items()})
        elif params.size > CHUNK_SIZE and type(params) is np.ndarray and _contiguous(params, grads, state):
            flat_state = {k: v.reshape(-1) for k, v in state.items()}
            for start in range(0, params.size, CHUNK_SIZE):
                part = slice(start, start + CHUNK_SIZE)
                optimizer.update(params.reshape(-1)[part], grads.reshape(-1)[part],
                                 {k: v[part] for k, v in flat_state.items()})
        else:
            optimizer.update(params, grads, state)


def rprop_kernel(optimizer: Any, param: Array, grad: Array, state: dict[str, Array]) -> None:
    real = param.dtype.type         # the scalars as NumPy converts them in Rprop.update
    eta_minus, eta_plus = optimizer.etas
    kernels.kernels()["rprop"](param, grad, state["prev_sign"], state["step_size"], real(eta_minus),
                               real(eta_plus), real(optimizer.step_sizes[0]), real(optimizer.step_sizes[1]))


def adam_kernel(optimizer: Any, param: Array, grad: Array, state: dict[str, Array]) -> None:
    real = param.dtype.type         # the scalars as NumPy converts them in Adam.update
    (b1, b2), t = optimizer.betas, optimizer.steps
    kernels.kernels()["adam"](param, grad, state["m"], state["v"], real(b1), real(1 - b1), real(b2),
                              real(1 - b2), real(math.sqrt(1 - b2 ** t)), real(optimizer.eps),
                              real(optimizer.lr / (1 - b1 ** t)))


#: the built-in rules (all elementwise) and their compiled kernels (None: chunked NumPy)
FAST_UPDATES = {SGD: None, Adam: adam_kernel, Rprop: rprop_kernel}


def contiguous_runs(pairs: list[tuple[Array, Array]]) -> list[tuple[list[int], Array, Array]]:
    """Group the pairs that lie side by side in one flat array (in memory order).

    Returns ``(members, params, grads)`` per run: the indices of its pairs, in memory order,
    and one flat view over their parameters and over their gradients (the pair itself for a
    run of one).
    """
    located = {i: _flat_offset(p, g) for i, (p, g) in enumerate(pairs)}
    alone = [i for i, offset in located.items() if offset is None]
    by_memory = sorted((i for i in located if located[i] is not None),
                       key=lambda i: (id(pairs[i][0].base), located[i]))
    runs: list[tuple[list[int], Array, Array]] = []
    members: list[int] = []

    def close() -> None:
        if len(members) == 1:
            alone.append(members[0])
        elif members:
            p0, g0 = pairs[members[0]]
            start, end = located[members[0]], located[members[-1]] + pairs[members[-1]][0].size
            runs.append((list(members), p0.base[start:end], g0.base[start:end]))
        members.clear()

    for i in by_memory:
        if members:
            last = members[-1]
            p, g = pairs[i]
            follows = (p.base is pairs[last][0].base and g.base is pairs[last][1].base
                       and located[i] == located[last] + pairs[last][0].size)
            if not follows:
                close()
        members.append(i)
    close()
    runs += [([i], pairs[i][0], pairs[i][1]) for i in sorted(alone)]
    return runs


def _flat_offset(p: Array, g: Array) -> int | None:
    """Where ``p`` starts in its 1-D base (the same offset for ``g`` in its base), else None."""
    bases = (getattr(p, "base", None), getattr(g, "base", None))
    if any(b is None or b.ndim != 1 or not b.flags.c_contiguous for b in bases):
        return None
    if not (p.flags.c_contiguous and g.flags.c_contiguous):
        return None
    pointers = [backend.data_pointer(a) for a in (p, bases[0], g, bases[1])]
    if None in pointers:
        return None
    offset, remainder = divmod(pointers[0] - pointers[1], p.itemsize)
    if remainder or (pointers[2] - pointers[3]) != offset * g.itemsize:
        return None
    return offset


def _contiguous(params: Array, grads: Array, state: dict[str, Array]) -> bool:
    return all(a.flags.c_contiguous for a in (params, grads, *state.values()))
