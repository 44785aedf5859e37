"""Correct answers written differently from teachers/solutions.py: every task must PASS (tests/test_grading.py)."""
import numpy as np
import scipy.special as sp

def sigmoid(a): return 1/(1+np.exp(-a))

def linear_forward(x, W, b):
    return np.einsum("nd,de->ne", x, W) + b[None, :]

def linear_backward(x, W, dy):
    dW = sum(np.outer(x[i], dy[i]) for i in range(len(x)))
    return (np.einsum("ne,de->nd", dy, W), dW, np.add.reduce(dy, axis=0))

def sigmoid_backward(y, dy):
    return dy * y - dy * y ** 2

def tanh_backward(y, dy):
    return dy - dy * y ** 2

def bce_backward(p, t):
    return -(t / p - (1 - t) / (1 - p)) / len(p)

def numerical_gradient(f, x, eps=1e-5):
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + eps; fp = f()
        x[ix] = old - eps; fm = f()
        x[ix] = old
        grad[ix] = (fp - fm) / 2 / eps
        it.iternext()
    return grad

def softmax_cross_entropy(logits, labels):
    N = len(labels)
    lse = sp.logsumexp(logits, axis=1)
    loss = np.mean(lse - logits[np.arange(N), labels])
    s = sp.softmax(logits, axis=1)
    s[np.arange(N), labels] -= 1
    return loss, s / N          # loss a numpy float64

def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
    if first_step:
        buf[...] = 0
    buf[...] = momentum * buf + grad
    param -= lr * buf

def adam_update(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    m *= betas[0]; m += (1 - betas[0]) * grad
    v *= betas[1]; v += (1 - betas[1]) * grad ** 2
    mh = m / (1 - betas[0] ** t); vh = v / (1 - betas[1] ** t)
    param -= lr * mh / (np.sqrt(vh) + eps)

def rprop_update(param, grad, prev_grad, step, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    s = np.sign(grad)
    prod = s * prev_grad
    up, down = prod > 0, prod < 0
    step[up] = np.minimum(step[up] * etas[1], step_sizes[1])
    step[down] = np.maximum(step[down] * etas[0], step_sizes[0])
    s[down] = 0
    param -= s * step
    prev_grad[...] = s           # stores sign(g), 0 after a flip

def rai_relaxed_loss(X, Z, y, W1, b1, W2, b2, lam):
    o = np.tanh(X @ W1 + b1)
    z = Z @ W2 + b2
    bce = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    return np.array(bce + lam * np.mean((o - Z) ** 2))  # 0-d array

def rai_table_gradient(X, Z, y, W1, b1, W2, b2, lam):
    N, H = Z.shape
    o = np.tanh(X @ W1 + b1)
    p = sigmoid(Z @ W2 + b2)
    dp = (p - y) / (p * (1 - p)) / N
    dz = dp * p * (1 - p)
    return dz @ W2.T, lam * 2 * (Z - o) / Z.size
