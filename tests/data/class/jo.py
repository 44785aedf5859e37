"""Jo: task 2 asks NumPy for 80 GB at once; task 3 grows a list until memory runs out."""
import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    everything = np.ones((100_000, 100_000))
    return dy @ W.T, x.T @ dy, everything.sum(axis=0)


def sigmoid_backward(y, dy):
    cache = []
    while True:
        cache.append(bytearray(10_000_000))
