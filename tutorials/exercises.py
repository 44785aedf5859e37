"""Graded exercises for the minirai course: replace each ``raise NotImplementedError`` with your code.

The arrays you get are NumPy arrays (float64). Check your work in the folder that holds this file:

    minirai check            # every task
    minirai check 2          # one task (by number or by function name)
    minirai check --list     # the tasks, and the chapter each goes with

Each task is compared with minirai itself (its layers, losses, optimizers and RAI trainer), on
inputs drawn afresh each run: several shapes, values and settings. A task you have not started is
NOT DONE; a wrong answer FAIL, with the array, the index, the expected and the got value, and the
mistake when the grader recognises it. Your functions run in a separate Python process, a few
seconds per task; compute with NumPy (importing minirai in a task gives 0 for it), and leave every
input array as you found it unless the docstring says to update it in place. The docstrings give
the shapes and what to compute; the math is in the chapters (tasks 1-6: chapter 1; 7: chapter 5;
8-10: chapter 4; 11-12: chapters 3 and 7).
"""
from __future__ import annotations

import numpy as np


# -- chapter 01: backprop by hand ------------------------------------------------------------------
def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Task 1: the output of a Linear layer (minirai's convention: W has shape (D_in, D_out)).

    x (N, D_in), W (D_in, D_out), b (D_out,)  ->  y (N, D_out): each row of x mapped by W, plus b.
    """
    raise NotImplementedError("Task 1")


def linear_backward(x: np.ndarray, W: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Task 2: the gradients of a Linear layer y = x W + b, given dy = dL/dy.

    x (N, D_in), W (D_in, D_out), dy (N, D_out)  ->  (dx, dW, db) with
    dx = dL/dx (N, D_in), dW = dL/dW (D_in, D_out), db = dL/db (D_out,).
    Every example contributes to dW and db. Leave the inputs unchanged.
    """
    raise NotImplementedError("Task 2")


def sigmoid_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Task 3: dL/dx of a Sigmoid layer from its cached output y = σ(x) and dy = dL/dy.

    y (N, D), dy (N, D) -> dx (N, D), a new array. Express σ'(x) through y.
    """
    raise NotImplementedError("Task 3")


def tanh_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Task 4: dL/dx of a Tanh layer from its cached output y = tanh(x) and dy = dL/dy.

    y (N, D), dy (N, D) -> dx (N, D), a new array. Express tanh'(x) through y.
    """
    raise NotImplementedError("Task 4")


def bce_backward(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Task 5: dL/dp of binary cross-entropy, L = the *mean* over all M entries of p of
    -[t log p + (1 - t) log(1 - p)].

    p (N, 1) predicted probabilities in (0, 1), t (N, 1) targets in {0, 1} -> dp (N, 1).
    The p here stay away from 0 and 1: no guard against them is needed.
    """
    raise NotImplementedError("Task 5")


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Task 6: the gradient of the scalar f() with respect to every entry of x, by central
    differences.

    ``f`` takes no argument: it reads ``x``, which you change in place, one entry at a time.
    x (any shape: 1-D, 2-D, 3-D, ...) -> grad (the shape of x). Use the eps you are given. When you
    return, x must hold exactly the values it held when you were called.
    """
    raise NotImplementedError("Task 6")


# -- chapter 05: multi-class -----------------------------------------------------------------------------------
def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Task 7: the mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    logits (N, C), labels (N,) integers in 0..C-1  ->  (loss, dlogits): loss a number (the mean
    over the N examples), dlogits = dloss/dlogits (N, C). It must stay finite for logits near 1000
    (where exp overflows) and for rows whose logits lie thousands apart.
    """
    raise NotImplementedError("Task 7")


# -- chapter 04: optimizers ------------------------------------------------------------------------------------
def sgd_momentum_update(param: np.ndarray, grad: np.ndarray, buf: np.ndarray, lr: float,
                        momentum: float, first_step: bool) -> None:
    """Task 8: one step of SGD with momentum on one array, PyTorch's rule (as ``minirai.SGD``).

    param, grad, buf: arrays of one shape. buf is the momentum buffer b of that rule, the
    quantity the step multiplies by lr; it holds the previous step's b (on the first step,
    garbage). With momentum 0 this is plain SGD and buf is not used. Update param and buf *in
    place* (``param -= ...``, ``buf[...] = ...``: an optimizer holds these very arrays); leave grad
    unchanged; return None.
    """
    raise NotImplementedError("Task 8")


def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """Task 9: step t (1, 2, ...) of Adam on one array, with bias correction (as ``minirai.Adam``).

    param, grad, m (first moment), v (second moment): arrays of one shape; m and v start at 0.
    Update param, m and v in place; return None.
    """
    raise NotImplementedError("Task 9")


def rprop_update(param: np.ndarray, grad: np.ndarray, prev_grad: np.ndarray, step: np.ndarray,
                 etas: tuple[float, float] = (0.5, 1.2), step_sizes: tuple[float, float] = (1e-6, 50.0)) -> None:
    """Task 10: one step of Rprop on one array, minirai's rule (``minirai.Rprop``).

    param, grad, prev_grad (what the previous step remembered; 0 at first), step (each entry's
    step size Δ): arrays of one shape. etas = (η-, η+), step_sizes = (Δmin, Δmax).
    Entry by entry: where the gradient keeps its sign, Δ grows by η+; where it flips, Δ shrinks
    by η-, that entry does not move this step, and the next step treats it as having no previous
    sign; where either sign is 0, Δ stays. Δ stays within step_sizes. Every other entry moves
    against its gradient's sign by Δ. Update param, prev_grad and step in place; return None.
    (Only the sign of prev_grad is checked: storing the gradient or its sign both work.)
    """
    raise NotImplementedError("Task 10")


# -- chapter 03: relaxed activation identity -----------------------------------------------------------
# Tasks 11 and 12 use one chain, Linear(W1, b1) -> Tanh -> Linear(W2, b2) -> Sigmoid, cut after the
# Tanh. Block 0 reads the inputs X (N, D); block 1 reads the table Z (N, H), one row per example:
#     o = tanh(X W1 + b1)   (N, H)      p = σ(Z W2 + b2)   (N, 1)
# The relaxed objective has BCE (mean over N) as output loss and MSE (mean over N·H) as hidden loss.
def rai_relaxed_loss(X: np.ndarray, Z: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                     W2: np.ndarray, b2: np.ndarray, lam: float) -> float:
    """Task 11: the relaxed loss L = BCE(p, y) + λ MSE(o, Z) of the chain above.

    X (N, D), Z (N, H), y (N, 1) in {0, 1}, W1 (D, H), b1 (H,), W2 (H, 1), b2 (1,), lam λ -> a number.
    """
    raise NotImplementedError("Task 11")


def rai_table_gradient(X: np.ndarray, Z: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray,
                       W2: np.ndarray, b2: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Task 12: the two parts of dL/dZ for the relaxed loss of task 11.

    Same arguments as task 11. Z appears twice in L: as block 1's input and as the target of block
    0's output. Return (as_input, as_target), each (N, H): the gradient of the term where Z is the
    input, and of the term where it is the target. Their sum is dL/dZ.
    """
    raise NotImplementedError("Task 12")
