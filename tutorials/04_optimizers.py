# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 4: optimizers, from gradient descent to Rprop
#
# A backward pass gives every parameter a gradient g. An optimizer turns it into a step.
# minirai has the four rules a course needs. Each is one `update(param, grad, state)` in
# `minirai/optim.py`, written as its paper writes it:
#
# | rule | step for one entry p with gradient g |
# |---|---|
# | gradient descent | $p \leftarrow p - \eta\, g$ |
# | momentum (μ) | $b \leftarrow \mu b + g,\; p \leftarrow p - \eta\, b$ (b = g on the first step) |
# | Adam | $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$; at step t, $\hat m = m/(1-\beta_1^t)$, $\hat v = v/(1-\beta_2^t)$ and $p \leftarrow p - \eta\, \hat m / (\sqrt{\hat v} + \varepsilon)$ (β1 = 0.9, β2 = 0.999, ε = 1e-8) |
# | Rprop | only sign(g) matters: each entry's step Δ grows by 1.2 while the sign holds; on a flip Δ halves, the entry does not move, and the next step treats it as having no previous sign; Δ stays when a sign is 0; Δ stays within [1e-6, 50]; then $p \leftarrow p - \mathrm{sign}(g)\,\Delta$ |
#
# In this chapter we
#
# 1. train one small network with each rule and compare their loss curves;
# 2. look at one step of each on a 40-layer sigmoid network, where the gradient reaching the
#    first layer is some 1e-34 times the last layer's (chapter 2): which rules move that layer?
#
# Exercises 8, 9 and 10 (`minirai check 8 9 10`) ask you to write momentum, Adam and Rprop.

# %%
# %matplotlib inline
import os

import numpy as np

import minirai
from minirai import backend, data, plot, train

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")
moons = data.moons()

# %% [markdown]
# ## 1. Four rules on one small network
#
# The same initial weights (seed 0) every time, a 2-16-16-1 tanh network, full batch.
# Learning rates are each rule's usual scale: gradient descent needs a large one (0.5);
# Adam's steps are about its learning rate (0.01) whatever the gradient's size, and Rprop's
# start at its learning rate and then grow or shrink with the signs.

# %%
iters = 100 if QUICK else 300
RULES = {
    "gradient descent": lambda p: minirai.SGD(p, lr=0.5),
    "momentum 0.9": lambda p: minirai.SGD(p, lr=0.5, momentum=0.9),
    "Adam": lambda p: minirai.Adam(p, lr=0.01),
    "Rprop": lambda p: minirai.Rprop(p, lr=0.01),
}
histories = {}
for name, make in RULES.items():
    model = minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=0)
    histories[name] = train.fit(model, minirai.BCE(), make(model.parameters()), moons.X_train, moons.y_train,
                                iters=iters, X_val=moons.X_test, y_val=moons.y_test,
                                record_every=max(1, iters // 20), progress=False)
    h = histories[name]
    print(f"{name:>16}: training loss {h['train_loss'][0]:.3f} -> {h.last('train_loss'):.2e}, "
          f"held-out loss {min(h['val_loss']):.2g} at best, {h.last('val_loss'):.2g} at the end, "
          f"held-out accuracy {h.last('val_acc'):.3f}")

# %%
plot.save(plot.loss_curves(histories, title="Chapter 4: four optimizers, one network (training loss below 1e-8: ▼)",
                           floor=1e-8),
          os.path.join(OUT, "04_optimizers.png"))
final = {name: h.last("train_loss") for name, h in histories.items()}
held_out = {name: (min(h["val_loss"]), h.last("val_loss")) for name, h in histories.items()}
assert final["momentum 0.9"] < final["gradient descent"] / 10 and min(final, key=final.get) == "Rprop"
assert final["Rprop"] < 1e-8                                   # below the figure's axis
if not QUICK:       # Rprop's held-out loss: the lowest of the four, then the largest at the end
    assert min(held_out, key=lambda n: held_out[n][0]) == "Rprop" == max(held_out, key=lambda n: held_out[n][1])

# %% [markdown]
# Momentum goes much faster than plain gradient descent at the same learning rate: along a
# direction where the gradient keeps its sign, the buffer b adds up to about g / (1 - μ),
# ten times g for μ = 0.9. Rprop is the fastest here, because its steps grow by 1.2 at every
# step while the signs hold, whatever the gradient's size: its training loss falls below 1e-8,
# where the figure's log axis stops (a ▼ on the bottom edge marks where a curve leaves it; an
# exact 0 would be marked the same way).
#
# Fast is not the same as good. In the full run, Rprop's held-out loss first falls to the lowest
# value of the four, then rises to the largest final one. Once every training point is
# predicted with certainty (chapter 1), the network keeps sharpening its boundary, and the few
# held-out points it gets wrong are wrong with great confidence, each costing a large loss; its
# held-out accuracy hardly moves.
#
# ## 2. One step on a deep sigmoid network
#
# Chapter 2 showed that in a 40-layer sigmoid network, the gradient reaching the first layer
# is some 1e-34 times the one at the last. What does one step of each rule do to the first and
# to the last Linear layer?

# %%
deep_rules = {"gradient descent": RULES["gradient descent"], "Adam": RULES["Adam"], "Rprop": RULES["Rprop"]}
moves = {}
for name, make in deep_rules.items():
    model = minirai.mlp([2] + [100] * 40 + [1], "sigmoid", "sigmoid", seed=0)
    first, last = model.layers[0], model.layers[-2]
    before_first, before_last = first.params["W"].copy(), last.params["W"].copy()
    train.fit(model, minirai.BCE(), make(model.parameters()), moons.X_train, moons.y_train, iters=1,
              progress=False)
    grad_first = float(np.abs(first.grads["W"]).max())
    moves[name] = (float(np.abs(first.params["W"] - before_first).max()),
                   float(np.abs(last.params["W"] - before_last).max()))
    print(f"{name:>16}: first layer |g| up to {grad_first:.1e}, moved by {moves[name][0]:.1e}; "
          f"last layer moved by {moves[name][1]:.1e}")
    assert np.finfo(np.float32).tiny < grad_first < 1e-35 / 0.5      # tiny, an ordinary float32, η·g below 1e-35
assert moves["gradient descent"][0] == moves["Adam"][0] == 0 and np.isclose(moves["Rprop"][0], 0.01)
assert np.isclose(moves["Rprop"][1], 0.01)

# %% [markdown]
# - **Gradient descent** moves the first layer by η·g, below 1e-35. Its weights are of order
#   0.5, where neighbouring float32 numbers are about 6e-8 apart, so nothing changes at all.
# - **Adam** moves it by η·m̂/(√v̂ + ε). With g below 1e-35, √v̂ is as tiny, far below
#   ε = 1e-8. The step is then about η·g/ε, again far below float32's resolution. ε exists so
#   that Adam never divides by zero, and it also hides the tiny gradients.
# - **Rprop** uses only the sign of g. Its step is η = 0.01 for the first layer as for the last.
#   Rprop is the optimizer of the proposal's experiments, and this is what it brings there: it
#   moves layers whose gradients are tiny, as long as they are not exactly 0. (The sign is
#   right: 5e-36 is an ordinary float32 number, and float32 keeps its relative precision.)
#
# Moving is still not learning, though. On the proposal's 101-layer network, BP with Rprop
# stays at the loss ln 2 (chapter 3's figure and `docs/results.md`): every layer steps by Δ in
# the direction of its sign, but the first layers' effect on the loss is so small that these
# steps do not reach the output. Chapter 6 makes the gradient itself survive the depth, and
# chapter 3's RAI makes it come from one layer away.
#
# ## Check yourself
#
# 1. With momentum μ = 0.9 and a gradient that stays the same, what does the buffer b tend to?
# 2. Why does doubling the loss (L → 2L) change gradient descent's steps but not Adam's
#    (ε aside) or Rprop's?
# 3. Adam's first step is η·g/(|g| + ε). For |g| = 1e-3 and for |g| = 1e-12, about how large
#    is it?
#
# *Answers:* (1) g / (1 - μ) = 10 g. (2) Adam divides by the gradient's running RMS, which
# doubles too, and Rprop keeps only the sign. (3) About η, and about η·1e-4: ε wins below
# about 1e-8.

# %%
print("moved the first layer:", {name: move[0] > 0 for name, move in moves.items()})
