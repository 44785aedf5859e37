"""Reference solutions to the graded exercises (``tutorials/exercises.py``): for teachers only.

This folder is outside ``tutorials/`` and outside the package, so neither ``minirai handout`` nor the
wheel holds it, and a submission's sandbox may not read it. Check them with
``minirai check --solutions teachers/solutions.py``.
"""
from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def linear_forward(x, W, b):
    """Task 1: y = x W + b (b added to every row)."""
    return x @ W + b


def linear_backward(x, W, dy):
    """Task 2: dx = dy Wᵀ, dW = xᵀ dy (a sum of outer products over examples), db = Σ_i dy_i."""
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def sigmoid_backward(y, dy):
    """Task 3: σ'(x) = σ(x) (1 - σ(x)) = y (1 - y)."""
    return dy * y * (1 - y)


def tanh_backward(y, dy):
    """Task 4: tanh'(x) = 1 - tanh(x)² = 1 - y²."""
    return dy * (1 - y * y)


def bce_backward(p, t):
    """Task 5: d/dp of -[t log p + (1 - t) log(1 - p)] is (p - t) / (p (1 - p)); the mean divides by M."""
    return (p - t) / (p * (1 - p)) / p.size


def numerical_gradient(f, x, eps=1e-5):
    """Task 6: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every entry i, restoring x[i] exactly."""
    grad = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f()
        x[index] = original - eps
        minus = f()
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def softmax_cross_entropy(logits, labels):
    """Task 7: with s = softmax(z) (computed from z - max z), loss = mean -log s_label and
    dlogits = (s - onehot) / N."""
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_s = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_s[np.arange(N), labels].mean()
    dlogits = np.exp(log_s)
    dlogits[np.arange(N), labels] -= 1
    return float(loss), dlogits / N


def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
    """Task 8: b ← g (first step) or b ← μ b + g; then p ← p - lr b. Without momentum, b = g."""
    if not momentum:
        param -= lr * grad
        return
    if first_step:
        buf[...] = grad
    else:
        buf *= momentum
        buf += grad
    param -= lr * buf


def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """Task 9: m ← β1 m + (1-β1) g, v ← β2 v + (1-β2) g², p ← p - lr m̂ / (√v̂ + ε) with
    m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t) (in PyTorch's order of operations)."""
    b1, b2 = betas
    m[...] = b1 * m + (1 - b1) * grad
    v[...] = b2 * v + (1 - b2) * grad * grad
    denominator = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
    param -= lr / (1 - b1 ** t) * m / denominator


def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    """Task 10: s = sign(g) sign(g_prev); Δ ← Δ η+ where s > 0, Δ η- where s < 0, clipped; where
    s < 0 the move is skipped and g_prev set to 0; p ← p - sign(g) Δ; g_prev ← g."""
    agreement = np.sign(grad) * np.sign(prev_grad)
    step[...] = np.clip(np.where(agreement > 0, step * etas[1], np.where(agreement < 0, step * etas[0], step)),
                        *step_sizes)
    g = np.where(agreement < 0, 0.0, grad)
    param -= np.sign(g) * step
    prev_grad[...] = g


def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
    """Task 11: BCE(p, y) (mean over N) + λ · MSE(o, Z) (mean over N·H)."""
    o = np.tanh(X @ W1 + b1)
    p = sigmoid(Z @ W2 + b2)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    return float(bce + lam * ((o - Z) ** 2).mean())


def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
    """Task 12: as_input = ((p - y) / N) W2ᵀ (σ' cancels BCE's denominator); as_target =
    -λ · 2 (o - Z) / (N·H)."""
    N, H = Z.shape
    o = np.tanh(X @ W1 + b1)
    p = sigmoid(Z @ W2 + b2)
    return ((p - y) / N) @ W2.T, -lam * 2 * (o - Z) / (N * H)
