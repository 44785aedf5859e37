"""Pia's own helpers, imported by her exercises.py."""
import numpy as np


def affine(x, W, b):
    return x @ W + b


def sigmoid_derivative_from_output(y):
    return y * (1 - y)
