"""Classroom exercises for the minirai tutorials.

Replace each ``raise NotImplementedError(...)`` with your implementation (NumPy only; the
arrays you get are NumPy arrays), then check your work:

    python tutorials/check_exercises.py            # every task
    python tutorials/check_exercises.py 1.1        # one task

The checker compares your function with minirai itself: a finite-difference gradient check
(Task 1.1), the engine's optimizer (Task 1.2) and the RAI trainer (Task 2.1). A task you
have not started is reported as NOT DONE, a wrong answer as FAIL with a hint.

Task 1.1 and 1.2 go with chapter 1 (``01_backprop_by_hand.py``), Task 2.1 with chapter 3
(``03_relaxed_activation_identity.py``). Reference solutions are in ``solutions.py``: try
first!
"""
from __future__ import annotations

import numpy as np


def tanh_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Task 1.1: the backward pass of a Tanh layer, from its cached output.

    The forward pass computed ``y = tanh(x)`` elementwise and kept ``y``. Given the upstream
    gradient ``dy = dL/dy``, return ``dx = dL/dx``.

    Math:  d tanh(x) / dx = 1 - tanh(x)²,  so by the chain rule, entry by entry,

        dx = dy · (1 - y²)

    Shapes: ``y`` (N, D), ``dy`` (N, D); returns ``dx`` (N, D), a new array (do not modify
    ``y`` or ``dy``).
    """
    raise NotImplementedError("Task 1.1")


def sgd_momentum_update(param: np.ndarray, grad: np.ndarray, buf: np.ndarray, lr: float,
                        momentum: float, first_step: bool) -> None:
    """Task 1.2: one step of SGD with momentum for one parameter array (PyTorch's rule).

    Math, with g = ``grad``, b = ``buf`` (the momentum buffer), μ = ``momentum``:

        b ← g             on the first step (``first_step`` is True)
        b ← μ · b + g     on every later step
        p ← p - lr · b

    Shapes: ``param``, ``grad`` and ``buf`` all have the same shape (any shape).
    ``buf`` holds the buffer of the previous step; on the first step its contents are
    meaningless (the checker fills it with garbage) and must be overwritten.
    Update ``param`` and ``buf`` *in place* (``param -= ...``, ``buf[...] = ...``): an
    optimizer holds references to these arrays, so rebinding the name (``param = param -
    ...``) would change nothing outside the function. Return None; leave ``grad`` unchanged.
    """
    raise NotImplementedError("Task 1.2")


def rai_table_gradient(X: np.ndarray, Z: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                       W2: np.ndarray, b2: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Task 2.1: the two parts of a table's gradient in a 2-block RAI chain.

    The chain ``Linear(W1, b1) → Tanh → Linear(W2, b2) → Sigmoid`` is cut after the Tanh.
    Block 0 reads the inputs, block 1 reads the table ``Z`` (one row per example):

        o = tanh(X @ W1 + b1)          block 0's output                     (N, H)
        p = σ(Z @ W2 + b2)             block 1's output, σ(a) = 1/(1+e^-a)  (N, 1)

    The relaxed objective, with BCE as output loss and MSE as hidden loss:

        L = BCE(p, y) + λ · MSE(o, Z)
        BCE(p, y) = -(1/N) Σ_i [ y_i log p_i + (1 - y_i) log(1 - p_i) ]
        MSE(o, Z) = (1/(N·H)) Σ_{i,j} (o_ij - Z_ij)²

    ``Z`` appears twice, so dL/dZ has two parts. Return them as a pair:

        as_input  = ∂BCE(p, y)/∂Z        (Z as block 1's input)                 (N, H)
        as_target = λ · ∂MSE(o, Z)/∂Z    (Z as the target of block 0's output)  (N, H)

    Their sum is dL/dZ. Hint: with a = Z @ W2 + b2, ∂BCE/∂p · σ'(a) simplifies a lot,
    because σ'(a) = p (1 - p).

    Shapes: ``X`` (N, D), ``Z`` (N, H), ``y`` (N, 1) with values 0 or 1, ``W1`` (D, H),
    ``b1`` (H,), ``W2`` (H, 1), ``b2`` (1,); ``lam`` a float.
    """
    raise NotImplementedError("Task 2.1")
