"""Dan: right answers, and test code left at the top level that raises."""
import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)


# a quick test of mine
print(linear_forward(np.ones(3), np.ones((2, 2)), 0))


def tanh_backward(y, dy):
    return dy * (1 - y * y)


def bce_backward(p, t):
    return (p - t) / (p * (1 - p)) / p.size
