"""Ben: chapter 1 done (dW not summed but averaged, one-sided differences), softmax not stable, the rest not
started."""
import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy / len(x), dy.sum(axis=0)


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)


def tanh_backward(y, dy):
    return dy * (1 - y * y)


def bce_backward(p, t):
    return (p - t) / (p * (1 - p)) / p.size


def numerical_gradient(f, x, eps=1e-5):
    grad = np.zeros(x.shape)
    base = f()
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + eps
        grad[i] = (f() - base) / eps
        x[i] = old
    return grad


def softmax_cross_entropy(logits, labels):
    e = np.exp(logits)
    s = e / e.sum(axis=1, keepdims=True)
    n = len(labels)
    d = s.copy()
    d[np.arange(n), labels] -= 1
    return float(-np.log(s[np.arange(n), labels]).mean()), d / n


def sgd_momentum_update(param, grad, buf, lr, momentum, first_step):
    raise NotImplementedError("Task 8")
