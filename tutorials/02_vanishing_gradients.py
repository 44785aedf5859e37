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
# # Chapter 2: vanishing gradients in a deep sigmoid chain
#
# The research proposal behind minirai starts from one observation: a deep MLP with a sigmoid
# after every layer does not train by backpropagation (BP). Its loss stays at `ln 2` and it
# predicts 0.5 everywhere. This chapter shows *why*, with numbers:
#
# 1. one backward pass through a 40-hidden-layer sigmoid chain, layer by layer;
# 2. a short BP run with `minirai.inspect.GradientRecorder`, and the per-layer
#    weight-gradient profile (printed, and drawn with `plot.gradient_profile`);
# 3. why the gradients shrink (σ' ≤ 1/4) and why, in float32, they end as *exact* zeros.
#
# The proposal's net is 100 layers of width 100; we use 40 layers of width 64 so that the
# chapter runs in seconds. The effect is the same, only shorter.

# %%
import os

import numpy as np
from matplotlib.figure import Figure

# %matplotlib inline

import minirai
from minirai import backend, data, plot, train
from minirai.fast import denormals
from minirai.fast.denormals import flushing_denormals
from minirai.inspect import GradientRecorder

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")

DEPTH, WIDTH, SEED = 40, 64, 3
SIZES = [2] + [WIDTH] * DEPTH + [1]          # 41 Linear layers, a Sigmoid after each

moons = data.moons()
model = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED)
linears = [layer for layer in model.layers if isinstance(layer, minirai.Linear)]
sigmoids = [layer for layer in model.layers if isinstance(layer, minirai.Sigmoid)]
print(f"{len(model.layers)} layers: {len(linears)} Linear, {len(sigmoids)} Sigmoid; "
      f"{sum(p.size for p, _ in model.parameters())} parameters, dtype {model.dtype}")

# %% [markdown]
# ## 1. One backward pass, layer by layer
#
# We run the chain forward on the 100 training points, take the BCE loss and run it backward
# once, without updating anything. Then every layer holds the gradient that reached it:
# `layer.grad_output` is `dL/dz` for the pre-activation `z` of a Linear layer, and
# `layer.grads["W"]` is its weight gradient.

# %%
loss = minirai.BCE()
pred = model.forward(moons.X_train)
print(f"loss at initialisation: {float(loss.forward(pred, moons.y_train.reshape(-1, 1).astype(np.float32))):.4f}"
      f"   (ln 2 = {np.log(2):.4f})")
print(f"predictions: from {float(pred.min()):.7f} to {float(pred.max()):.7f}")
assert float(pred.max() - pred.min()) < 1e-6             # every point gets the same prediction
model.backward(loss.backward())

dz_norm = np.array([np.linalg.norm(lin.grad_output.astype(np.float64)) for lin in linears])
dW_norm = np.array([np.linalg.norm(lin.grads["W"].astype(np.float64)) for lin in linears])
print(f"{'Linear':>6} {'|dL/dz|':>10} {'|dL/dW|':>10}")
for k in range(0, len(linears), 5):
    print(f"{k:>6} {dz_norm[k]:>10.3g} {dW_norm[k]:>10.3g}")
assert 0 < dW_norm[0] < 1e-30 and 0 < dz_norm[0] < 1e-30    # near the input: tiny, and not 0 (yet)

# %% [markdown]
# Two things to notice. First, the *forward* pass has already forgotten the input: all 100
# points get the same prediction, to 7 digits. Second, read the table from the bottom (the
# output) up: the gradient shrinks by roughly the same factor at every layer, so on a log
# scale it falls on a straight line. Near the input the norms are below 1e-30: not 0, but
# close to the end of float32's range (section 4 shows where they become exactly 0).
#
# ## 2. Why: one [Sigmoid, Linear] step of the backward pass
#
# Going down through `z_{k+1} = σ(z_k) @ W + b`, the backward pass computes
#
#     dL/dz_k = (dL/dz_{k+1} @ Wᵀ) ⊙ σ'(z_k)
#
# Two factors shrink the gradient at each layer:
#
# * **σ'(z) = σ(z)(1 - σ(z)) ≤ 1/4**, with the maximum at z = 0. Every sigmoid multiplies the
#   gradient, entry by entry, by at most 1/4.
# * **Wᵀ** with the default initialisation `W ~ U(-1/√D_in, 1/√D_in)` (variance `1/(3 D_in)`)
#   maps a vector of norm `g` to one of norm about `g/√3`, whatever the widths.
#
# So we expect a factor of about `rms(σ') / √3` per layer. Let us measure σ' in the chain.

# %%
sigma_prime = [s.y.astype(np.float64) * (1 - s.y.astype(np.float64)) for s in sigmoids[:-1]]   # hidden sigmoids
rms = np.array([np.sqrt(np.mean(d * d)) for d in sigma_prime])
largest = max(float(d.max()) for d in sigma_prime)
predicted = float(np.exp(np.mean(np.log(rms / np.sqrt(3)))))
nonzero = dz_norm > 0
measured = float(np.exp(np.mean(np.diff(np.log(dz_norm[nonzero])))))   # geometric mean of |dz_{k+1}| / |dz_k|
print(f"largest σ' anywhere in the chain: {largest:.4f}  (the bound is 0.25)")
print(f"rms σ' per hidden sigmoid: from {rms.min():.3f} to {rms.max():.3f}")
print(f"predicted shrink per layer: rms(σ')/√3 = 1/{1 / predicted:.2f}")
print(f"measured shrink per layer:  1/{measured:.2f}  (geometric mean over the layers with nonzero gradient)")
print(f"over {DEPTH} layers that is a factor of about {(1 / measured) ** DEPTH:.1e}")   # the gradient shrinks
assert abs(predicted * measured - 1) < 0.05 and largest <= 0.25 and 6 < measured < 8   # "a few percent", 1/7

# %% [markdown]
# The back-of-the-envelope prediction and the measurement agree to within a few percent
# (the argument ignores correlations between entries, so do not expect more). A factor of
# about 1/7 per layer compounds to about 1e-34 over 40 layers: the layers near the input get
# essentially no signal about the loss.
#
# ## 3. A short BP run with a gradient recorder
#
# `GradientRecorder(every=k)` passed to `train.fit` keeps, every k steps (and at step 1),
# per-layer norms of the weight gradients (`"weight_grad"`), bias gradients, the gradient
# reaching every layer's output and every activation. Norms are summed in float64 where
# float32 would underflow, so a norm of 1e-28 is reported as such.

# %%
iters = 20 if QUICK else 100
recorder = GradientRecorder(every=5)
model = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED)
history = train.fit(model, minirai.BCE(), minirai.Rprop(model.parameters(), lr=0.1),
                    moons.X_train, moons.y_train, iters=iters, X_val=moons.X_test, y_val=moons.y_test,
                    record_every=iters // 4, progress=False, recorder=recorder)
print(f"{'step':>5} {'train_loss':>11} {'train_acc':>10} {'val_acc':>8}")
for k in range(len(history)):
    print(f"{history['step'][k]:>5} {history['train_loss'][k]:>11.5f} {history['train_acc'][k]:>10.3f} "
          f"{history['val_acc'][k]:>8.3f}")
assert round(history.last("train_loss"), 5) == round(np.log(2), 5) and set(history["train_acc"]) == {0.5}

# %% [markdown]
# The loss goes to `ln 2 = 0.69315` and the accuracy stays at 0.5: the network has found the
# best *constant* answer, 0.5 for every point (the two classes are equally frequent), and
# the layers that would have to tell points apart are not learning.
#
# Here is the recorded weight-gradient profile, at step 1 and at the last record.

# %%
first, last = recorder.profile("weight_grad", 0), recorder.profile("weight_grad", -1)
print(recorder, "  recorded steps:", recorder.steps)
print(f"{'Linear':>6} {'step ' + str(recorder.steps[0]):>12} {'step ' + str(recorder.steps[-1]):>12}")
for k in range(len(linears)):
    print(f"{k:>6} {first[k]:>12.3g} {last[k]:>12.3g}")
print(f"exactly zero: {int((first == 0).sum())} layers at step {recorder.steps[0]}, "
      f"{int((last == 0).sum())} at step {recorder.steps[-1]}")
assert (last == 0).sum() > (first == 0).sum()

# %% [markdown]
# Layer 0's norm at step 1 differs a little from section 1's, although the weights are the same.
# Section 1's backward ran in strict IEEE arithmetic; a training step flushes numbers below
# float32's smallest normal number to 0 (section 4 says why), and layer 0's gradient has many such
# entries. The same backward with the flush gives the recorder's number:

# %%
again = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED)
with flushing_denormals():                           # as inside a training step
    one_loss = minirai.BCE()
    one_loss.forward(again.forward(moons.X_train), moons.y_train.reshape(-1, 1).astype(np.float32))
    again.backward(one_loss.backward())
flushed = np.linalg.norm(again.layers[0].grads["W"].astype(np.float64))
print(f"layer 0 at step 1: section 1 (strict) {dW_norm[0]:.4g}, the same backward flushed {flushed:.4g}, "
      f"the recorder {first[0]:.4g}")
assert np.isclose(flushed, first[0], rtol=1e-12, atol=0) and (flushed != dW_norm[0] or not denormals.available())

# %%
fig = Figure(figsize=(15, 5), layout="constrained")
left, right = fig.subplots(1, 2, sharey=True)
plot.gradient_profile({"BP": recorder}, record=0, ax=left, title=f"step {recorder.steps[0]}")
plot.gradient_profile({"BP": recorder}, record=-1, ax=right, title=f"step {recorder.steps[-1]}")
fig.suptitle(f"BP: weight-gradient norm per layer, {DEPTH}-hidden-layer sigmoid MLP (crosses: exactly 0)")
plot.save(fig, os.path.join(OUT, "02_gradient_profile.png"))

# %%
plot.save(plot.gradient_heatmap({"BP": recorder}, title=f"Weight-gradient norm by layer and step, {DEPTH}-hidden-layer "
                                "sigmoid MLP (grey: exactly 0)"),
          os.path.join(OUT, "02_gradient_heatmap.png"))

# %% [markdown]
# As BP drives the output towards the constant 0.5, the loss approaches a flat point and the
# gradient arriving at the top shrinks too; the whole profile slides down and more layers
# hit exactly zero (compare the two columns above).
#
# ## 4. Why exact zeros: float32's range, and flush-to-zero in training steps
#
# float32 has 8 exponent bits. Its smallest *normal* number is about 1.2e-38; below that,
# *subnormal* numbers trade precision for range down to about 1.4e-45, and anything smaller
# rounds to exactly 0 ("underflow").

# %%
f32 = np.finfo(np.float32)
print(f"float32: smallest normal {f32.tiny:.3g}, smallest subnormal {f32.smallest_subnormal:.3g}")
print("np.float32(1e-30) * np.float32(1e-20) =", np.float32(1e-30) * np.float32(1e-20))
print(f"float64: smallest normal {np.finfo(np.float64).tiny:.3g}")

# %% [markdown]
# Subnormal numbers are also *slow*: CPUs take a microcode assist on them (~50x slower per
# operation). So while `fit` and `RAI.fit` compute a step, they switch on the CPU's
# flush-to-zero mode (FTZ and DAZ): a subnormal result is written as 0 and a subnormal input
# is read as 0, as `torch.set_flush_denormal(True)` does, and as JAX and TensorFlow do by
# default on the CPU. Only numbers below 1.2e-38 change. Everywhere else, including every
# backward you run yourself (as below), arithmetic is strict IEEE; `minirai.strict_ieee()`
# keeps it strict inside training too (see `docs/design.md`).
#
# To separate the three effects, we take the trained weights and run one more backward pass
# three ways: strict float32 (what `model.backward` does here), float32 with flush-to-zero
# (what a training step does), and float64 (same weights, copied).

# %%
def one_backward(net):
    """Forward and backward once on the training set; per-Linear norms of dL/dW and of the entries."""
    out = net.forward(moons.X_train.astype(net.dtype))
    bce = minirai.BCE()
    bce.forward(out, moons.y_train.reshape(-1, 1).astype(net.dtype))
    net.backward(bce.backward())
    grads = [layer.grads["W"] for layer in net.layers if isinstance(layer, minirai.Linear)]
    norms = np.array([np.linalg.norm(g.astype(np.float64)) for g in grads])
    zero_entries = sum(int((g == 0).sum()) for g in grads)
    return norms, zero_entries, sum(g.size for g in grads)


model64 = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED, dtype=np.float64)
for (p64, _), (p32, _) in zip(model64.parameters(), model.parameters()):
    p64[...] = p32                                   # the trained float32 weights, in float64

print(f"{'':<30} {'zero layers':>11} {'smallest nonzero |dW|':>22} {'zero entries':>14}")
rows = {}
for name, net, flush in [("float32, strict IEEE", model, False), ("float32, flush-to-zero (fit)", model, True),
                         ("float64", model64, False)]:
    with flushing_denormals(flush):
        norms, zeros, total = one_backward(net)
    smallest = norms[norms > 0].min()
    print(f"{name:<30} {int((norms == 0).sum()):>11} {smallest:>22.3g} {zeros:>8} / {total}")
    rows[name] = int((norms == 0).sum()), smallest, zeros
strict, flush, wide = rows.values()
assert strict[1] < f32.tiny and strict[0] <= flush[0] and wide[0] == wide[2] == 0   # the bullets below
assert flush[1] >= f32.tiny or not denormals.available()

# %% [markdown]
# * In strict float32 the gradient keeps shrinking through the subnormal range (down to
#   1.4e-45) before whole layers underflow to exactly 0.
# * With flush-to-zero, a gradient stops at float32's smallest normal number (1.2e-38): a few
#   more layers get exactly zero weight gradients. (Where the flush is not available, on a
#   processor other than x86-64, the two rows are the same.)
# * In float64 nothing is zero, but the gradients near the input are astronomically small:
#   the dtype only decides *where* "tiny" becomes "zero". The vanishing itself is the
#   product of the per-layer factors of section 2.
#
# Does "tiny but nonzero" matter? For plain gradient descent, no: a step of `lr · 1e-30`
# changes nothing. Rprop looks only at the *sign* of each gradient entry, so a nonzero 1e-30
# still moves its weight by a full step, while an exact 0 has no sign and does not move it at
# all. That is why the zeros, not just the smallness, matter for the proposal's Rprop runs.

# %%
with flushing_denormals():                           # as inside a training step
    _, zeros32, total = one_backward(model)
print(f"after the BP run, {zeros32} of {total} weight-gradient entries ({zeros32 / total:.0%}) are exactly 0 "
      "in a training step: Rprop leaves those weights where they are")

# %% [markdown]
# ## What to take away
#
# * Each [Sigmoid, Linear] step of the backward pass multiplies the gradient by about
#   `rms(σ')/√3 ≈ 1/7` here; the profile is a straight line on a log scale.
# * After 40 layers that is ~1e-34: near the bottom of float32's normal range, and a few
#   layers further down it is exactly 0 (sooner inside a training step, which flushes
#   subnormal numbers to 0).
# * BP then settles at the constant prediction, loss `ln 2`.
#
# Chapter 3 trains the same network with Relaxed Activation Identity, where no gradient has
# to cross more than one layer.
#
# ## Check yourself
#
# 1. What is the largest slope of a sigmoid, and where?
# 2. If each layer shrinks the gradient by 1/7, about how many layers take it from 1 to
#    float32's smallest normal number, about 1e-38?
# 3. Why does the last layer's gradient stay healthy while the first one's vanishes?
#
# *Answers:* (1) ¼, at 0. (2) About 45 (7^45 ≈ 1e38). (3) The last layer is one Jacobian away
# from the loss; the first is 40.
