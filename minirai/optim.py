"""Optimizers: SGD (with momentum), Adam and Rprop, with PyTorch's update rules.

An optimizer takes ``(param, grad)`` pairs (``model.parameters()``) and updates each
``param`` in place from its ``grad`` when ``step()`` is called. Its state is a list of
plain dicts of arrays, one per pair (``optimizer.state[i]["step_size"]``, ...), so a
learner can look at every number it keeps.

Each rule is written once, as ``update(param, grad, state)`` for one array: that is
what a learner reads, and what :meth:`Optimizer.step` runs for every pair. Every rule is
elementwise, so on the CPU a large array (say all of a packed model's parameters, see
:meth:`minirai.network.Sequential.pack`) is updated in chunks that fit in the processor's
cache: the same arithmetic, several times faster than passes over megabytes.

Faster still, Adam and Rprop have a *fused* twin of ``update`` (:mod:`minirai.fused`): the
same arithmetic compiled into one loop, which the CPU runs when Numba is installed. It gives
the same numbers bit for bit; ``optimizer.fused = False`` runs the NumPy ``update`` instead.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from . import backend, fused

Array = Any


class Optimizer:
    """Base class: keeps the pairs, one state dict per pair, and the step count."""

    #: entries per chunk on the CPU (64K float32 = 256 KB: in L2 cache with room to spare)
    chunk_size = 65536

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float) -> None:
        self.pairs = [(p, g) for p, g in pairs]
        if not self.pairs:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize")
        for i, (p, g) in enumerate(self.pairs):
            if p.shape != g.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape {tuple(p.shape)} "
                                 f"but its gradient {tuple(g.shape)}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"{type(self).__name__}: lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0
        #: on the CPU, run the compiled twin of ``update`` (see minirai.fused) where there is one
        self.fused = fused.enabled()
        # Pairs that are views side by side in one flat array (a packed model) form a *run*,
        # updated as one array; each pair's state is a view of its run's state.
        self.runs = contiguous_runs(self.pairs)
        self.run_state = [self.init_state(params) for _, params, _ in self.runs]
        self.state: list[dict[str, Array]] = [{} for _ in self.pairs]
        for (members, _, _), run_state in zip(self.runs, self.run_state):
            offset = 0
            for i in members:
                p = self.pairs[i][0]
                self.state[i] = {k: v.reshape(-1)[offset:offset + p.size].reshape(p.shape)
                                 for k, v in run_state.items()}
                offset += p.size

    def init_state(self, param: Array) -> dict[str, Array]:
        return {}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        """Apply the rule to one array, in place."""
        raise NotImplementedError

    def fused_update(self, param: Array, grad: Array, state: dict[str, Array]) -> bool:
        """``update`` as one compiled loop (minirai.fused); False where it cannot run."""
        return False

    def step(self) -> None:
        """Update every parameter from its gradient."""
        self.steps += 1
        for (_, params, grads), state in zip(self.runs, self.run_state):
            if self.fused and fused.usable(params, grads, *state.values()) \
                    and self.fused_update(params, grads, state):
                continue
            if params.size <= self.chunk_size or backend.array_module(params) is not np \
                    or not _contiguous(params, grads, state):
                self.update(params, grads, state)
                continue
            flat_state = {k: v.reshape(-1) for k, v in state.items()}
            for start in range(0, params.size, self.chunk_size):
                part = slice(start, start + self.chunk_size)
                self.update(params.reshape(-1)[part], grads.reshape(-1)[part],
                            {k: v[part] for k, v in flat_state.items()})

    def zero_grad(self) -> None:
        for _, g in self.pairs:
            g.fill(0)

    def __repr__(self) -> str:
        n = sum(int(p.size) for p, _ in self.pairs)
        return (f"{type(self).__name__}(lr={self.lr}, {len(self.pairs)} arrays in {len(self.runs)} runs, "
                f"{n} values, steps={self.steps})")


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


def _contiguous(*arrays: Any) -> bool:
    flat = [a for a in arrays if not isinstance(a, dict)] + [v for a in arrays if isinstance(a, dict)
                                                              for v in a.values()]
    return all(a.flags.c_contiguous for a in flat)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (PyTorch's rule).

        g ← g + wd · p                        (if weight_decay)
        b ← g on the first step, then b ← μ b + g    (if momentum μ > 0)
        p ← p - lr · b                         (b = g without momentum)
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        if momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        super().__init__(pairs, lr)

    def init_state(self, param: Array) -> dict[str, Array]:
        xp = backend.array_module(param)
        return {"momentum_buffer": xp.zeros_like(param)} if self.momentum else {}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state["momentum_buffer"]
            if self.steps == 1:
                buf[...] = grad
            else:
                buf *= self.momentum
                buf += grad
            grad = buf
        param -= self.lr * grad


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's rule, at step t = 1, 2, ...:

        m ← β1 m + (1 - β1) g              v ← β2 v + (1 - β2) g²
        m̂ = m / (1 - β1^t)                  v̂ = v / (1 - β2^t)
        p ← p - lr · m̂ / (√v̂ + ε)
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.betas, self.eps = (float(betas[0]), float(betas[1])), float(eps)
        super().__init__(pairs, lr)

    def init_state(self, param: Array) -> dict[str, Array]:
        xp = backend.array_module(param)
        return {"m": xp.zeros_like(param), "v": xp.zeros_like(param)}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        xp = backend.array_module(param)
        b1, b2 = self.betas
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * grad                      # m = β1 m + (1 - β1) g
        v *= b2
        v += (1 - b2) * grad * grad               # v = β2 v + (1 - β2) g²
        # p -= lr m̂ / (√v̂ + ε) with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t)
        denominator = xp.sqrt(v)
        denominator *= 1 / (1 - b2 ** self.steps) ** 0.5
        denominator += self.eps
        xp.divide(m, denominator, out=denominator)
        denominator *= self.lr / (1 - b1 ** self.steps)
        param -= denominator

    def fused_update(self, param: Array, grad: Array, state: dict[str, Array]) -> bool:
        kernel = fused.kernels()["adam"]
        b1, b2 = self.betas
        real = param.dtype.type         # the scalars NumPy would use in update(), in the arrays' dtype
        kernel(param.reshape(-1), grad.reshape(-1), state["m"].reshape(-1), state["v"].reshape(-1),
               real(b1), real(1 - b1), real(b2), real(1 - b2), real(1 / (1 - b2 ** self.steps) ** 0.5),
               real(self.eps), real(self.lr / (1 - b1 ** self.steps)))
        return True


class Rprop(Optimizer):
    r"""Resilient backprop (Riedmiller & Braun, 1993) with PyTorch's semantics.

    Each value has its own step size Δ (initially ``lr``) and remembers the sign of its
    previous gradient:

        s = sign(g) · sign(g_prev)
        Δ ← clip(Δ · η+, Δmin, Δmax)  where s > 0    (same direction: speed up)
        Δ ← clip(Δ · η-, Δmin, Δmax)  where s < 0    (overshot: slow down ...)
        g ← 0                         where s < 0    (... and skip this update)
        p ← p - sign(g) · Δ
        g_prev ← g

    Defaults: η- = 0.5, η+ = 1.2, Δ in [1e-6, 50]. Only gradient signs matter, which is
    why Rprop moves even the tiny gradients of a deep sigmoid net (if they are not exactly 0).

    PyTorch keeps g_prev itself and tests ``g · g_prev``; minirai keeps only its sign
    (``state["prev_sign"]``: -1, 0 or +1; 0 after a flip), which gives the same updates
    without multiplying two tiny gradients: their product underflows into subnormal
    numbers, which CPUs process ~50x slower (it made a deep RAI step 2x slower).
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 0.01,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0)) -> None:
        if not (0 < etas[0] < 1 < etas[1]):
            raise ValueError(f"Rprop: etas must satisfy 0 < eta_minus < 1 < eta_plus, got {etas}")
        self.etas = (float(etas[0]), float(etas[1]))
        self.step_sizes = (float(step_sizes[0]), float(step_sizes[1]))
        super().__init__(pairs, lr)

    def init_state(self, param: Array) -> dict[str, Array]:
        xp = backend.array_module(param)
        return {"prev_sign": xp.zeros_like(param), "step_size": xp.full_like(param, self.lr)}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        xp = backend.array_module(param)
        eta_minus, eta_plus = self.etas
        prev_sign, step = state["prev_sign"], state["step_size"]
        direction = xp.sign(grad)                                 # -1, 0 or +1
        agreement = direction * prev_sign                         # +1 same sign, -1 flipped, 0 new
        # Δ ← Δ·η+ where agreement = +1, Δ·η- where -1, unchanged where 0, written as arithmetic
        # on 0/1 masks: masked writes with random masks are ~30x slower than a plain pass.
        real = step.dtype.type                                    # scalars of the arrays' dtype
        factor = (agreement > 0) * real(eta_plus - 1.0)           # η+ - 1 where same sign
        factor += real(1.0)
        factor -= (agreement < 0) * real(1.0 - eta_minus)         # η- where flipped (exactly 0.5)
        step *= factor
        xp.clip(step, *self.step_sizes, out=step)
        direction *= agreement >= 0                               # a flip: no move, and remember 0
        prev_sign[...] = direction
        direction *= step
        param -= direction                                        # p ← p - sign(g) Δ

    def fused_update(self, param: Array, grad: Array, state: dict[str, Array]) -> bool:
        kernel = fused.kernels()["rprop"]
        eta_minus, eta_plus = self.etas
        real = param.dtype.type         # the scalars NumPy would use in update(), in the arrays' dtype
        kernel(param.reshape(-1), grad.reshape(-1), state["prev_sign"].reshape(-1), state["step_size"].reshape(-1),
               real(eta_plus - 1.0), real(1.0 - eta_minus), real(self.step_sizes[0]), real(self.step_sizes[1]))
        return True


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rprop": Rprop}
