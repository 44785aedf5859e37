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
# # Chapter 8: RAI on mini-batches, and running on a GPU
#
# RAI keeps one table row per training example. The proposal feared this makes it
# "incompatible with batched, mini-batched, and stochastic gradient descent methods". There are
# two workarounds, both in `minirai.minibatch.MiniBatchRAI`:
#
# - **persistent tables** (as in ParMAC, Carreira-Perpiñán & Alizadeh, 2016): keep all N rows,
#   and at each step update the weights
#   and only the batch's rows. The optimizer's state (Adam's m and v, Rprop's step sizes) is
#   kept per row, and so is its step count.
# - **per-batch auxiliaries** (as in online alternating minimisation, Choromanska et al., 2019,
#   and in predictive coding):
#   give each batch fresh tables from a forward pass, optimise them with the weights for a few
#   inner steps, then drop them.
#
# In this chapter we
#
# 1. check that persistent tables are exact: one batch of all rows is full-batch RAI, bit for bit;
# 2. train both kinds on digits;
# 3. see what changes on a GPU, and how to check a device.

# %%
# %matplotlib inline
import os

import numpy as np

import minirai
from minirai import backend, data, plot
from minirai.minibatch import MiniBatchRAI
from minirai.rai import RAI

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
_ = backend.set_device("cpu")   # (it returns the array module now in use)

# %% [markdown]
# ## 1. Exact where it should be
#
# A step gathers the batch's rows of every table and of the optimizer's state. It runs the
# ordinary relaxed objective on those B rows, applies the optimizer's own `update` to them,
# and scatters them back. With one batch of all N rows in order, that is exactly what
# full-batch RAI computes.

# %%
moons = data.moons()
full = RAI(minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=1), moons.X_train, moons.y_train, minirai.BCE())
full.fit(minirai.Adam(full.parameters(), lr=1e-2), 20, progress=False)
batched = MiniBatchRAI(minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=1), moons.X_train, moons.y_train,
                       minirai.BCE(), batch_size=100)
batched.fit(minirai.Adam(batched.parameters(), lr=1e-2), 20, progress=False)
same = all(np.array_equal(a, b) for (a, _), (b, _) in zip(full.parameters(), batched.parameters(), strict=True))
print("one batch of all rows, 20 Adam steps: weights and tables identical bit for bit:", same)

trainer = MiniBatchRAI(minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=1), moons.X_train, moons.y_train,
                       minirai.BCE(), batch_size=10, seed=0)
optimizer = minirai.Adam(trainer.parameters(), lr=1e-2)
trainer.step(optimizer)                            # a first step, so that every array has moved once
before = [z.copy() for z in trainer.tables]
trainer.step(optimizer)
outside = np.setdiff1d(np.arange(len(moons.X_train)), trainer.rows)
untouched = all(np.array_equal(b[outside], z[outside]) for b, z in zip(before, trainer.tables))
print(f"a step on rows {trainer.rows.tolist()}: the other {len(outside)} rows untouched:", untouched)
assert same and untouched and len(outside) == 90

# %% [markdown]
# Memory: the tables hold N × (number of cuts) × width numbers, plus as many again for their
# gradients, plus two per entry for Adam's or Rprop's state. For the proposal's 101-layer net
# that is about 160 KB per example in float32 (counted below on one example). Per-batch
# auxiliaries need B rows only.

# %%
deep = RAI(minirai.mlp([2] + [100] * 100 + [1], "sigmoid", "sigmoid", seed=0), moons.X_train[:1], moons.y_train[:1],
           minirai.BCE())
per_example = sum(z.size for z in deep.tables) * 4 * (1 + 1 + 2)   # float32: tables, gradients, 2 state entries
print(f"{len(deep.tables)} tables, {sum(z.size for z in deep.tables)} numbers per example: {per_example / 1e3:.0f} KB")
assert 150e3 < per_example < 170e3                                  # "about 160 KB"

# %% [markdown]
# ## 2. Both kinds on digits

# %%
digits = data.digits()
iters = 200 if QUICK else 800
histories, epochs, inner_steps = {}, {}, {}
for tables in ("persistent", "per-batch"):
    model = minirai.mlp([64, 64, 64, 10], "tanh", None, seed=0)
    trainer = MiniBatchRAI(model, digits.X_train, digits.y_train, minirai.SoftmaxCrossEntropy(), batch_size=64,
                           tables=tables, seed=0)
    histories[tables] = trainer.fit(minirai.Adam(trainer.parameters(), lr=1e-2), iters, X_val=digits.X_test,
                                    y_val=digits.y_test, record_every=max(1, iters // 10), progress=False)
    print(f"{tables:>10} tables, batch 64, {trainer.inner_steps} step(s) per batch, {iters} steps "
          f"({trainer.epochs:.1f} epochs): held-out accuracy {histories[tables].last('val_acc'):.3f}")
    epochs[tables], inner_steps[tables] = trainer.epochs, trainer.inner_steps
# the text below: 3 inner steps per batch (3 blocks), a third as many epochs, both learn digits
assert inner_steps == {"persistent": 1, "per-batch": 3} and abs(epochs["persistent"] / epochs["per-batch"] - 3) < 0.1
assert all(h.last("val_acc") > 0.85 for h in histories.values())

# %% [markdown]
# A per-batch run's relaxed loss is almost all output loss: its hidden losses start at 0 at each
# batch's forward pass and stay small (a few percent of it at the last record, printed below). Drawn on one
# panel, its output-loss line would lie under its relaxed-loss line. So the figure draws the two
# parts of the relaxed loss apart: the output loss L_y, and λ · Σ the hidden losses.

# %%
from matplotlib.figure import Figure

per_batch = histories["per-batch"]
share = per_batch["lam"][-1] * per_batch["hidden_loss"][-1].sum() / per_batch["relaxed_loss"][-1]
print(f"per-batch tables, last record: λ · Σ hidden losses is {share:.2%} of the batch's relaxed loss")
assert 0 < share < 0.05                                        # "a few percent"

# %%
fig = Figure(figsize=(16, 4.8), layout="constrained")
chained_ax, parts_ax, acc_ax = fig.subplots(1, 3)
for colour, (tables, history) in zip(("C0", "C1"), histories.items()):
    steps = history["step"]
    chained_ax.plot(steps, history["chained_loss"], "-", color=colour, label=f"{tables}: chained (training)")
    chained_ax.plot(steps, history["val_loss"], "-.", color=colour, label=f"{tables}: held-out")
    hidden_part = history["lam"] * history["hidden_loss"].sum(axis=1)
    parts_ax.plot(steps, history["output_loss"], "-", color=colour, label=f"{tables}: output loss L_y")
    parts_ax.plot(steps[1:], hidden_part[1:], ":", color=colour, lw=2,
                  label=f"{tables}: λ · Σ hidden losses")   # step 0: tables at a forward pass, exactly 0
    acc_ax.plot(steps, history["chained_acc"], "-", color=colour, label=f"{tables}: training")
    acc_ax.plot(steps, history["val_acc"], "--", color=colour, label=f"{tables}: held-out")
chained_ax.set(yscale="log", xlabel="step", ylabel="loss", title="The network as it predicts")
parts_ax.set(yscale="log", xlabel="step", ylabel="loss",
             title="The relaxed loss's two parts\n(per-batch: of the current batch)")
acc_ax.set(ylim=(0, 1), xlabel="step", ylabel="accuracy", title="Accuracy")
for ax in (chained_ax, parts_ax, acc_ax):
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
fig.suptitle("Chapter 8: mini-batch RAI on digits")
plot.save(fig, os.path.join(OUT, "08_minibatch_loss_curves.png"))

# %% [markdown]
# Per-batch tables take as many inner steps per batch as there are blocks (here 3). Tables
# that start at a forward pass have every hidden loss at 0. The output's error then reaches
# one block further back per inner step, so with fewer inner steps the first blocks would
# never learn.
#
# Both learn digits. The curves' x-axis counts steps, and per-batch tables take 3 per batch,
# so by the end they have seen a third as many epochs. Their relaxed loss is that of the
# current batch, while persistent tables report all N rows.
#
# On the proposal's 101-layer sigmoid net at batch size 32 (two-moons, 3 seeds,
# `studies/minibatch-moons.toml`), mini-batch RAI is set beside its BP twin: the same trainer,
# initialisation, optimizer, batches and steps, with no cut. In 1000 batch steps (Adam lr
# 1e-2) `rai-minibatch` reached 0.883 and 0.826 held-out accuracy on two seeds and stayed at
# 0.500 on the third, while `bp-minibatch` stayed at 0.500, one class, on all three. At lr 1e-4
# the BP twin led (0.738 against 0.535 on average); neither fit the training set
# (`docs/study.md` has the tables, written from the stored results).
#
# ## 3. On a GPU
#
# minirai runs the same code on CuPy. Each operation takes its array module from its arrays
# (`backend.array_module`), and new arrays are made on `backend.xp()`, NumPy or CuPy. Install the extra that matches your driver (`pip install -e '.[gpu-cuda12]'` or
# `'.[gpu-cuda13]'`), then ask minirai what it found:

# %%
report = backend.device_report()
for key, value in report.items():
    print(f"{key:>8}: {value}")

# %% [markdown]
# What changes on a GPU is the cost of two things that are free on a CPU:
#
# - **Waiting for the device.** `float(x)` of a device array waits for all queued work. A
#   training step does this once, to read its loss. Everything else stays on the device. BCE's
#   check that its inputs are probabilities rides on the loss value, instead of costing a
#   second wait. `tests/test_device.py` counts the waits on a stand-in device that refuses
#   `float()` and `bool()`.
# - **Launching kernels.** Each array operation is a kernel launch of a few microseconds. A
#   deep BP step issues about 1,450 of them, and the stacked RAI step, which runs 99 identical
#   blocks as one batched computation, about 220. (These are counted on the stand-in device,
#   not measured on a GPU; see `docs/benchmarks.md`.)
#
# ## Check yourself
#
# 1. With persistent tables and batch size B, how often is a given row updated, compared with
#    the weights?
# 2. Why must Adam count steps per row, not once for the whole table?
# 3. Which line of a training step waits for the GPU, and why is it needed?
#
# *Answers:* (1) Once per epoch, against N/B weight updates. (2) A row's first update is its
# step 1, whenever it comes. Bias correction with the weights' step count would scale it
# wrongly. (3) Reading the loss as a float, to stop a diverging run at once.
