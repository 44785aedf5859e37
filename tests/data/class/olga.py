"""Olga: prints the lines a passing file would get, and answers nothing right."""
import numpy as np

NAMES = ["linear_forward", "linear_backward", "sigmoid_backward", "tanh_backward", "bce_backward",
         "numerical_gradient", "softmax_cross_entropy", "sgd_momentum_update", "adam_update", "rprop_update",
         "rai_relaxed_loss", "rai_table_gradient"]
for k, name in enumerate(NAMES, 1):
    print(f"{k:>2} {name:<22} PASS     matches minirai (max diff 0.0e+00)")
print("12/12 passed")


def linear_forward(x, W, b):
    print(" 1 linear_forward         PASS     matches minirai.Linear.forward")
    return np.zeros((x.shape[0], W.shape[1]))


def sigmoid_backward(y, dy):
    print(" 3 sigmoid_backward       PASS")
    return dy
