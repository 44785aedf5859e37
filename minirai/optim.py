"""Optimizers: SGD (with momentum), Adam and Rprop, with PyTorch's update rules.

An optimizer takes ``(param, grad)`` pairs (``model.parameters()``) and updates each
``param`` in place from its ``grad`` when ``step()`` is called. Its state is a list of
plain dicts of arrays, one per pair (``optimizer.state[i]["step_size"]``, ...), so a
learner can look at every number it keeps.

Each rule is written once, as ``update(param, grad, state)`` for one array, in the
notation of its paper: that is what a learner reads, and what :meth:`Optimizer.step`
runs for every pair. The training loops run a faster twin of ``step`` for the three rules
here (all arrays of a packed model in one sweep, one compiled loop per rule on the CPU) that
gives the same numbers bit for bit; ``with minirai.reference():`` makes them call ``step``
instead. A learner's own optimizer class always runs its own ``step``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from . import backend
from .packing import StateLayout
from .protocol import by_name, named, settings_of
from .validate import check_number, check_pair_of_numbers, check_pairs

Array = Any


class Optimizer:
    """Base class: keeps the pairs, one state dict per pair, and the step count."""

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float) -> None:
        self.pairs = check_pairs(pairs, type(self).__name__)
        self.lr = check_number(lr, f"{type(self).__name__}: lr", low=0, low_open=True)
        self.steps = 0
        self.state: list[dict[str, Array]] = [self.init_state(p) for p, _ in self.pairs]
        # where the pairs lie side by side in one flat array (a packed model), their state does too:
        # each state[i] entry is a view of it (see minirai.packing; the fast path steps a run at once)
        self.layout = StateLayout(self.pairs, self.state)

    def hyperparameters(self) -> dict[str, Any]:
        """The settings this optimizer was made with (``lr``, ``betas``, ...): ``type(self)(pairs, **them)``
        makes one like it. By default every argument of ``__init__`` but ``pairs``, kept as an attribute
        of the same name (see :mod:`minirai.protocol`); checkpoints save them."""
        return settings_of(self, type(self).__init__, skip=("pairs",))

    def init_state(self, param: Array) -> dict[str, Array]:
        """The per-array state, before the first step."""
        return {}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        """Apply the rule to one array, in place."""
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter from its gradient."""
        self.steps += 1
        for (param, grad), state in zip(self.pairs, self.state):
            self.update(param, grad, state)

    def zero_grad(self) -> None:
        for _, g in self.pairs:
            g.fill(0)

    def __repr__(self) -> str:
        n = sum(int(p.size) for p, _ in self.pairs)
        return f"{type(self).__name__}(lr={self.lr}, {len(self.pairs)} arrays, {n} values, steps={self.steps})"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum (PyTorch's rule).

        g ← g + wd · p                        (if weight_decay)
        b ← g on the first step, then b ← μ b + g    (if momentum μ > 0)
        p ← p - lr · b                         (b = g without momentum)
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.momentum = check_number(momentum, "SGD: momentum", low=0)
        self.weight_decay = check_number(weight_decay, "SGD: weight_decay", low=0)
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
    r"""Adam (Kingma & Ba, 2015), PyTorch's rule.

    At step t = 1, 2, ...:

        m ← β1 m + (1 - β1) g              v ← β2 v + (1 - β2) g²
        m̂ = m / (1 - β1^t)                  v̂ = v / (1 - β2^t)
        p ← p - lr · m̂ / (√v̂ + ε)
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.betas = check_pair_of_numbers(betas, "Adam: betas", low=0, high=1, high_open=True)
        self.eps = check_number(eps, "Adam: eps", low=0)
        super().__init__(pairs, lr)

    def init_state(self, param: Array) -> dict[str, Array]:
        xp = backend.array_module(param)
        return {"m": xp.zeros_like(param), "v": xp.zeros_like(param)}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        """param, grad, state["m"], state["v"]: arrays of one shape; t = self.steps (from 1)."""
        xp = backend.array_module(param)
        b1, b2, t = self.betas[0], self.betas[1], self.steps
        m, v = state["m"], state["v"]
        m[...] = b1 * m + (1 - b1) * grad                          # m = β1 m + (1 - β1) g
        v[...] = b2 * v + (1 - b2) * grad * grad                   # v = β2 v + (1 - β2) g²
        # p -= lr m̂ / (√v̂ + ε) with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t), in PyTorch's order:
        denominator = xp.sqrt(v) / math.sqrt(1 - b2 ** t) + self.eps   # √v̂ + ε
        param -= self.lr / (1 - b1 ** t) * m / denominator


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

    minirai keeps the *sign* of the previous gradient (``state["prev_sign"]``: -1, 0 or +1;
    0 after a flip) and compares signs, the textbook rule. ``torch.optim.Rprop`` keeps g_prev
    and tests the product ``g · g_prev``, which underflows to 0 when both are tiny (in float32
    when |g · g_prev| < 1.4e-45, so for |g| below about 4e-23; below 1.2e-38 with the CPU's
    flush-to-zero on, so |g| below about 1e-19). There PyTorch sees "no sign information" and
    keeps Δ, where the sign rule speeds up, or slows down and skips the move. That is the one
    place where the two differ; everywhere else they give the same updates bit for bit
    (``tests/test_torch_reference.py``).
    """

    def __init__(self, pairs: Iterable[tuple[Array, Array]], lr: float = 0.01,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0)) -> None:
        self.etas = check_pair_of_numbers(etas, "Rprop: etas", low=0, low_open=True)
        if not self.etas[0] < 1 < self.etas[1]:
            raise ValueError(f"Rprop: etas must satisfy 0 < eta_minus < 1 < eta_plus, got {etas}")
        self.step_sizes = check_pair_of_numbers(step_sizes, "Rprop: step_sizes", low=0, low_open=True)
        if self.step_sizes[0] > self.step_sizes[1]:
            raise ValueError(f"Rprop: step_sizes must be (smallest, largest), got {step_sizes}")
        super().__init__(pairs, lr)

    def init_state(self, param: Array) -> dict[str, Array]:
        xp = backend.array_module(param)
        return {"prev_sign": xp.zeros_like(param), "step_size": xp.full_like(param, self.lr)}

    def update(self, param: Array, grad: Array, state: dict[str, Array]) -> None:
        """param, grad, state["prev_sign"], state["step_size"]: arrays of one shape."""
        xp = backend.array_module(param)
        eta_minus, eta_plus = self.etas
        step_min, step_max = self.step_sizes
        step = state["step_size"]
        sign = xp.sign(grad)                                      # -1, 0 or +1
        agreement = sign * state["prev_sign"]                     # +1 same sign, -1 flipped, 0 new
        step[...] = xp.where(agreement > 0, step * eta_plus,      # same sign: Δ·η+
                             xp.where(agreement < 0, step * eta_minus, step))   # flipped: Δ·η-
        step[...] = xp.clip(step, step_min, step_max)
        sign = xp.where(agreement < 0, 0, sign)                   # flipped: no move, and remember 0
        param -= sign * step                                      # p ← p - sign(g) Δ
        state["prev_sign"][...] = sign


def optimizers() -> dict[str, type[Optimizer]]:
    """Every optimizer class defined so far, by name: ``"sgd"``, ``"adam"``, ``"rprop"``, and a learner's
    own (``RMSprop`` is ``"rmsprop"``); see :mod:`minirai.protocol`."""
    return named(Optimizer)


def optimizer(name: str) -> type[Optimizer]:
    """The optimizer class called ``name`` (case and underscores do not matter), or a ValueError listing them."""
    return by_name(Optimizer, name, "optimizer")
