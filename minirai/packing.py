"""Packing many parameters into one flat array: a performance path.

An optimizer's rule is elementwise, so it can update *all* parameters in one pass of
each operation instead of one pass per array, if they sit side by side in memory.
:func:`pack` copies each parameter (and its gradient) into one flat array and puts a
*view* of that array back where the parameter was (``layer.params["W"]`` is then a
window onto the flat array). Everything keeps working as before: layers read and write
their views, and the optimizer updates the flat array.

Pack *before* anything keeps a reference to the old arrays (an optimizer, say):
:func:`minirai.network.mlp` packs its network as it builds it. The layout groups
parameters by name (every ``W``, then every ``b``), so the weights of consecutive layers
of one shape lie side by side and a stack of them is one more view (RAI's stacked path).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, MutableMapping, MutableSequence

from . import backend

Array = Any
Holder = MutableMapping[str, Array] | MutableSequence[Array]


@dataclass
class Slot:
    """Where one parameter and its gradient live: ``params[key]`` and ``grads[key]``."""
    params: Holder
    grads: Holder
    key: Any

    @property
    def value(self) -> Array:
        return self.params[self.key]


@dataclass
class Packed:
    """The flat parameter and gradient arrays, and where each slot starts in them."""
    params: Array
    grads: Array
    offsets: list[int]
    slots: list[Slot]

    def stack(self, arrays: list[Array], flat: Array) -> Array | None:
        """Packed ``arrays`` (one shape, side by side, in this order) as one view (count, *shape) of
        ``flat`` (``self.params`` or ``self.grads``); None if they are not laid out that way."""
        index = {id(slot.value): k for k, slot in enumerate(self.slots)}
        if any(id(a) not in index for a in arrays):
            return None
        first = index[id(arrays[0])]
        shape, size = tuple(arrays[0].shape), int(arrays[0].size)
        for k, a in enumerate(arrays):
            if index[id(a)] != first + k or tuple(a.shape) != shape:
                return None
        start = self.offsets[first]
        return flat[start:start + len(arrays) * size].reshape((len(arrays),) + shape)


def pack(slots: list[Slot]) -> Packed:
    """Copy every slot's parameter and gradient into two flat arrays and put views back."""
    if not slots:
        raise ValueError("nothing to pack")
    first = slots[0].value
    xp = backend.array_module(first)
    dtype = first.dtype
    seen: set[int] = set()
    for slot in slots:
        if slot.value.dtype != dtype:
            raise TypeError(f"cannot pack arrays of dtypes {dtype} and {slot.value.dtype} together")
        if id(slot.value) in seen:
            raise ValueError("the same parameter appears twice in the slots to pack")
        seen.add(id(slot.value))
    sizes = [int(slot.value.size) for slot in slots]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    flat_params = xp.empty(sum(sizes), dtype)
    flat_grads = xp.zeros(sum(sizes), dtype)
    for slot, start, size in zip(slots, offsets, sizes):
        shape = slot.value.shape
        param_view = flat_params[start:start + size].reshape(shape)
        param_view[...] = slot.value
        grad_view = flat_grads[start:start + size].reshape(shape)
        grad_view[...] = slot.grads[slot.key]
        slot.params[slot.key] = param_view
        slot.grads[slot.key] = grad_view
    return Packed(flat_params, flat_grads, offsets, slots)
