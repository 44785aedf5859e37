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

An optimizer's state follows its parameters (:class:`StateLayout`, made by ``Optimizer.__init__``):
where pairs lie side by side in one flat array, each of their state entries becomes a view of one
flat array too, so a run's state can be updated in one sweep, and ``optimizer.state[i]["m"]``
still reads (and is) that array's state from the start. Both paths read the same arrays.
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
    # the parameters first, then the gradients: each old array can be freed once its view replaces it,
    # so that at most one extra copy of the parameters (or of the gradients) is held while packing
    flat_params = xp.empty(sum(sizes), dtype)
    for slot, start, size in zip(slots, offsets, sizes):
        param_view = flat_params[start:start + size].reshape(slot.value.shape)
        param_view[...] = slot.value
        slot.params[slot.key] = param_view
    flat_grads = xp.zeros(sum(sizes), dtype)
    for slot, start, size in zip(slots, offsets, sizes):
        grad_view = flat_grads[start:start + size].reshape(slot.params[slot.key].shape)
        grad_view[...] = slot.grads[slot.key]
        slot.grads[slot.key] = grad_view
    return Packed(flat_params, flat_grads, offsets, slots)


Run = tuple[list[int], Array, Array, dict[str, Array]]   # (pair indices, params, grads, state)


class StateLayout:
    """An optimizer's state laid out like its parameters: ``runs`` of adjacent pairs, each with one
    flat array per state key whose views are the pairs' state entries (state of another shape, or a
    pair alone, keeps its own arrays and is a run of one)."""

    def __init__(self, pairs: list[tuple[Array, Array]], state: list[dict[str, Array]]) -> None:
        self.pairs = [(id(p), id(g)) for p, g in pairs]
        self.runs = lay_out_state(pairs, state)
        self.entries = [(members[0], run_state) for members, _, _, run_state in self.runs if len(members) == 1]
        self.views = [(i, key, state[i][key]) for members, *_ in self.runs if len(members) > 1
                      for i in members for key in state[i]]

    def current(self, pairs: list[tuple[Array, Array]], state: list[dict[str, Array]]) -> bool:
        """Whether ``pairs`` and ``state`` are still those laid out (nothing replaced since)."""
        return (self.pairs == [(id(p), id(g)) for p, g in pairs]
                and all(state[i] is entry for i, entry in self.entries)
                and all(state[i].get(key) is view for i, key, view in self.views))


def lay_out_state(pairs: list[tuple[Array, Array]], state: list[dict[str, Array]]) -> list[Run]:
    """Find the runs of adjacent pairs and move each run's state into flat arrays (the ``state[i]``
    entries become views, with the same values)."""
    runs = []
    for members, params, grads in contiguous_runs(pairs):
        first = state[members[0]]
        if len(members) == 1 or any(state[i].keys() != first.keys()
                                    or any(tuple(v.shape) != tuple(pairs[i][0].shape) or v.dtype != first[k].dtype
                                           for k, v in state[i].items()) for i in members):
            runs += [([i], *pairs[i], state[i]) for i in members]      # alone, or state of another shape
            continue
        xp = backend.array_module(params)
        flat_state = {}
        for key, value in first.items():     # one key at a time: its old arrays are freed as their views replace them
            flat = flat_state[key] = xp.empty(params.shape, value.dtype)
            offset = 0
            for i in members:
                size = pairs[i][0].size
                view = flat[offset:offset + size].reshape(state[i][key].shape)
                view[...] = state[i][key]
                state[i][key] = view
                offset += size
        runs.append((members, params, grads, flat_state))
    return runs


def contiguous_runs(pairs: list[tuple[Array, Array]]) -> list[tuple[list[int], Array, Array]]:
    """Group the pairs that lie side by side in one flat array (in memory order).

    Returns ``(members, params, grads)`` per run: the indices of its pairs, in memory order,
    and one flat view over their parameters and over their gradients (the pair itself for a
    run of one).
    """
    located = {i: _flat_offset(p, g) for i, (p, g) in enumerate(pairs)}
    alone = [i for i, offset in located.items() if offset is None]
    by_memory = sorted((i for i in located if located[i] is not None),
                       key=lambda i: (id(pairs[i][0].base), located[i]))
    runs: list[tuple[list[int], Array, Array]] = []
    members: list[int] = []

    def close() -> None:
        if len(members) == 1:
            alone.append(members[0])
        elif members:
            p0, g0 = pairs[members[0]]
            start, end = located[members[0]], located[members[-1]] + pairs[members[-1]][0].size
            runs.append((list(members), p0.base[start:end], g0.base[start:end]))
        members.clear()

    for i in by_memory:
        if members:
            last = members[-1]
            p, g = pairs[i]
            follows = (p.base is pairs[last][0].base and g.base is pairs[last][1].base
                       and located[i] == located[last] + pairs[last][0].size)
            if not follows:
                close()
        members.append(i)
    close()
    runs += [([i], pairs[i][0], pairs[i][1]) for i in sorted(alone)]
    return runs


def _flat_offset(p: Array, g: Array) -> int | None:
    """Where ``p`` starts in its 1-D base (the same offset for ``g`` in its base), else None."""
    bases = (getattr(p, "base", None), getattr(g, "base", None))
    if any(b is None or b.ndim != 1 or not b.flags.c_contiguous for b in bases):
        return None
    if not (p.flags.c_contiguous and g.flags.c_contiguous):
        return None
    pointers = [backend.data_pointer(a) for a in (p, bases[0], g, bases[1])]
    if None in pointers:
        return None
    offset, remainder = divmod(pointers[0] - pointers[1], p.itemsize)
    if remainder or (pointers[2] - pointers[3]) != offset * g.itemsize:
        return None
    return offset
