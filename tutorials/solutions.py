"""Reference solutions to ``exercises.py`` (same functions, same docstrings in brief).

Check them with ``python tutorials/check_exercises.py --solutions``.
"""
from __future__ import annotations

import numpy as np


def tanh_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Task 1.1: ``dx = dy · (1 - y²)``, shapes (N, D) -> (N, D)."""
    return dy * (1 - y * y)


def sgd_momentum_update(param: np.ndarray, grad: np.ndarray, buf: np.ndarray, lr: float,
                        momentum: float, first_step: bool) -> None:
    """Task 1.2: ``b ← g`` (first step) or ``b ← μ b + g``; then ``p ← p - lr b``, in place."""
    if first_step:
        buf[...] = grad
    else:
        buf *= momentum
        buf += grad
    param -= lr * buf


def rai_table_gradient(X: np.ndarray, Z: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                       W2: np.ndarray, b2: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Task 2.1: ``as_input = ((p - y)/N) @ W2ᵀ`` and ``as_target = -λ · 2 (o - Z) / (N·H)``.

    Derivation of ``as_input``: ∂BCE/∂p_i = (p_i - y_i) / (p_i (1 - p_i)) / N and
    σ'(a_i) = p_i (1 - p_i), so ∂BCE/∂a = (p - y) / N  (N, 1); then a = Z W2 + b2 gives
    ∂BCE/∂Z = ∂BCE/∂a @ W2ᵀ  (N, H).

    ``as_target``: ∂/∂Z of (1/(N·H)) Σ (o - Z)² is -2 (o - Z) / (N·H), times λ.
    """
    N, H = Z.shape
    o = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(Z @ W2 + b2)))
    as_input = ((p - y) / N) @ W2.T
    as_target = -lam * 2 * (o - Z) / (N * H)
    return as_input, as_target
