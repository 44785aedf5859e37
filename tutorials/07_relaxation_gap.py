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
# # Chapter 7: the relaxation gap, and where to cut
#
# Chapter 3 trained a deep sigmoid network with RAI. Its relaxed loss fell far below the
# chained network's loss, and the network that predicts, the ordinary chained forward pass, got
# only 87% of the training points right. The two differ because the tables are not exactly
# what the blocks compute. Cut $s$ (counted from 1, as in chapter 3) leaves a difference
# $o_{s-1} - Z_s$ between table $Z_s$ and the output of the block before it; its mean square is
# the *identity gap* the trainer records, its largest entry $\max|o_{s-1} - Z_s|$ what we print
# below. The chained pass carries each difference on through every layer after it.
#
# In this chapter we
#
# 1. find *which* cut breaks the chain, by starting the chained pass from each table in turn;
# 2. see why it is the first ones;
# 3. move the cuts (`cuts="linear[3:]"` removes the cuts after the first three Linear layers,
#    so Linear layers 0 to 3 form block 0) and close the gap.
#
# Exercise 11 (`minirai check 11`) asks for the relaxed loss of a 2-block chain by hand.

# %%
# %matplotlib inline
import os

import numpy as np

import minirai
from minirai import backend, data, plot
from minirai.rai import RAI

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")
moons = data.moons()
DEPTH, ITERS = (30, 400) if QUICK else (100, 3000)   # the proposal's net in the full run


def train_rai(cuts: str) -> tuple[RAI, object]:
    """The deep sigmoid net trained by RAI with Rprop (the proposal's settings) and the given cuts."""
    model = minirai.mlp([2] + [100] * DEPTH + [1], "sigmoid", "sigmoid", seed=0)
    trainer = RAI(model, moons.X_train, moons.y_train, minirai.BCE(), cuts=cuts)
    history = trainer.fit(minirai.Rprop(trainer.parameters(), lr=0.1), ITERS, X_val=moons.X_test,
                          y_val=moons.y_test, record_every=max(1, ITERS // 20), progress=False)
    return trainer, history


# %% [markdown]
# ## 1. A cut after every Linear layer (the proposal's code)

# %%
trainer, history = train_rai("linear")
print(f"{DEPTH} hidden layers, {ITERS} Rprop steps: relaxed loss {history.last('relaxed_loss'):.1e}, "
      f"mean identity gap {np.mean(history['identity_gap'][-1]):.1e}")
print(f"chained: training accuracy {history.last('chained_acc'):.3f}, held out {history.last('val_acc'):.3f}")

# %% [markdown]
# Start the chained pass from table $Z_s$ instead of from the inputs. Run the layers after cut $s$
# on $Z_s$ and score the output. Where the accuracy jumps to 1, the gaps that remain
# downstream are harmless, and the ones that break the chain lie upstream.

# %%
def accuracy_from_tables(trainer: RAI) -> list[float]:
    """The training accuracy of the chain started at each table (the layers after its cut, run on it)."""
    found = []
    for k, position in enumerate(trainer.cuts):
        x = trainer.tables[k]
        for layer in trainer.model.layers[position:]:
            x = layer.forward(x)
        found.append(float((trainer.loss.decision(x) == moons.y_train).mean()))   # the loss's own rule
    return found


from_tables = accuracy_from_tables(trainer)
trainer.forward()      # (the loop above overwrote the layers' caches: run the relaxed objective again)
largest_gap = [float(np.abs(o - z).max()) for o, z in zip(trainer.outputs[:-1], trainer.tables)]
print("accuracy of the chain started at table Z_s, s = 1, 2, 3, ...:", np.round(from_tables[:8], 2), "...")
print("max |o_{s-1} - Z_s| at cut s = 1, 2, 3, ...:", " ".join(f"{g:.1e}" for g in largest_gap[:8]), "...")
print(f"from cut 4 on: at most {max(largest_gap[3:]):.1e}")
top_two = sorted(int(k) + 1 for k in np.argsort(largest_gap)[-2:])
print(f"the two largest max |o - Z| are at cuts {top_two[0]} and {top_two[1]} of {len(largest_gap)}")
assert top_two[0] == 1 and history.last("chained_acc") < 0.95 and all(a >= 0.95 for a in from_tables[1:])
if not QUICK:       # the numbers of the full run, in the paragraph below
    assert min(largest_gap[:3]) > 0.02 > 0.01 > max(largest_gap[3:]) and all(a == 1 for a in from_tables[1:])
    assert 0.88 <= history.last("chained_acc") <= 0.93

# %% [markdown]
# Cuts are counted from 1, the cut nearest the input (as in the figure below). The chain
# started at the inputs is wrong on about one point in ten, and started a table later it is
# right on (almost) every point: in the full run, on every point from table 2 on. So the first
# cuts break it, and their gaps are the largest: in the full run, 100 layers, 0.036, 0.025 and
# 0.027 at cuts 1 to 3, and below 0.01 from cut 4 on.
#
# ## 2. Why the first cuts
#
# For cut 1 there is a plain reason. Block 0 is a single Linear(2 → 100). Its 100 outputs are
# affine functions of the 2 inputs, so for all training examples they lie on one 2-D plane
# inside the 100-D space. Table 1 is pushed by block 1's gradient as well as pulled towards
# block 0's output, and it leaves that plane. No weights of block 0 can follow, so its gap
# stays, and the chained pass carries the error through every layer after it. Block 1 then
# reads a table that no input produces, and its gap is large too. Further on, the blocks read
# 100-wide tables through a sigmoid, and they follow them closely.
#
# The singular values of the centred 100 × 100 matrices show the plane: block 0's outputs have
# two that are not (nearly) 0, table 1 has more.

# %%
def singular_values(rows: np.ndarray) -> np.ndarray:
    """Singular values of the rows minus their mean, relative to the largest."""
    centred = rows.astype(np.float64) - rows.astype(np.float64).mean(axis=0)
    values = np.linalg.svd(centred, compute_uv=False)
    return values / values[0]


plane, table_1 = singular_values(trainer.outputs[0]), singular_values(trainer.tables[0])
print("block 0's outputs, singular values 1-5:", " ".join(f"{v:.1e}" for v in plane[:5]))
print("table 1 (Z_1),     singular values 1-5:", " ".join(f"{v:.1e}" for v in table_1[:5]))
assert plane[1] > 1e-3 and plane[2] < 1e-5 and table_1[2] > 100 * plane[2]       # a plane, and a table off it

# %% [markdown]
# ## 3. Keep the first layers chained

# %%
tuned, tuned_history = train_rai("linear[3:]")
print(f"cuts 'linear[3:]': relaxed loss {tuned_history.last('relaxed_loss'):.1e}, chained: training accuracy "
      f"{tuned_history.last('chained_acc'):.3f}, held out {tuned_history.last('val_acc'):.3f}")
print(f"chained loss {tuned_history.last('chained_loss'):.1e} beside the relaxed {tuned_history.last('relaxed_loss'):.1e}")
lowest = int(np.argmin(tuned_history["val_loss"]))
print(f"held-out loss: {tuned_history['val_loss'][lowest]:.2g} at its lowest (step {tuned_history['step'][lowest]}), "
      f"{tuned_history.last('val_loss'):.2g} at the end; held-out accuracy {tuned_history.last('val_acc'):.3f}")
assert tuned_history.last("chained_acc") == 1 and tuned_history.last("chained_loss") < 2 * tuned_history.last("relaxed_loss")
if not QUICK:       # "its held-out loss climbs again, by more than a fifth", records after its lowest
    assert tuned_history.last("val_loss") > 1.2 * tuned_history["val_loss"][lowest] and tuned_history.last("val_acc") > 0.97
    assert tuned_history["step"][lowest] < tuned_history["step"][-1]

# %%
plot.save(plot.identity_gap_curves(history, title="cuts after every Linear: identity gap per cut"),
          os.path.join(OUT, "07_gaps_every_linear.png"))

# %%
plot.save(plot.loss_curves({"every Linear": history, "linear[3:]": tuned_history},
                           title="Chapter 7: relaxed against chained, two cut placements"),
          os.path.join(OUT, "07_loss_curves.png"))

# %% [markdown]
# With the first block made of four Linear layers, the chained network fits the training set
# and its chained loss approaches the relaxed one: the gap is closed. In the full run its
# held-out loss then climbs again, by more than a fifth of its lowest value (recorded every 150
# steps; the line above prints both), while its held-out accuracy stays above 97%: as with Rprop
# in chapter 4, a network that fits its 100 training points exactly grows confident, and the few
# held-out points it gets wrong cost more and more. This is the method
# `rai-tuned` of `minirai study` (the earlier notes, `docs/study-notes.md`: 100% on each of 3 seeds of the
# proposal's 101-layer net, 98.2–99.9% held out). `studies/relaxation_gap.py` runs the other
# remedies one would try first, a growing penalty λ and re-initialising the tables, and
# `docs/study-notes.md` adds two tried by hand, refitting the output layer and a chained fine-tune.
# None of them helped. A growing λ cannot help with
# Rprop: for every table but the last, both parts of its gradient carry λ, and Rprop keeps
# only signs.
#
# ## Check yourself
#
# 1. The relaxed loss is small. Name the two other numbers a report must show beside it.
# 2. Why can the first block not follow table 1, while block 5 can follow table 6?
# 3. With no cut at all, what is RAI?
#
# *Answers:* (1) The chained loss/accuracy and the identity gap. (2) Block 0 maps 2 inputs
# affinely, so its outputs span a 2-D plane; block 5 reads a 100-wide table through a
# sigmoid. (3) Chained backprop, bit for bit.
