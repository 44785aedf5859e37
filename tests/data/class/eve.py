"""Eve: every task right, except a while loop in task 6 that never ends (the increment is missing)."""
import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)


def tanh_backward(y, dy):
    return dy * (1 - y * y)


def bce_backward(p, t):
    return (p - t) / (p * (1 - p)) / p.size


def numerical_gradient(f, x, eps=1e-5):
    grad = np.zeros(x.shape)
    flat, out = x.reshape(-1), grad.reshape(-1)
    i = 0
    while i < flat.size:
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return grad


def softmax_cross_entropy(logits, labels):
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_s = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    d = np.exp(log_s)
    d[np.arange(N), labels] -= 1
    return float(-log_s[np.arange(N), labels].mean()), d / N


def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
    if not momentum:
        param -= lr * grad
        return
    buf[...] = grad if first_step else momentum * buf + grad
    param -= lr * buf


def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m[...] = betas[0] * m + (1 - betas[0]) * grad
    v[...] = betas[1] * v + (1 - betas[1]) * grad * grad
    param -= lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / np.sqrt(1 - betas[1] ** t) + eps)


def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    a = np.sign(grad) * np.sign(prev_grad)
    step[...] = np.clip(np.where(a > 0, step * etas[1], np.where(a < 0, step * etas[0], step)), *step_sizes)
    g = np.where(a < 0, 0.0, grad)
    param -= np.sign(g) * step
    prev_grad[...] = g


def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
    o = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(Z @ W2 + b2)))
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean() + lam * ((o - Z) ** 2).mean())


def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
    N, H = Z.shape
    o = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(Z @ W2 + b2)))
    return ((p - y) / N) @ W2.T, -lam * 2 * (o - Z) / (N * H)
