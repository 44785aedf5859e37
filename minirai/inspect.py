"""See every gradient: an opt-in recorder of per-layer norms, for BP and RAI runs.

``GradientRecorder(every=k)`` passed to :func:`minirai.train.fit` or
:meth:`minirai.rai.RAI.fit` keeps, every k steps (after the backward, before the
update), one row per step of:

==================== ===================================================== ============
name                 what                                                  columns
==================== ===================================================== ============
``weight_grad``      ‖dL/dW‖ of each Linear layer                          Linear layers
``bias_grad``        ‖dL/db‖ of each Linear layer                          Linear layers
``output_grad``      ‖dL/dy‖, the gradient reaching each layer's output    all layers
``activation``       ‖y‖, each layer's output                               all layers
``table_grad``       ‖dL/dZ‖ of each RAI table                              cuts
``table_grad_input`` the part from Z as the next block's input              cuts
``table_grad_target`` the part from Z as the previous block's target         cuts
==================== ===================================================== ============

``recorder["weight_grad"]`` is a NumPy array (records x layers); ``recorder.steps`` the
step numbers. Norms are Frobenius norms, summed in float32 and redone in float64 where a
float32 sum would underflow or overflow (a deep BP chain's gradients reach 1e-30 and less).
When no recorder is passed nothing is computed.

Under RAI, at step 1 every weight gradient is exactly zero: the tables start equal to the
forward pass, so every hidden loss and its gradient is zero and the output block (a Sigmoid
after the last cut) has no weights. The tables move first; the weights follow from step 2.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import backend
from .layers import Linear
from .network import Sequential

if TYPE_CHECKING:     # (for the annotations only: rai imports this module)
    from .rai import RAI

Array = Any

QUANTITIES = ("weight_grad", "bias_grad", "output_grad", "activation",
              "table_grad", "table_grad_input", "table_grad_target")


def squared_norms(arrays: list[Array]) -> Array:
    """Squared Frobenius norm of each array (a (len,) float64 array on their device).

    One dot product per array, in its own dtype; where a float32 sum under- or overflows (or is 0)
    it is redone in float64, and an array of zeros stays exactly 0."""
    xp = backend.array_module(arrays[0])
    flat = [a.reshape(-1) for a in arrays]
    with np.errstate(over="ignore", under="ignore"):    # (redone in float64 below)
        dots = [f @ f for f in flat]                     # NumPy: scalars; on a device: 0-d arrays
        fast = (np.array(dots, dtype=np.float64) if xp is np else xp.stack(dots).astype(np.float64))
    suspicious = ~((fast > 1e-30) & (fast < 1e30))      # float32 under/overflow, or all zero
    if backend.to_bool(suspicious.any()):               # (an array of zeros gives exactly 0 again)
        for k in backend.to_numpy(xp.nonzero(suspicious)[0]).tolist():
            fast[k] = xp.einsum("i,i->", flat[k], flat[k], dtype=np.float64)
    return fast


class GradientRecorder:
    """Per-layer gradient and activation norms every ``every`` steps (see module docstring)."""

    def __init__(self, every: int = 1) -> None:
        if isinstance(every, (bool, np.bool_)) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"GradientRecorder: every must be a positive integer, got {every!r}")
        self.every = int(every)
        self.steps: list[int] = []
        self.rows: dict[str, list[np.ndarray]] = {name: [] for name in QUANTITIES}
        self.linear_layers: list[int] = []     # model indices of the Linear layers (columns)
        self.cuts: list[int] = []

    def wants(self, step: int) -> bool:
        return step % self.every == 0 or step == 1

    # -- capturing ------------------------------------------------------------------------------
    def capture(self, step: int, model: Sequential, trainer: "RAI | None" = None) -> None:
        """Record the norms of the last backward (call after backward, before the update).

        It reads what every layer and table holds as plain attributes, which both paths leave the
        same (the fast path gives a stacked block's own layers views of their slice of the stack),
        so its records are the same on both paths."""
        self.linear_layers = [i for i, layer in enumerate(model.layers) if isinstance(layer, Linear)]
        xp = backend.array_module(*(p for p, _ in model.parameters()[:1]))
        sources: dict[str, list[Array | None]] = {
            "weight_grad": [model.layers[i].grads["W"] for i in self.linear_layers],
            "bias_grad": [model.layers[i].grads["b"] for i in self.linear_layers],
            "output_grad": [layer.grad_output for layer in model.layers],
            "activation": [layer.y for layer in model.layers],
            "table_grad": [], "table_grad_input": [], "table_grad_target": []}
        if trainer is not None and trainer.tables:
            self.cuts = list(trainer.cuts)
            sources.update(table_grad=list(trainer.grad_tables), table_grad_input=list(trainer.grad_tables_as_input),
                           table_grad_target=list(trainer.grad_tables_as_target))
        self.steps.append(int(step))
        for name in QUANTITIES:
            width = len(self.cuts) if name.startswith("table") else len(sources[name])
            row = np.full(width, np.nan, dtype=np.float64)
            present = [k for k, a in enumerate(sources[name]) if a is not None]
            if present:
                norms = xp.sqrt(squared_norms([sources[name][k] for k in present]))
                row[present] = backend.to_numpy(norms)
            self.rows[name].append(row)

    # -- reading ----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.rows:
            raise KeyError(f"no recorded quantity {name!r}; choose from {QUANTITIES}")
        return np.stack(self.rows[name]) if self.rows[name] else np.zeros((0, 0))

    def __len__(self) -> int:
        return len(self.steps)

    def profile(self, name: str = "weight_grad", record: int = -1) -> np.ndarray:
        """One recorded row: e.g. the per-layer weight-gradient norms at the last record."""
        if not self.steps:
            raise ValueError("this GradientRecorder has no records yet: pass it to fit or RAI.fit (recorder=...)")
        if not -len(self.steps) <= record < len(self.steps):
            raise ValueError(f"record {record} is out of range: this recorder holds {len(self.steps)} records")
        return self[name][record]

    def summary(self) -> dict[str, Any]:
        """The per-layer weight-gradient profile at the first and last recorded steps (for JSON)."""
        if not self.steps:
            return {}
        grads = self["weight_grad"]
        return {"grad_profile_steps": [self.steps[0], self.steps[-1]],
                "grad_profile_first": grads[0].tolist(), "grad_profile_last": grads[-1].tolist()}

    def __repr__(self) -> str:
        return f"GradientRecorder(every={self.every}, {len(self)} records)"
