"""Hana: sys.exit() inside sigmoid_backward, and sys.exit(0) at the end of the file."""
import sys

import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def sigmoid_backward(y, dy):
    if y.ndim != 1:
        sys.exit("only 1-D arrays, sorry")
    return dy * y * (1 - y)


sys.exit(0)
