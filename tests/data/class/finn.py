"""Finn: a leftover input() at the top level, and another inside linear_forward."""
import numpy as np

name = input("your name: ")


def linear_forward(x, W, b):
    input("press enter to continue")
    return x @ W + b


def linear_backward(x, W, dy):
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)


def sigmoid_backward(y, dy):
    return dy * y * (1 - y)
