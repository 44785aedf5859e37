"""Ada: every task, correct, written her own way (NumPy only)."""
import numpy as np


def linear_forward(x, W, b):
    return np.dot(x, W) + b


def linear_backward(x, W, dy):
    return dy.dot(W.T), np.einsum("ni,no->io", x, dy), dy.sum(0)


def sigmoid_backward(y, dy):
    return dy * y * (1.0 - y)


def tanh_backward(y, dy):
    return dy * (1.0 - y ** 2)


def bce_backward(p, t):
    M = p.size
    return (-t / p + (1 - t) / (1 - p)) / M


def numerical_gradient(f, x, eps=1e-5):
    grad = np.empty(x.shape)
    flat, out = x.reshape(-1), grad.reshape(-1)       # views: x is changed in place
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f()
        flat[i] = keep - eps
        down = f()
        flat[i] = keep
        out[i] = (up - down) / (2 * eps)
    return grad


def softmax_cross_entropy(logits, labels):
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return -logp[np.arange(n), labels].sum() / n, grad / n


def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
    if momentum == 0:
        param -= lr * grad
        return None
    buf[:] = grad if first_step else momentum * buf + grad
    param -= lr * buf


def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m *= b1
    m += (1 - b1) * grad
    v *= b2
    v += (1 - b2) * np.square(grad)
    param -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)


def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    same = np.sign(grad) * np.sign(prev_grad)
    step[same > 0] *= etas[1]
    step[same < 0] *= etas[0]
    np.clip(step, step_sizes[0], step_sizes[1], out=step)
    g = grad.copy()
    g[same < 0] = 0.0
    param -= np.sign(g) * step
    prev_grad[...] = g


def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
    o = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(Z @ W2 + b2)))
    return float(np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p)) + lam * np.mean((o - Z) ** 2))


def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
    o = np.tanh(X @ W1 + b1)
    p = 1 / (1 + np.exp(-(Z @ W2 + b2)))
    return (p - y) @ W2.T / len(Z), 2 * lam * (Z - o) / Z.size
