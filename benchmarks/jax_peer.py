"""The JAX peer of benchmarks/bench.py: each workload's training step as one ``jax.jit``-compiled function.

One compiled function per runner holds the whole step: ``jax.value_and_grad`` of the objective
and a PyTorch-style Rprop update of every array (see :func:`rprop_update`), returning the new
parameters, the new Rprop state and the loss. The parameters and the Rprop state are donated
(``donate_argnums``), so XLA updates them in place. The data (X, and y as float32 (n, 1)) are
arguments too, not constants folded into the program.

* **bp**: ``x @ W + b`` per Linear (minirai's layout: W is (in, out)), the hidden activation
  after each but the last, and BCE computed from the logits: the output sigmoid folded into
  the stable ``mean(max(z, 0) - z t + log1p(exp(-|z|)))``.
* **rai**: a trainable table after every Linear, as the proposal's code (and ``TorchRAI`` in
  bench.py): tables initialised from one forward pass (the pre-activations), objective
  ``BCE_logits(table_last, y) + Σ_s MSE(Linear_s(act(table_{s-1})), table_s)`` (block 0 reads X),
  one Rprop over the weights and the tables.
* **stacked** variants (networks whose middle Linears all have one shape, i.e. deep and wide):
  the middle layers' W and b stacked into (K, d, d) and (K, d) arrays; BP runs them with
  ``jax.lax.scan``, RAI (whose middle blocks are independent given the tables, held stacked
  as (K + 1, n, d)) with one ``einsum``. The plain Python loop over layers (unrolled by the
  tracer) is the default; see benchmarks/README.md for which is faster.

JAX reads its thread settings when it starts: call :func:`configure_threads` before the first
``import jax``.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

ETAS = (0.5, 1.2)          # torch.optim.Rprop's defaults: (etaminus, etaplus)
STEP_SIZES = (1e-6, 50.0)  # (min, max) step size


def configure_threads(threads: int) -> list[str]:
    """Limit XLA's CPU threads to ``threads``; must run before jax is imported. Returns notes.

    ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` is the
    usual recipe for one thread (set here when ``threads == 1``), but with jaxlib 0.10 the CPU
    client still runs a compiled step on a pool of one thread per core: what sets the pool's
    size is the ``PJRT_NPROC`` environment variable (XLA's ``DefaultThreadPoolSize``), set
    here to ``threads`` unless already set.
    """
    notes = []
    if "jax" in sys.modules:
        notes.append("jax was imported before its thread settings were made: they may not apply")
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    os.environ.setdefault("PJRT_NPROC", str(threads))
    notes.append(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} PJRT_NPROC={os.environ['PJRT_NPROC']}")
    return notes


def import_jax() -> Any:
    import jax
    return jax


# -- the pieces of a step ---------------------------------------------------------------------
def bce_with_logits(jnp: Any, z: Any, t: Any) -> Any:
    """mean(max(z, 0) - z t + log(1 + e^{-|z|})): BCE of sigmoid(z), stable for any z."""
    return jnp.mean(jnp.maximum(z, 0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z))))


def bce_clipped(jax: Any, z: Any, t: Any) -> Any:
    """BCE of p = sigmoid(z) as minirai's BCE and PyTorch's BCELoss compute it: logarithms of p
    and 1 - p clipped at -100. Differs from :func:`bce_with_logits` where p rounds to 0 or 1
    (|z| > ~17 in float32): there it counts 100, not |z|. Only the correctness check uses it."""
    jnp = jax.numpy
    p = jax.nn.sigmoid(z)
    return -jnp.mean(t * jnp.maximum(jnp.log(p), -100.0) + (1 - t) * jnp.maximum(jnp.log1p(-p), -100.0))


def activation(jax: Any, name: str) -> Callable[[Any], Any]:
    return jax.nn.sigmoid if name == "sigmoid" else jax.nn.relu


def rprop_init(jax: Any, params: Any, lr: float) -> Any:
    """Rprop's state per array: the previous (masked) gradient and the step sizes (initially lr)."""
    jnp = jax.numpy
    prev = jax.tree_util.tree_map(jnp.zeros_like, params)
    step = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, lr, dtype=p.dtype), params)
    return prev, step


def rprop_update(jax: Any, params: Any, grads: Any, state: Any) -> tuple[Any, Any]:
    """torch.optim.Rprop's update (single-tensor path), array by array:

        s = sign(g * prev);  step *= (1.2 if s > 0, 0.5 if s < 0, else 1), clipped to [1e-6, 50]
        g = 0 where s < 0 (a sign flip: no move this step, and no flip seen next step)
        p -= sign(g) * step;  prev = g
    """
    jnp = jax.numpy
    (eta_minus, eta_plus), (step_min, step_max) = ETAS, STEP_SIZES

    def one(p: Any, g: Any, prev: Any, step: Any) -> tuple[Any, Any, Any]:
        s = jnp.sign(g * prev)
        step = jnp.clip(step * jnp.where(s > 0, eta_plus, jnp.where(s < 0, eta_minus, 1.0)), step_min, step_max)
        g = jnp.where(s < 0, 0.0, g)
        return p - jnp.sign(g) * step, g, step

    prev, step = state
    leaves, tree = jax.tree_util.tree_flatten(params)
    others = (jax.tree_util.tree_leaves(t) for t in (grads, prev, step))   # same structure, same order
    out = [one(*args) for args in zip(leaves, *others)]
    unflatten = tree.unflatten
    return unflatten([o[0] for o in out]), (unflatten([o[1] for o in out]), unflatten([o[2] for o in out]))


# -- objectives ---------------------------------------------------------------------------------
# Each returns (objective, the same objective with BCE in its clipped form); the training step
# differentiates the first and, unless it is built for the check, never computes the second.
def bp_loss(jax: Any, act_name: str, stacked: bool) -> Callable[..., tuple[Any, Any]]:
    jnp, act = jax.numpy, activation(jax, act_name)

    def loop(params: Any, X: Any, y: Any) -> tuple[Any, Any]:
        h = X
        for i, (W, b) in enumerate(params):
            z = h @ W + b
            h = act(z) if i < len(params) - 1 else z
        return bce_with_logits(jnp, h, y), bce_clipped(jax, h, y)

    def scanned(params: Any, X: Any, y: Any) -> tuple[Any, Any]:
        (W0, b0), (Ws, bs), (WL, bL) = params
        h = act(X @ W0 + b0)
        h, _ = jax.lax.scan(lambda h, wb: (act(h @ wb[0] + wb[1]), None), h, (Ws, bs))
        z = h @ WL + bL
        return bce_with_logits(jnp, z, y), bce_clipped(jax, z, y)

    return scanned if stacked else loop


def rai_loss(jax: Any, act_name: str, stacked: bool) -> Callable[..., tuple[Any, Any]]:
    jnp, act = jax.numpy, activation(jax, act_name)

    def mse(a: Any, b: Any) -> Any:
        return jnp.mean((a - b) ** 2)

    def loop(params: Any, X: Any, y: Any) -> tuple[Any, Any]:
        layers, tables = params
        hidden = 0.0
        for s, (W, b) in enumerate(layers):
            inputs = X if s == 0 else act(tables[s - 1])
            hidden = hidden + mse(inputs @ W + b, tables[s])
        return bce_with_logits(jnp, tables[-1], y) + hidden, bce_clipped(jax, tables[-1], y) + hidden

    def einsum(params: Any, X: Any, y: Any) -> tuple[Any, Any]:
        ((W0, b0), (Ws, bs), (WL, bL)), (tables, last) = params   # tables: (K + 1, n, d)
        middle = jnp.einsum("kni,kio->kno", act(tables[:-1]), Ws) + bs[:, None, :]
        hidden = (mse(X @ W0 + b0, tables[0]) + jnp.sum(jnp.mean((middle - tables[1:]) ** 2, axis=(1, 2)))
                  + mse(act(tables[-1]) @ WL + bL, last))
        return bce_with_logits(jnp, last, y) + hidden, bce_clipped(jax, last, y) + hidden

    return einsum if stacked else loop


def rai_tables(jax: Any, act_name: str, layers: list[tuple[Any, Any]], X: Any) -> list[Any]:
    """Every Linear's output (pre-activation) in one forward pass: the tables' initial values."""
    act, tables, h = activation(jax, act_name), [], X
    for s, (W, b) in enumerate(layers):
        h = (X if s == 0 else act(h)) @ W + b
        tables.append(h)
    return tables


def stackable(layers: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Whether the middle Linears (all but the first and the last) share one square shape."""
    middle = layers[1:-1]
    return len(middle) >= 2 and all(W.shape == middle[0][0].shape == (W.shape[0],) * 2 for W, _ in middle)


# -- runners ------------------------------------------------------------------------------------
class JaxTrainer:
    """Parameters, Rprop state and one compiled step; ``step()`` returns the loss (a jax scalar,
    computed before the update). JAX dispatches asynchronously: ``sync()`` waits for the last step.

    ``check``: the step returns the objective with BCE in its clipped form (as minirai's), for the
    correctness check; otherwise the objective itself (the clipped form is never computed)."""

    def __init__(self, jax: Any, loss: Callable[..., tuple[Any, Any]], params: Any, X: Any, y: Any, lr: float,
                 check: bool = False) -> None:
        self.jax, self.X, self.y = jax, X, y
        self.params, self.state = params, rprop_init(jax, params, lr)

        def step(params: Any, state: Any, X: Any, y: Any) -> tuple[Any, Any, Any]:
            if check:
                (_, value), grads = jax.value_and_grad(loss, has_aux=True)(params, X, y)
            else:
                value, grads = jax.value_and_grad(lambda *args: loss(*args)[0])(params, X, y)
            params, state = rprop_update(jax, params, grads, state)
            return params, state, value

        self.compiled = jax.jit(step, donate_argnums=(0, 1))

    def step(self) -> Any:
        self.params, self.state, value = self.compiled(self.params, self.state, self.X, self.y)
        return value

    def sync(self) -> None:
        self.jax.block_until_ready((self.params, self.state))

    def compilations(self) -> int:
        """How many programs jit has compiled for the step (1 if it never recompiled)."""
        return self.compiled._cache_size()


def make_trainer(jax: Any, method: str, act_name: str, layers: list[tuple[np.ndarray, np.ndarray]],
                 X: np.ndarray, y: np.ndarray, lr: float, stacked: bool = False, check: bool = False) -> JaxTrainer:
    """``method`` "bp" or "rai", from minirai's initial arrays ``layers`` [(W (in, out), b (out,)), ...]."""
    jnp = jax.numpy
    X_j, y_j = jnp.asarray(X, dtype=jnp.float32), jnp.asarray(y, dtype=jnp.float32).reshape(-1, 1)
    arrays = [(jnp.asarray(W, dtype=jnp.float32), jnp.asarray(b, dtype=jnp.float32)) for W, b in layers]
    if stacked:
        if not stackable(layers):
            raise ValueError("stacked needs middle Linears of one square shape")
        middle = (jnp.stack([W for W, _ in arrays[1:-1]]), jnp.stack([b for _, b in arrays[1:-1]]))
        packed: Any = (arrays[0], middle, arrays[-1])
    else:
        packed = arrays
    if method == "bp":
        return JaxTrainer(jax, bp_loss(jax, act_name, stacked), packed, X_j, y_j, lr, check)
    tables = jax.jit(lambda layers, X: rai_tables(jax, act_name, layers, X))(arrays, X_j)
    if stacked:
        params: Any = (packed, (jnp.stack(tables[:-1]), tables[-1]))
    else:
        params = (packed, tables)
    return JaxTrainer(jax, rai_loss(jax, act_name, stacked), params, X_j, y_j, lr, check)


def flushes_denormals(jax: Any) -> bool:
    """Whether a compiled XLA program on this backend flushes subnormal float32 results to zero:
    1e-30 * 1e-10 = 1e-40 is subnormal (float32's smallest normal number is 1.2e-38)."""
    jnp = jax.numpy
    x, y = jnp.asarray(np.float32(1e-30)), jnp.asarray(np.float32(1e-10))
    return float(jax.jit(lambda a, b: a * b)(x, y)) == 0.0

