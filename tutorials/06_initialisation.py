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
# # Chapter 6: initialisation as a cure for vanishing gradients
#
# Chapter 2 traced the vanishing gradient to a product: each layer multiplies the backward
# signal by its Jacobian, $J_t = \mathrm{diag}(\sigma'(h_t))\, W_t^\top$, and with σ' ≤ ¼ and
# weights of the default scale the product shrinks by about 1/7 per layer. Change the weights
# and the product changes. If every $J_t$ started *orthogonal*, so that it keeps the norm of
# every vector, the signal would cross any depth intact. That is dynamical isometry (Saxe et
# al., 2014; Pennington, Schoenholz & Ganguli, 2017).
#
# For a sigmoid near 0, σ'(0) = ¼ and σ(0) = ½. So take $W = 4 Q$ with Q a random orthogonal
# matrix, and a bias that cancels the ½ every input carries. Then each layer's Jacobian starts
# as $\mathrm{diag}(\tfrac14) \cdot 4 Q^\top = Q^\top$. (Each such sigmoid layer is the
# critical tanh layer in disguise: σ(x) = ½ + ½ tanh(x/2).) `minirai.mlp(...,
# init="orthogonal")` does this for every Linear after the first; the first one reads the raw
# inputs, not a sigmoid, and keeps gain 1 and bias 0.
#
# In this chapter we
#
# 1. measure the first step's gradient, layer by layer, for three initialisations of a
#    40-layer sigmoid network;
# 2. train it from each with Adam.

# %%
# %matplotlib inline
import os

import numpy as np

import minirai
from minirai import backend, data, plot, train
from minirai.inspect import GradientRecorder

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")
moons = data.moons()
DEPTH = 40

# %% [markdown]
# ## 1. The orthogonal weights
#
# Here is one hidden Linear layer of the orthogonal initialisation. $W^\top W / 16$ should be
# the identity, and the bias should be $-\tfrac12 \sum_{\text{rows}} W$.

# %%
model = minirai.mlp([2] + [100] * DEPTH + [1], "sigmoid", "sigmoid", init="orthogonal", seed=0)
W, b = model.layers[2].params["W"].astype(np.float64), model.layers[2].params["b"]
print("max |WᵀW/16 - I| =", float(np.abs(W.T @ W / 16 - np.eye(100)).max()))
print("max |b + ½ Σ W|  =", float(np.abs(b + 0.5 * W.sum(axis=0)).max()))
assert np.abs(W.T @ W / 16 - np.eye(100)).max() < 1e-6 and np.abs(b + 0.5 * W.sum(axis=0)).max() < 1e-5

# %% [markdown]
# ## 2. Training from three initialisations
#
# For each initialisation the same 40-layer network trains with Adam. The orthogonal one gets
# a smaller learning rate, 1e-4: its gradients are large all the way down, and larger steps
# make it unstable. A `GradientRecorder` keeps the per-layer gradient norms of the first step.

# %%
iters = 150 if QUICK else 600
INITS = {"uniform (the proposal's)": ("uniform", 1e-3), "Xavier": ("xavier", 1e-3),
         "critical orthogonal": ("orthogonal", 1e-4)}
recorders, histories, ratios = {}, {}, {}
for name, (init, lr) in INITS.items():
    model = minirai.mlp([2] + [100] * DEPTH + [1], "sigmoid", "sigmoid", init=init, seed=0)
    start = model.forward(moons.X_train)
    print(f"{name:>26}: predictions at step 0 from {float(start.min()):.3f} to {float(start.max()):.3f}")
    recorders[name] = GradientRecorder(every=iters)
    histories[name] = train.fit(model, minirai.BCE(), minirai.Adam(model.parameters(), lr=lr), moons.X_train,
                                moons.y_train, iters=iters, X_val=moons.X_test, y_val=moons.y_test,
                                record_every=max(1, iters // 10), progress=False, recorder=recorders[name])
    first_step = recorders[name].profile("weight_grad", 0)
    ratios[name] = first_step[0] / first_step[-2]
    print(f"{name:>26}: first / last hidden layer's gradient at step 1 = {ratios[name]:.1e}; after {iters} "
          f"steps: training accuracy {histories[name].last('train_acc'):.2f}, held out "
          f"{histories[name].last('val_acc'):.3f}")
    if init == "orthogonal":
        first_predictions = (float(start.min()), float(start.max()))
orthogonal = histories["critical orthogonal"]
print(f"critical orthogonal: training accuracy {orthogonal['train_acc'][0]:.2f} at step 0, "
      f"{orthogonal.last('train_acc'):.2f} at step {iters}")
assert 0.475 <= first_predictions[0] < first_predictions[1] < 0.525 and abs(orthogonal["train_acc"][0] - 0.82) < 1e-6
ratio = dict(zip(("uniform", "xavier", "orthogonal"), ratios.values()))   # "about 1e-33, 1e-25, 4"
assert 1e-34 < ratio["uniform"] < 1e-32 and 1e-26 < ratio["xavier"] < 1e-24 and 3 < ratio["orthogonal"] < 5
assert all(abs(histories[name].last("train_acc") - 0.5) <= 0.02 for name in list(INITS)[:2])   # "near 0.5"
if not QUICK:
    assert 0.85 <= orthogonal.last("train_acc") <= 0.9                 # "about 0.88 in 600 steps"
assert 1.5 < np.abs(moons.X_train).max() < 2.5                          # "inputs up to about 2 in size"

# %%
plot.save(plot.gradient_profile(recorders, record=0, title="Chapter 6: the first step's gradient, layer by layer"),
          os.path.join(OUT, "06_gradient_profile.png"))

# %% [markdown]
# From the uniform initialisation the first layer's gradient is about 1e-33 of the last
# one's. Xavier's larger weights help, but only to about 1e-25. From the critical orthogonal
# initialisation the ratio is about 4: the gradient crosses 40 sigmoid layers intact. (It is
# above 1 because the first Linear reads the raw inputs, up to about 2 in size, where the
# others read sigmoid outputs near ½; a weight gradient is xᵀδ.) This network is never
# constant: its predictions start between 0.48 and 0.52, but already on the right side of ½ for
# most training points (82% at step 0), because the signal of the input crosses the 40 layers
# too. Training takes it to about 0.88 in 600 steps, while the other two stay near 0.5 (0.50 and
# 0.51 in the full run), predicting about ½ everywhere. The learning rates differ (1e-4 against
# 1e-3), so compare the gradient profiles more than the curves.
#
# Two caveats, both measured in the earlier notes (`docs/study-notes.md`) on the proposal's 101-layer net:
#
# - "BP fails on a deep sigmoid net" holds for the proposal's initialisation, not for BP.
#   With this one, BP reached 100% training accuracy on 2 of 3 seeds in 3000 steps.
# - The critical point is a starting point. Training moves the weights away from it: at lr
#   1e-3 the run falls apart, and even at 1e-4 seed 0 went from 100% back to 80%.

# %%
plot.save(plot.loss_curves(histories, yscale="linear",
                           title="Chapter 6: training from three initialisations (uniform and Xavier overlap)"),
          os.path.join(OUT, "06_loss_curves.png"))

# %% [markdown]
# ## Check yourself
#
# 1. Why gain 4 for a sigmoid, and what would it be for tanh?
# 2. What does the bias $-\tfrac12 \sum W$ cancel, and why does tanh need none?
# 3. An orthogonal Q keeps every vector's norm. Why does the backward signal δ = dL/dh still
#    shrink a little over 40 layers?
#
# *Answers:* (1) 1/σ'(0) = 4 makes diag(σ'(0))·4Qᵀ = Qᵀ; for tanh, 1/tanh'(0) = 1. (2) The ½
# that every sigmoid output carries, so pre-activations start near 0, where σ' is largest; tanh
# is centred at 0. (3) Pre-activations are not exactly 0, so σ' < ¼ and each Jacobian shrinks
# slightly. Isometry holds near the critical point, not exactly.
