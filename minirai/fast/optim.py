"""The fast twin of ``Optimizer.step``: packed runs, fused kernels, cache-sized chunks.

``Optimizer.step`` (the textbook path) calls ``update(param, grad, state)`` once per array:
a deep net has 202 of them, each a handful of NumPy passes. Every built-in rule is
elementwise, so the same rule can run over many arrays at once if they lie side by side:

* **runs.** A packed model's parameters (``mlp`` packs) are views of one flat array, and an
  optimizer made on them keeps its state the same way (:class:`minirai.packing.StateLayout`:
  each ``optimizer.state[i]`` entry is a view of one flat array per run of adjacent pairs, so
  the state still reads per array). :func:`runs_of` hands those runs to the fast step, after
  checking that they are still the optimizer's state (a learner may have replaced an entry).
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
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, Callable, Iterable

import numpy as np

from ..optim import SGD, Adam, Optimizer, Rprop
from ..packing import Run, StateLayout
from . import kernels
from .workers import run_all

Array = Any

#: entries per chunk on the CPU (64K float32 = 256 KB: in L2 cache with room to spare)
CHUNK_SIZE = 65536


def runs_of(optimizer: Optimizer) -> list[Run]:
    """The optimizer's runs (:class:`minirai.packing.StateLayout`, made with the optimizer), laid out
    again if a learner replaced a state entry or a pair since; empty for a class without a fast twin."""
    if type(optimizer) not in FAST_UPDATES:
        return []
    if not optimizer.layout.current(optimizer.pairs, optimizer.state):
        optimizer.layout = StateLayout(optimizer.pairs, optimizer.state)
    return optimizer.layout.runs


def step(optimizer: Optimizer, workers: int = 1,
         arithmetic: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
    """``optimizer.step()``, fast: one update per run, compiled where a kernel exists; with ``workers``
    threads, the runs (cut into pieces: the rule is elementwise) are updated side by side."""
    if type(optimizer) not in FAST_UPDATES:
        optimizer.step()
        return
    optimizer.steps += 1
    update_runs(optimizer, runs_of(optimizer), workers, arithmetic)


def update_pairs(optimizer: Optimizer, indices: Iterable[int], workers: int = 1,
                 arithmetic: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
    """The rule on pairs ``indices`` only, at the optimizer's current step count (no step is counted):
    whole runs where a run lies inside them, ``update`` per pair elsewhere."""
    chosen = set(indices)
    runs = [run for run in runs_of(optimizer) if set(run[0]) <= chosen]
    update_runs(optimizer, runs, workers, arithmetic)
    covered = {i for run in runs for i in run[0]}
    for i in sorted(chosen - covered):
        optimizer.update(*optimizer.pairs[i], optimizer.state[i])


def update_runs(optimizer: Optimizer, runs: list[Run], workers: int = 1,
                arithmetic: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
    """Apply a built-in optimizer's rule to ``runs`` (some of :func:`runs_of`) at its current step."""
    if not runs:
        return
    if workers > 1:
        pieces = [piece for run in runs for piece in cut(run, workers)]
        run_all([(partial(update_run, optimizer, piece), float(piece[1].size)) for piece in pieces],
                workers, arithmetic)
        return
    for run in runs:
        update_run(optimizer, run)


def cut(run: Run, parts: int) -> list[Run]:
    """A run of a flat, C-contiguous NumPy array cut into ``parts`` consecutive pieces (the rule is
    elementwise, so each piece is updated as in the whole); another run stays whole."""
    members, params, grads, state = run
    if params.size < 2 * CHUNK_SIZE or type(params) is not np.ndarray or not _contiguous(params, grads, state):
        return [run]
    flat = [params.reshape(-1), grads.reshape(-1), {k: v.reshape(-1) for k, v in state.items()}]
    bounds = [params.size * k // parts for k in range(parts + 1)]
    return [(members, flat[0][a:b], flat[1][a:b], {k: v[a:b] for k, v in flat[2].items()})
            for a, b in zip(bounds[:-1], bounds[1:])]


def update_run(optimizer: Optimizer, run: Run) -> None:
    """The rule on one run: the compiled kernel, NumPy in cache-sized chunks, or ``update`` as it is."""
    _, params, grads, state = run
    fused_update = FAST_UPDATES[type(optimizer)]
    if fused_update is not None and kernels.ready(params, grads, *state.values()):
        fused_update(optimizer, params.reshape(-1), grads.reshape(-1), {k: v.reshape(-1) for k, v in state.items()})
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


def _contiguous(params: Array, grads: Array, state: dict[str, Array]) -> bool:
    return all(a.flags.c_contiguous for a in (params, grads, *state.values()))
