"""Ivan: debug prints, megabytes of them (2 MB when the file loads, more in each call of task 1)."""
import numpy as np

for i in range(20_000):
    print("loading", i, "x" * 90)


def linear_forward(x, W, b):
    for row in range(5_000):
        print("row", row, x.sum(), "y" * 150)
    return x @ W + b


def linear_backward(x, W, dy):
    print("dy is", dy)
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)
