"""Packing many parameters into one flat array: a performance path.

An optimizer's rule is elementwise, so it can update *all* parameters in one pass of
each operation instead of one pass per array, if they sit side by side in memory.
:func:`pack` copies each parameter (and its gradient) into one flat array and puts a
*view* of that array back where the parameter was (``layer.params["W"]`` is then a
window onto the flat array). Everything keeps working as before: layers read and write
their views, and the optimizer updates the flat array.

The order of the slots decides the layout; RAI's stacked path asks for the weights of
identical blocks to lie next to each other so a stack of them is one more view.
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

    def view(self, flat: Array, first: int, count: int) -> Array:
        """Slots ``first .. first+count-1`` (all of one shape) as one stacked view (count, *shape)."""
        shape = tuple(self.slots[first].value.shape)
        start = self.offsets[first]
        size = int(self.slots[first].value.size)
        for k in range(first, first + count):
            if tuple(self.slots[k].value.shape) != shape or self.offsets[k] != start + (k - first) * size:
                raise ValueError("slots to stack must have one shape and lie next to each other")
        return flat[start:start + count * size].reshape((count,) + shape)


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
