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
# # Chapter 3: Relaxed Activation Identity (RAI)
#
# Chapter 2 ended with a 40-hidden-layer sigmoid MLP that backprop (BP) cannot train: the
# gradient shrinks ~7x per layer and reaches the first layers as exact zeros. RAI, the idea
# of the research proposal minirai reproduces, changes the *objective* rather than the
# network: it cuts the chain into short blocks and joins them by trainable per-example
# **tables**, so that no gradient has to cross more than one block.
#
# In this chapter we
#
# 1. cut the chain after every Linear layer and look at the blocks and tables;
# 2. write down the relaxed objective and the two parts of a table's gradient
#    (`grad_tables_as_input`, `grad_tables_as_target`), and check one by hand;
# 3. train with `minirai.rai.RAI` and read the three numbers every RAI report shows:
#    relaxed loss, chained loss, identity gap, and see why the first alone says little;
# 4. look at λ schedules (`rai.geometric`) and at what λ does under Rprop;
# 5. compare the per-layer gradient profiles of BP and RAI, and the landscapes.

# %%
import os

import numpy as np

# %matplotlib inline

import minirai
from minirai import backend, data, plot, rai, train
from minirai.inspect import GradientRecorder

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")

DEPTH, WIDTH, SEED = 40, 64, 3
SIZES = [2] + [WIDTH] * DEPTH + [1]          # the network of chapter 2
moons = data.moons()

# %% [markdown]
# ## 1. Cutting the chain: blocks and tables
#
# `rai.RAI(model, X, y, loss, cuts="linear", lam=1.0)` places a cut after every Linear layer
# (as the proposal's code does). A cut at position `p` sits between `layers[p-1]` and
# `layers[p]`. The chain falls apart into blocks:
#
# * block 0 reads the inputs `X`;
# * block `s > 0` reads its own table `Z_s`, one row per training example, and computes `o_s`.
#
# The tables start as one ordinary forward pass of the training inputs, so at step 0 nothing
# has changed yet. The trainer shares the model's layers: training it trains `model`.

# %%
model = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED)
trainer = rai.RAI(model, moons.X_train, moons.y_train, minirai.BCE(), cuts="linear", lam=1.0)


def names(block):
    return "[" + ", ".join(type(layer).__name__ for layer in block.layers) + "]"


print(f"{len(model.layers)} layers, {len(trainer.cuts)} cuts at positions {trainer.cuts[:4]} ... {trainer.cuts[-2:]}")
print(f"{len(trainer.blocks)} blocks: block 0 = {names(trainer.blocks[0])}, blocks 1..{len(trainer.blocks) - 2} = "
      f"{names(trainer.blocks[1])}, last block = {names(trainer.blocks[-1])}")
print(f"{len(trainer.tables)} tables: Z_1 .. Z_{len(trainer.tables) - 1} of shape {tuple(trainer.tables[0].shape)}, "
      f"the last one {tuple(trainer.tables[-1].shape)}; "
      f"{sum(z.size for z in trainer.tables)} table entries besides {sum(p.size for p, _ in model.parameters())} weights")
start = trainer.metrics()
print(f"at step 0: relaxed loss {start['relaxed_loss']:.5f} = chained loss {start['chained_loss']:.5f}; "
      f"largest identity gap {start['identity_gap'].max()}")

# %% [markdown]
# Indexing: Python counts from 0, so `trainer.tables[k]` is `Z_{k+1}`, the input of block
# `k+1` and the target of block `k`'s hidden loss; the tables below are labelled by `k`.
#
# Note the last block: the cut after the last Linear layer leaves only the output Sigmoid in
# it. Its input, the last table, holds one free number per training example: a logit the
# optimizer may set directly. Keep that in mind for section 4.
#
# (Blocks 1 to 39 are identical `[Sigmoid, Linear(64, 64)]` blocks; inside `fit` the fast
# path runs them as one batched computation (`minirai.fast.stacking.plan(trainer)` lists the
# groups). The numbers are the same, and each block's layers hold their own rows of it. Under a
# debugger, or with `MINIRAI_REFERENCE=1`, each block runs through its own layers.)
#
# ## 2. The relaxed objective and a table's two gradients
#
# With `K` the last block, `L_y` the output loss (BCE) and `L_h` the hidden loss (MSE):
#
#     L = L_y(o_K, y) + λ Σ_{s<K} L_h(o_s, Z_{s+1})
#
# Every table appears twice: as the *input* of block s, and as the *target* of block s-1's
# hidden loss. So its gradient has two parts, both kept for inspection:
#
#     dL/dZ_s = grad_tables_as_input   (block s's backward: "change Z_s so block s does better")
#             + grad_tables_as_target  (λ ∂L_h(o_{s-1}, Z_s)/∂Z_s: "move Z_s towards what block s-1 computes")
#
# Weights get gradients only from their own block's loss term: the gradient of block s
# never crosses a cut. Let us do one step by hand. At step 0 every hidden loss is zero, so
# only the last table gets a gradient, from the output loss; and since the last block is
# a Sigmoid followed by BCE, that gradient is simply `(p - y) / N`.

# %%
trainer.forward()
trainer.backward()
p, y_col, N = trainer.outputs[-1], trainer.y, trainer.X.shape[0]
by_hand = (p - y_col) / N
print("nonzero table gradients at step 0:", [k for k, g in enumerate(trainer.grad_tables) if np.any(g != 0)],
      f"(the last table is index {len(trainer.tables) - 1})")
print(f"last table, as input: max |engine - (p - y)/N| = {np.abs(trainer.grad_tables_as_input[-1] - by_hand).max():.1e}")
print("largest weight-gradient entry:", max(float(np.abs(g).max()) for _, g in model.parameters()))

# %% [markdown]
# ## 3. Training, and a wave that runs down the chain
#
# `trainer.fit(optimizer, iters)` repeats forward, backward and one optimizer step on weights
# *and* tables together (`trainer.parameters()`). We record gradient norms at every step.

# %%
iters = 60 if QUICK else 300
record_every = iters // 10
rai_recorder = GradientRecorder(every=1)
optimizer = minirai.Rprop(trainer.parameters(), lr=0.1)
history = trainer.fit(optimizer, iters, X_val=moons.X_test, y_val=moons.y_test, record_every=record_every,
                      progress=False, recorder=rai_recorder)

table_grad, weight_grad = rai_recorder["table_grad"], rai_recorder["weight_grad"]
print(f"{'step':>5} {'lowest k: tables[k] has a gradient':>35} {'lowest Linear with a gradient':>30}")
for k, step in enumerate(rai_recorder.steps):
    if step in (1, 2, 3, 4, 10, 20, 30, 40, 41, 42, 43, iters):
        tables_hit, linears_hit = np.nonzero(table_grad[k] > 0)[0], np.nonzero(weight_grad[k] > 0)[0]
        print(f"{step:>5} {tables_hit.min() if tables_hit.size else '-':>35} "
              f"{linears_hit.min() if linears_hit.size else '-':>30}")

# %% [markdown]
# Information travels down the chain **one block per step**. At step 1 only the last table
# moves (section 2). At step 2 the last hidden loss is no longer zero, so the block before
# it gets a weight gradient and its input table a gradient; at step 3 the next one, and so
# on. The first Linear layer (index 0) gets its first gradient at step 42, after the wave
# has crossed all 41 cuts. BP needs one backward pass to reach layer 0, but what arrives
# there is 1e-34 or an exact zero; RAI needs 41 steps, but what arrives is of normal size.
#
# Now the two parts of a table's gradient, at the end of training (one more forward and
# backward). Their sum is the table's gradient, `trainer.grad_tables[s]`.

# %%
trainer.forward()
trainer.backward()
print(f"{'k':>3} {'|as_input[k]|':>14} {'|as_target[k]|':>15} {'|grad_tables[k]|':>17} {'max |sum - grad|':>17}")
for s in (0, 10, 20, 30, 39, 40):
    a, t, g = trainer.grad_tables_as_input[s], trainer.grad_tables_as_target[s], trainer.grad_tables[s]
    print(f"{s:>3} {np.linalg.norm(a):>14.3g} {np.linalg.norm(t):>15.3g} {np.linalg.norm(g):>17.3g} "
          f"{np.abs(a + t - g).max():>17.1e}")

# %% [markdown]
# At the end of the full run, for most tables the two parts are of similar size and largely
# cancel (their sum is much smaller than either): each table has settled at a compromise
# between what block `k+1` would like as its input and what block `k` computes.
#
# ## 4. Relaxed loss, chained loss and identity gap
#
# Every RAI history records three things side by side:
#
# * **relaxed loss**: the objective above, what the optimizer sees (`output_loss` is its
#   first term);
# * **chained loss / accuracy**: the *real* network, `model.forward(X)`, which is how it
#   predicts on new data (`val_acc` on 1000 held-out points);
# * **identity gap** per cut: mean `(o_s - Z_{s+1})²`, how far each table is from what the
#   block before it computes (with MSE as hidden loss, this is the hidden loss).

# %%
gap = history["identity_gap"]
print(f"{'step':>5} {'lam':>4} {'relaxed':>9} {'output':>9} {'mean gap':>9} {'max gap':>9} {'at k':>5} "
      f"{'chained':>8} {'chained_acc':>11} {'val_acc':>8}")
for k in range(len(history)):
    print(f"{history['step'][k]:>5} {history['lam'][k]:>4.3g} {history['relaxed_loss'][k]:>9.4g} "
          f"{history['output_loss'][k]:>9.4g} {gap[k].mean():>9.2g} {gap[k].max():>9.2g} "
          f"{int(gap[k].argmax()) if gap[k].max() > 0 else '-':>5} "
          f"{history['chained_loss'][k]:>8.4f} {history['chained_acc'][k]:>11.3f} {history['val_acc'][k]:>8.3f}")
relaxed, chained = history.last("relaxed_loss"), history.last("chained_loss")
print(f"\nat the end: relaxed loss {relaxed:.4g}, chained loss {chained:.4g} "
      f"({chained / relaxed:.0f}x larger), chained accuracy {history.last('chained_acc'):.3f}")

# %% [markdown]
# First, the early rows. While the wave of section 3 runs down the chain, the relaxed loss
# rises far *above* its starting value, and the worst gap sits at a cut that moves down the
# chain about one cut per step. Each table starts to move when the wave reaches it, and
# Rprop's step sizes grow 1.2x per step while a gradient keeps its sign, so the tables at the
# front overshoot before their hidden losses pull them back. Once the front has passed the
# first cut (after ~45 steps) the gaps collapse, and only then does the chained network
# start to learn (in the full 300-step run its accuracy leaves 0.5 between steps 90 and 120).
#
# Then the end. The relaxed loss falls far below the chained loss, which does not follow it
# down. Why is the relaxed loss alone not the network's loss?
#
# * **The output loss reads a free table.** The last block is a lone Sigmoid on the last
#   table, so `L_y` can be driven towards 0 by moving that table alone: one free logit per
#   training example, i.e. memorising the labels. That says nothing about the weights.
# * **Small gaps do not add up to a small error.** Each identity gap compares a block's
#   output with the *table* it reads next, not with the *chained* activation the real network
#   would feed it. Over 41 cuts the chained forward pass drifts away from the tables.
#
# The drift is easy to measure: run the chained forward pass (`trainer.chained_activations`)
# and compare its activation at each cut with the table there.

# %%
chained_acts = trainer.chained_activations(trainer.X)
local = trainer.identity_gaps()
print(f"{'k':>3} {'identity gap (local)':>21} {'chained vs tables[k] (drift)':>29}")
for s in (0, 5, 10, 20, 30, 39, 40):
    drift = float(np.mean((chained_acts[s] - trainer.tables[s]) ** 2))
    print(f"{s:>3} {local[s]:>21.2g} {drift:>29.2g}")

# %% [markdown]
# Only at the first cut are the two equal (block 0 reads the real input, so its output is
# the chained activation). Further up, the drift is orders of magnitude above the local gap,
# and at the last cut (the pre-sigmoid logits) the chained pass and the table can be far
# apart. That is why every RAI report in minirai shows the chained loss and accuracy *beside*
# the relaxed loss, and why prediction always uses the ordinary chained forward pass.
#
# ## 5. λ and its schedules
#
# λ weighs the hidden losses against the output loss. It can be a number or a schedule
# `step -> λ`; `rai.geometric(start, factor, every, maximum)` grows it as
# `start · factor^(step // every)`, capped, like the penalty of the method of auxiliary
# coordinates: loose identity early, strict identity late.

# %%
schedule = rai.geometric(0.1, 2.0, every=max(1, iters // 10), maximum=10.0)
print("geometric(0.1, 2, every=%d, maximum=10):" % max(1, iters // 10),
      {step: schedule(step) for step in range(0, iters + 1, max(1, iters // 5))})

# %% [markdown]
# A subtlety worth knowing before tuning λ: **Rprop looks only at gradient signs**. For every
# block except the output block, the only loss term is `λ L_h`, so λ scales that block's
# weight gradients and both parts of its input table's gradient by the same factor, and the
# signs do not change. Only the *last* table mixes an unscaled part (from the output loss)
# with a λ-scaled one. Check it: the same state, gradients with λ = 1 and λ = 0.1.

# %%
def all_gradients(lam):
    trainer.lam = rai.as_schedule(lam)
    trainer.forward()
    trainer.backward()
    return {name: g.copy() for name, _, g in trainer.named_parameters()}


g_one, g_tenth = all_gradients(1.0), all_gradients(0.1)
trainer.lam = rai.as_schedule(1.0)
flips = {name: int((np.sign(g_one[name]) != np.sign(g_tenth[name])).sum()) for name in g_one}
print(f"{sum(g.size for g in g_one.values())} gradient entries; sign changes between λ = 1 and λ = 0.1:",
      {name: n for name, n in flips.items() if n} or "none")

# %% [markdown]
# The entries whose sign changes are in the last table (`table41@81`: table 41, i.e.
# `trainer.tables[40]`, at position 81 of the layer list), plus at most a
# stray entry whose gradient is so close to 0 that rounding decides its sign. So under
# Rprop, λ (constant or scheduled) acts only through the last table, and different λ give
# similar runs. (With SGD, λ scales every step size, and it matters everywhere.)
# A shorter run with the geometric schedule above, from the same initial weights, against
# the λ = 1 run at the same step:

# %%
compare_iters = iters // 2
rows = [("1 (above)", history["step"].tolist().index(compare_iters), history)]
for label, lam in [("geometric", schedule)]:
    other = rai.RAI(minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED), moons.X_train, moons.y_train,
                    minirai.BCE(), lam=lam)
    h = other.fit(minirai.Rprop(other.parameters(), lr=0.1), compare_iters, X_val=moons.X_test,
                  y_val=moons.y_test, record_every=compare_iters, progress=False)
    rows.append((label, -1, h))
print(f"after {compare_iters} steps:")
print(f"{'λ':>10} {'λ now':>6} {'relaxed':>9} {'output':>9} {'mean gap':>9} {'chained':>8} {'chained_acc':>11} "
      f"{'val_acc':>8}")
for label, k, h in rows:
    print(f"{label:>10} {h['lam'][k]:>6.3g} {h['relaxed_loss'][k]:>9.4g} {h['output_loss'][k]:>9.4g} "
          f"{h['identity_gap'][k].mean():>9.2g} {h['chained_loss'][k]:>8.4f} {h['chained_acc'][k]:>11.3f} "
          f"{h['val_acc'][k]:>8.3f}")

# %% [markdown]
# In the full run the two relaxed losses differ by a factor of several, mostly through the
# output loss: λ decides how hard the last table is pulled back from the labels towards what
# the network computes. The chained numbers, the ones that describe the network, differ by a
# few percent: another reason not to compare runs by their relaxed loss.
#
# ## 6. Gradient profiles: BP against RAI
#
# The same initial network, trained by BP for a few steps with a recorder, against the RAI
# run above (its last record).

# %%
bp_model = minirai.mlp(SIZES, "sigmoid", "sigmoid", seed=SEED)
bp_recorder = GradientRecorder(every=5)
bp_history = train.fit(bp_model, minirai.BCE(), minirai.Rprop(bp_model.parameters(), lr=0.1),
                       moons.X_train, moons.y_train, iters=20 if QUICK else 30, X_val=moons.X_test,
                       y_val=moons.y_test, record_every=10, progress=False, recorder=bp_recorder)
for name, rec in (("BP", bp_recorder), ("RAI", rai_recorder)):
    profile = rec.profile("weight_grad")
    positive = profile[profile > 0]
    print(f"{name:>3} at step {rec.steps[-1]:>3}: weight-gradient norms from {positive.min():.2g} to "
          f"{positive.max():.2g}, exactly zero in {int((profile == 0).sum())} of {profile.size} layers")
print(f"BP after {bp_history['step'][-1]} steps: loss {bp_history.last('train_loss'):.5f}, "
      f"accuracy {bp_history.last('train_acc'):.3f}")


# %%
plot.save(plot.gradient_profile({"BP": bp_recorder, "RAI": rai_recorder},
                                title="Per-layer weight-gradient norm: BP against RAI"),
          os.path.join(OUT, "03_gradient_profile_bp_vs_rai.png"))

# %% [markdown]
# Under BP the profile spans dozens of orders of magnitude and ends in exact zeros; under
# RAI all 41 layers get gradients within a few orders of magnitude of each other, none of
# them zero, because each comes from its own block's hidden loss, one layer away.
#
# ## 7. The landscape of the chained network
#
# Finally what matters: the trained network, predicting by its ordinary chained forward pass
# (no tables), on a grid over the plane.

# %%
plot.save(plot.side_by_side([(bp_model, f"BP, {bp_history['step'][-1]} steps "
                                        f"(accuracy {bp_history.last('train_acc'):.2f})"),
                             (model, f"RAI, {iters} steps, chained forward "
                                     f"(held-out accuracy {history.last('val_acc'):.2f})")],
                            moons.X_train, moons.y_train,
                            suptitle=f"{DEPTH}-hidden-layer sigmoid MLP on two-moons"),
          os.path.join(OUT, "03_landscape_bp_vs_rai.png"))

# %%
plot.save(plot.loss_curves({"RAI": history}, title="RAI: relaxed, output and chained losses"),
          os.path.join(OUT, "03_rai_loss_curves.png"))

# %%
print("figures written to", os.path.abspath(OUT))

# %%
plot.save(plot.identity_gap_curves(history), os.path.join(OUT, "03_identity_gaps.png"))

# %% [markdown]
# ## What to take away
#
# * RAI cuts the chain into blocks joined by per-example tables; each table's gradient is
#   the sum of a part from the block that reads it and a part from the block that targets it.
# * No gradient crosses a cut: the signal travels down one block per step, at normal size.
# * The relaxed loss is what the optimizer minimises, not what the network achieves: judge
#   a run by its chained loss and accuracy (and held-out accuracy), and watch the identity gap.
# * Under Rprop, λ acts only through the last table.
#
# Exercises 11 and 12 in `tutorials/exercises.py` ask you for the relaxed loss of a 2-block
# chain and for its table's two gradient parts, by hand (`minirai check 11 12`).
#
# ## Check yourself
#
# 1. A table appears in two terms of the relaxed loss. Which two?
# 2. A relaxed loss of 1e-4: what two other numbers do you need before you believe the network
#    is good?
# 3. How far does a gradient travel in one RAI step, and in one BP step?
#
# *Answers:* (1) As the input of the next block, and as the target of the previous block's
# hidden loss. (2) The chained loss/accuracy (the network as it predicts) and the identity
# gap per cut. (3) One block in RAI; the whole depth in BP.
