"""The two process-wide switches a learner or researcher may want, each in one place.

``minirai.reference()`` / ``MINIRAI_REFERENCE=1``
    Run everything on the *textbook path*: ``fit`` and ``RAI.fit`` call each layer's own
    ``forward``/``backward``, ``Sequential``'s two loops, ``RAI.forward``/``backward`` block by
    block and each optimizer's ``update`` array by array, so a breakpoint in
    ``Linear.backward`` fires for every Linear layer at every step. By default the training
    loops take the *fast path* (:mod:`minirai.fast`), which gives the same numbers.

``minirai.strict_ieee()`` / ``MINIRAI_STRICT_IEEE=1``
    Keep the CPU's strict IEEE arithmetic inside training loops too. By default ``fit`` and
    ``RAI.fit`` switch on the CPU's flush-to-zero of *subnormal* numbers (below 1.2e-38 in
    float32) while they compute a step, on both paths, as JAX and TensorFlow do on the CPU
    (:mod:`minirai.fast.denormals`). Outside a step (records, callbacks, anything you run
    yourself) arithmetic is always strict IEEE.

Both context managers nest and restore the previous setting on exit; the environment
variables are read when a training loop starts.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import ContextManager, Iterator

#: a value set by the context managers below; None: ask the environment variable
_overrides: dict[str, bool | None] = {"MINIRAI_REFERENCE": None, "MINIRAI_STRICT_IEEE": None}


def _env_flag(name: str) -> bool:
    text = os.environ.get(name, "0").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be 0 or 1, got {text!r}")


def _flag(name: str) -> bool:
    override = _overrides[name]
    return _env_flag(name) if override is None else override


def reference_path() -> bool:
    """True when training loops must run the textbook path (``reference()`` or ``MINIRAI_REFERENCE=1``)."""
    return _flag("MINIRAI_REFERENCE")


def flush_denormals() -> bool:
    """True unless ``strict_ieee()`` or ``MINIRAI_STRICT_IEEE=1``: training steps flush subnormals."""
    return not _flag("MINIRAI_STRICT_IEEE")


@contextmanager
def _override(name: str, on: bool) -> Iterator[None]:
    saved, _overrides[name] = _overrides[name], bool(on)
    try:
        yield
    finally:
        _overrides[name] = saved


def reference(on: bool = True) -> ContextManager[None]:
    """Inside the block, ``fit`` and ``RAI.fit`` run the textbook path (``on=False``: the fast path)."""
    return _override("MINIRAI_REFERENCE", on)


def strict_ieee(on: bool = True) -> ContextManager[None]:
    """Inside the block, training steps keep strict IEEE arithmetic (no flush-to-zero of subnormals)."""
    return _override("MINIRAI_STRICT_IEEE", on)
