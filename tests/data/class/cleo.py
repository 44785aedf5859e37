"""Cleo: a syntax error inside linear_backward; the other functions she wrote are right."""
import numpy as np


def linear_forward(x, W, b):
    return x @ W + b


def linear_backward(x, W, dy):
    dx = dy @ W.T
    dW = x.T @ dy
    db = dy.sum(axis=0
    return dx dW db


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)


def tanh_backward(y, dy):
    return dy * (1 - y * y)


def bce_backward(p, t):
    return (p - t) / (p * (1 - p)) / p.size
