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
# # Chapter 5: softmax and more than two classes
#
# With two classes one sigmoid output and BCE suffice. With C classes the network ends in C
# raw scores (logits) z, and softmax turns them into probabilities:
#
# $$ s_c = \frac{e^{z_c}}{\sum_k e^{z_k}}, \qquad L = -\frac{1}{N} \sum_i \log s_{i, y_i} $$
#
# In this chapter we
#
# 1. see why the formula above, computed as written, fails for large logits, and how
#    subtracting each row's maximum fixes it;
# 2. derive the gradient: $\partial L / \partial z = (s - \text{onehot}(y)) / N$;
# 3. train a network on scikit-learn's 8x8 digits (10 classes) and look at its confusions.
#
# Exercise 7 (`minirai check 7`) asks you to write `softmax_cross_entropy(logits, labels)`.

# %%
# %matplotlib inline
import os

import numpy as np
from matplotlib.figure import Figure

import minirai
from minirai import backend, data, plot, train

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")
np.set_printoptions(precision=4)

# %% [markdown]
# ## 1. Softmax, stable
#
# Softmax does not change when the same constant is added to every logit of a row (it cancels
# in the fraction). Computed as written, $e^{1000}$ overflows to inf, and inf/inf is NaN. After
# subtracting the row's maximum the largest exponent is $e^0 = 1$, and nothing overflows.

# %%
z = np.array([[1000.0, 999.0, 990.0]])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
shifted = z - z.max(axis=1, keepdims=True)
stable = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
print("as written:   ", naive)
print("row max taken:", stable)
loss = minirai.SoftmaxCrossEntropy()
print("minirai's loss for label 0:", float(loss.forward(z, np.array([0]))))
assert np.isnan(naive).all() and np.isfinite(stable).all() and np.isclose(stable.sum(), 1)

# %% [markdown]
# The log of a probability needs the same care. $\log s_c = (z_c - \max z) - \log \sum_k
# e^{z_k - \max z}$ never takes the log of an underflowed 0.
#
# ## 2. The gradient
#
# With $\log s_y = z_y - \log \sum_k e^{z_k}$, differentiate $-\log s_y$ by $z_c$. The first
# term gives $-[c = y]$ (1 if c is the label, else 0). The second gives
# $\partial_{z_c} \log \sum_k e^{z_k} = e^{z_c} / \sum_k e^{z_k} = s_c$. Together:
# $s_c - [c = y]$, and the mean over N examples divides by N. minirai's `SoftmaxCrossEntropy.backward`
# returns exactly that; let us check it against finite differences.

# %%
rng = np.random.default_rng(0)
logits, labels = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
result = minirai.gradcheck(minirai.SoftmaxCrossEntropy(), logits, target=labels, verbose=False)
print(f"gradcheck of SoftmaxCrossEntropy: ok = {result.ok}, worst relative error {result.max_rel_error:.1e}")
assert result.ok

# %% [markdown]
# ## 3. Ten digits
#
# `data.digits()` holds 1347 training and 450 held-out 8x8 images, pixels scaled to [0, 1].
# The network ends in 10 logits (no output activation), and the loss is softmax
# cross-entropy. `train.fit`'s accuracy is then the fraction of argmax predictions that equal
# the label.

# %%
digits = data.digits()
print(digits)
assert digits.X_train.shape == (1347, 64) and digits.X_test.shape == (450, 64)
assert digits.X_train.min() >= 0 and digits.X_train.max() <= 1
model = minirai.mlp([64, 64, 10], "tanh", None, seed=0)
iters = 150 if QUICK else 600
history = train.fit(model, minirai.SoftmaxCrossEntropy(), minirai.Adam(model.parameters(), lr=0.01),
                    digits.X_train, digits.y_train, iters=iters, batch_size=64, X_val=digits.X_test,
                    y_val=digits.y_test, record_every=max(1, iters // 10), progress=False)
print(f"after {iters} mini-batch steps: held-out accuracy {history.last('val_acc'):.3f}")

# %%
plot.save(plot.loss_curves({"digits": history}, title="Chapter 5: softmax cross-entropy on digits"),
          os.path.join(OUT, "05_loss_curves.png"))

# %% [markdown]
# Which digits does it confuse? Row = true label, column = predicted label; the diagonal holds
# the correct answers.

# %%
model.eval()
predicted = model.forward(digits.X_test).argmax(axis=1)
confusion = np.zeros((10, 10), dtype=int)
np.add.at(confusion, (digits.y_test, predicted), 1)
off = confusion - np.diag(np.diag(confusion))
true, guess = np.unravel_index(off.argmax(), off.shape)
print(f"most frequent confusion: a {true} read as {guess} ({off.max()} times)")
fig = Figure(figsize=(7, 6), layout="constrained")
ax = fig.add_subplot()
image = ax.imshow(confusion, cmap="Blues")
for i in range(10):
    for j in range(10):
        if confusion[i, j]:
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=11,
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")
ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
       title=f"held-out confusions (counts of {len(digits.y_test)} images)")
fig.colorbar(image, ax=ax, label="images")
plot.save(fig, os.path.join(OUT, "05_confusion.png"))

# %% [markdown]
# ## Check yourself
#
# 1. Adding 5 to every logit of a row: what happens to softmax, to the loss, to the gradient?
# 2. For a correct, confident prediction ($s_y \to 1$), what does the gradient for that row
#    tend to?
# 3. Why does the network here end in no activation, while the two-moons networks ended in a
#    sigmoid?
#
# *Answers:* (1) Nothing, for all three: the constant cancels. (2) Zero: $s - \text{onehot}(y)
# \to 0$. (3) Softmax cross-entropy takes raw logits and does the softmax itself (stably);
# BCE takes probabilities, which the sigmoid provides.
