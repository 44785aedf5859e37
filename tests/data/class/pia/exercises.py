"""Pia: a folder submission; two tasks use her own helpers module."""
from helpers import affine, sigmoid_derivative_from_output


def linear_forward(x, W, b):
    return affine(x, W, b)


def linear_backward(x, W, dy):
    raise NotImplementedError("Task 2")


def sigmoid_backward(y, dy):
    return dy * sigmoid_derivative_from_output(y)
