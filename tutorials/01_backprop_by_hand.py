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
# # Chapter 1: backpropagation by hand
#
# minirai has no autograd tape. Every layer is a `forward(x) -> y` / `backward(dy) -> dx`
# pair that you can read and step through. In this chapter we
#
# 1. run one `Linear` layer and a `Sigmoid` forward, and compute the same numbers in NumPy;
# 2. derive the backward pass on paper, compute it in NumPy, and compare it with
#    `layer.backward`, reading `layer.grads["W"]` and `layer.grad_input`;
# 3. check a layer against finite differences with `minirai.gradcheck` (and watch a wrong
#    derivative fail);
# 4. build a small MLP, train it on two-moons with `minirai.train.fit` and Rprop, print its
#    history and draw its decision landscape.
#
# Run it with `python tutorials/01_backprop_by_hand.py` (figures go to `tutorial-out/`, or to
# the folder in `MINIRAI_TUTORIAL_OUT`).

# %%
import os

import numpy as np

# %matplotlib inline

import minirai
from minirai import backend, data, plot, train
from minirai.fast.denormals import flushing_denormals

QUICK = os.environ.get("MINIRAI_TUTORIAL_QUICK") == "1"   # fewer iterations (the test suite sets it)
OUT = os.environ.get("MINIRAI_TUTORIAL_OUT", "tutorial-out")
backend.set_device("cpu")   # we do NumPy arithmetic next to the engine's arrays, so keep them on the CPU
np.set_printoptions(precision=5, suppress=True, linewidth=100)

# %% [markdown]
# ## 1. Forward: one Linear layer and a Sigmoid
#
# A `Linear(D_in, D_out)` layer computes `z = x @ W + b` with `W` of shape `(D_in, D_out)`
# (so the formula reads like the code) and `b` of shape `(D_out,)`, added to every row.
# A `Sigmoid` computes `y = σ(z) = 1 / (1 + e^{-z})` elementwise.
#
# We use float64 here, so that hand computation and engine agree to ~1e-16 and so that
# `gradcheck` (which needs float64) can be used on the same layer later. The engine's
# default is float32.

# %%
rng = np.random.default_rng(0)
N, D_in, D_out = 4, 3, 2
x = rng.standard_normal((N, D_in))                 # 4 examples, 3 features each
t = rng.uniform(0, 1, size=(N, D_out))              # a regression target for the MSE loss below

linear = minirai.Linear(D_in, D_out, rng=0, dtype=np.float64)
sigmoid = minirai.Sigmoid()
W, b = linear.params["W"], linear.params["b"]
print("W", W.shape, "\n", W)
print("b", b.shape, b)

z = linear.forward(x)
y = sigmoid.forward(z)

z_hand = x @ W + b
y_hand = 1 / (1 + np.exp(-z_hand))
print("engine y:\n", y)
print("max |engine - hand| for z:", np.abs(z - z_hand).max(), " for y:", np.abs(y - y_hand).max())
assert np.abs(y - y_hand).max() < 1e-15          # what the text above says: agreement to ~1e-16

# %% [markdown]
# ## 2. Backward, on paper and in NumPy
#
# Take the mean squared error `L = (1/M) Σ (y - t)²` over all `M = N·D_out` entries.
# The chain rule, one step at a time (shapes in brackets):
#
# * `dL/dy = 2 (y - t) / M`                                       `[N, D_out]`
# * `dL/dz = dL/dy · σ'(z)`, and `σ'(z) = σ(z)(1 - σ(z)) = y (1 - y)`: the sigmoid only needs
#   its cached output `y`                                         `[N, D_out]`
# * `dL/dW = xᵀ @ dL/dz`: each example adds the outer product `x_i dz_iᵀ`     `[D_in, D_out]`
# * `dL/db = Σ_i dL/dz_i`: `b` was added to every row, so its gradient sums over rows `[D_out]`
# * `dL/dx = dL/dz @ Wᵀ`: what the layer *below* would receive      `[N, D_in]`
#
# A rule of thumb that catches most mistakes: every gradient has the shape of the thing it is
# the gradient of.

# %%
loss = minirai.MSE()
value = loss.forward(y, t)
dy = loss.backward()                 # dL/dy, computed by the loss

# by hand
dy_hand = 2 * (y_hand - t) / y_hand.size
dz_hand = dy_hand * y_hand * (1 - y_hand)
dW_hand = x.T @ dz_hand
db_hand = dz_hand.sum(axis=0)
dx_hand = dz_hand @ W.T

# by the engine: backward in reverse order of the forward
dz = sigmoid.backward(dy)
dx = linear.backward(dz)

print(f"loss = {float(value):.6f}")
for name, engine, hand in [("dL/dy", dy, dy_hand), ("dL/dz", sigmoid.grad_input, dz_hand),
                           ('dL/dW = linear.grads["W"]', linear.grads["W"], dW_hand),
                           ('dL/db = linear.grads["b"]', linear.grads["b"], db_hand),
                           ("dL/dx = linear.grad_input", linear.grad_input, dx_hand)]:
    print(f"{name:<28} shape {str(engine.shape):<8} max |engine - hand| = {np.abs(engine - hand).max():.1e}")
print('linear.grads["W"] =\n', linear.grads["W"])
assert np.abs(linear.grads["W"] - dW_hand).max() < 1e-15 and np.abs(linear.grad_input - dx_hand).max() < 1e-15

# %% [markdown]
# Every layer keeps what its last backward saw and produced: `grad_output` (the `dy` it was
# given) and `grad_input` (the `dx` it returned). So `sigmoid.grad_input is linear.grad_output`:
# the same array passed from one layer to the next.
#
# Gradients are *set*, not accumulated: a second backward gives the same numbers (PyTorch
# would add them up unless you zero them first).

# %%
print("sigmoid.grad_input is linear.grad_output:", sigmoid.grad_input is linear.grad_output)
first = linear.grads["W"].copy()
linear.backward(sigmoid.backward(dy))
print("second backward, same dL/dW:", np.array_equal(first, linear.grads["W"]))
assert sigmoid.grad_input is linear.grad_output and np.array_equal(first, linear.grads["W"])

# %% [markdown]
# ## 3. Gradient checks
#
# A hand-written backward is easy to get subtly wrong (a missing transpose, a sum over the
# wrong axis). `minirai.gradcheck(layer, x)` compares every gradient with central finite
# differences `(f(θ + ε) - f(θ - ε)) / 2ε` of the scalar `f = Σ layer(x) ⊙ G`, where `G` is a
# *random* upstream gradient (with all-ones, a wrong transpose can hide). It checks the input
# gradient `"x"` and every parameter (`"0.W"`, `"0.b"`), and returns a result whose `table()`
# lists the worst relative error per array.

# %%
result = minirai.gradcheck(linear, x)
print("Linear ok:", result.ok, " worst relative error:", f"{result.max_rel_error:.1e}")
print(result.table())

chain = minirai.Sequential(minirai.Linear(D_in, 5, rng=1, dtype=np.float64), minirai.Sigmoid(),
                           minirai.Linear(5, D_out, rng=2, dtype=np.float64))
chain_ok = minirai.gradcheck(chain, x).ok
print("\nLinear -> Sigmoid -> Linear ok:", chain_ok)
assert result.ok and chain_ok

# %% [markdown]
# A check is only worth something if it can fail. Here is a sigmoid whose derivative has a
# classic slip, `y (1 + y)` instead of `y (1 - y)`. With `raise_on_failure=False` the check
# returns the result instead of raising `GradcheckError`, and the table points at the
# wrong array: the input gradient `x` (a Sigmoid has no parameters).

# %%
class BrokenSigmoid(minirai.Sigmoid):
    def backward(self, dy):
        self.grad_output = dy
        self.grad_input = dy * self.y * (1 + self.y)    # wrong on purpose
        return self.grad_input


broken = minirai.gradcheck(BrokenSigmoid(), x, raise_on_failure=False, verbose=False)
print("BrokenSigmoid ok:", broken.ok)
print(broken.table())
assert not broken.ok and [r.name for r in broken.rows if r.max_rel_error > broken.tol] == ["x"]   # points at x

# %% [markdown]
# ## 4. A small MLP on two-moons
#
# `minirai.mlp(sizes, activation, output_activation)` builds `Linear` layers of the given
# widths with an activation between them. Two-moons from scikit-learn (`data.moons()`) has
# 100 training points and 1000 fresh held-out points from the same distribution.
#
# `train.fit` runs the four-line training step for `iters` full-batch steps:
#
# ```python
# pred = model.forward(X)
# value = loss.forward(pred, y)
# model.backward(loss.backward())
# optimizer.step()
# ```
#
# Rprop (resilient backprop) uses only the *sign* of each gradient entry: every weight has its
# own step size, grown by 1.2 while the gradient keeps its sign and halved when it flips.
#
# `fit` runs these four lines on minirai's *fast path* (`minirai/fast/`): twins of the same
# methods that reuse arrays and compile the elementwise loops, and give the same numbers bit
# for bit. Under a debugger (`python -m pdb`, `breakpoint()`, VS Code, PyCharm) `fit` runs the
# methods you have just read instead, and says so in one line: a breakpoint in
# `Linear.backward` then stops for every Linear layer at every step. Without a debugger,
# `with minirai.reference(): train.fit(...)` (or `MINIRAI_REFERENCE=1`) does the same, and
# `MINIRAI_REFERENCE=0` keeps the fast path even under a debugger.

# %%
moons = data.moons()
print(moons)
assert moons.X_train.shape == (100, 2) and moons.X_test.shape == (1000, 2)
model = minirai.mlp([2, 16, 16, 1], "tanh", "sigmoid", seed=0)
print(model)

iters = 40 if QUICK else 150
optimizer = minirai.Rprop(model.parameters(), lr=0.001)
history = train.fit(model, minirai.BCE(), optimizer, moons.X_train, moons.y_train, iters=iters,
                    X_val=moons.X_test, y_val=moons.y_test, record_every=iters // 10, progress=False)

# %% [markdown]
# The history records, at step 0 (before training), every `record_every` steps and after
# the last step: the batch loss, the loss and accuracy of the network on all training points
# (`train_loss`, `train_acc`), and on the held-out points (`val_loss`, `val_acc`).
# A loss of `ln 2 ≈ 0.693` is what a network that answers 0.5 everywhere gets.

# %%
print(history)
print(f"{'step':>5} {'train_loss':>11} {'train_acc':>10} {'val_loss':>9} {'val_acc':>8}")
for k in range(len(history)):
    print(f"{history['step'][k]:>5} {history['train_loss'][k]:>11.3g} {history['train_acc'][k]:>10.3f} "
          f"{history['val_loss'][k]:>9.3g} {history['val_acc'][k]:>8.3f}")

# %% [markdown]
# In the full run (150 steps) something curious happens: from step 75 on, the table stops changing.
# The training loss is tiny (about 1e-27) but not 0, and yet every weight gradient of the last step is
# exactly 0, so Rprop has nothing left to follow. Where do the zeros come from? Take the trained
# network's predictions p, the BCE gradient `dL/dp = (p - t) / (p (1 - p)) / N`, and what the output
# sigmoid's backward makes of it:
#
# * In float32, `σ(z)` rounds to exactly 1.0 from about `z = 17`, and is exactly 0 below about
#   `z = -89`, where `e^{-z}` overflows to inf. A point predicted exactly (p = t) has a BCE gradient
#   of exactly 0.
# * The other points (the lines below count them) are class-0 points with a tiny p that is not 0:
#   their BCE gradient is tiny too, but not 0, and they are what keeps the loss above 0.
# * The sigmoid's backward multiplies those gradients by `p (1 - p)`. The products fall below float32's
#   smallest normal number, about 1.2e-38, and a training step flushes such numbers to 0 (chapter 2,
#   section 4). Every weight gradient is then exactly 0.
#
# The held-out loss stays above 0 because a few unseen points near the boundary are confidently
# wrong. (A quick run stops before all this.)

# %%
pred = model.forward(moons.X_train)
bce = minirai.BCE()
final_loss = float(bce.forward(pred, moons.y_train.reshape(-1, 1).astype(pred.dtype)))
dp = bce.backward()                                  # dL/dp
with flushing_denormals():                           # as inside a training step
    dz = model.layers[-1].backward(dp)               # the output Sigmoid's backward: dL/dz
largest = max(float(np.abs(g).max()) for _, g in model.parameters())
ends = minirai.Sigmoid().forward(np.array([[16.0], [17.0], [-88.0], [-90.0]], dtype=np.float32)).ravel()
assert ends[0] < 1 == ends[1] and ends[2] > 0 == ends[3]          # exactly 1 from about 17, 0 below about -89
exact = int(((pred == 0) | (pred == 1)).sum())
print(f"training loss {final_loss:.3g}; p is exactly 0 or 1 for {exact} of {pred.size} training points")
print(f"nonzero entries: of the BCE gradient {int((dp != 0).sum())}, after the sigmoid's backward "
      f"{int((dz != 0).sum())}")
print(f"largest |gradient entry| of the last step: {largest:.3g}"
      + ("  (exactly 0: training has frozen)" if largest == 0 else ""))
steps = list(history["step"])
if not QUICK:       # what the text says about the full run
    frozen = [history["train_loss"][k] for k in range(len(history)) if steps[k] >= 75]
    assert len(set(frozen)) == 1 and 0 < final_loss < 1e-20 and frozen[0] == final_loss
    assert largest == 0 and (dp != 0).sum() > 0 and (dz != 0).sum() == 0
    assert exact + int((dp != 0).sum()) == pred.size and np.all(moons.y_train[(dp != 0).ravel()] == 0)
    assert np.all(((pred > 0) & (pred < 1e-20)) == (dp != 0))          # "a tiny p that is not 0"
    assert history.last("val_loss") > 0 and history.last("val_acc") < 1
else:               # "a quick run stops before all this"
    assert largest > 0

# %% [markdown]
# ## 5. The decision landscape
#
# `plot.landscape` evaluates the network on a 100 x 100 grid (one batched chained forward
# pass) and colours it by the output probability, with the training points on top.
# Every plot function returns a figure; `plot.save` writes it as a PNG and returns it, so in a
# notebook a cell that ends with `plot.save(...)` shows the figure.

# %%
final_acc = history.last("val_acc")

# %%
plot.save(plot.landscape(model, moons.X_train, moons.y_train,
                         title=f"2-16-16-1 tanh MLP after {iters} Rprop steps (held-out accuracy {final_acc:.3f})"),
          os.path.join(OUT, "01_landscape.png"))

# %%
plot.save(plot.loss_curves({"MLP": history}, title="Chapter 1: a small MLP on two-moons"),
          os.path.join(OUT, "01_loss_curves.png"))

# %%
print("figures written: 01_landscape.png, 01_loss_curves.png, in", OUT if not os.path.isabs(OUT)
      else "the folder MINIRAI_TUTORIAL_OUT names")

# %% [markdown]
# ## What to take away
#
# * A layer's backward is three matrix formulas: `dW = xᵀ dz`, `db = Σ_i dz_i`, `dx = dz Wᵀ`;
#   an activation multiplies by its derivative, elementwise.
# * After a backward, every gradient is a plain array on the layer: `grads[...]`,
#   `grad_output`, `grad_input`.
# * `minirai.gradcheck` tells you, per array, whether a backward is right.
#
# Exercises 1 to 6 in `tutorials/exercises.py` build on this chapter (grade them with
# `minirai check 1 2 3 4 5 6`).
#
# ## Check yourself
#
# 1. A Linear layer gets `dy` of shape (N, 3) and has W of shape (5, 3). What are the shapes of
#    `dx`, `dW` and `db`?
# 2. Why is `db` a sum over the examples and not a mean?
# 3. A Sigmoid's backward uses its cached *output* y, not its input. Why is that enough?
#
# *Answers:* (1) (N, 5), (5, 3), (3,). (2) The loss is already a mean; each example's row of
# `dy` carries its 1/N, and the bias is used by every example. (3) σ'(x) = σ(x)(1 - σ(x)) =
# y(1 - y).
