"""What a graded task is, and the helpers that judge a student's answers: for the built-in tasks
(:mod:`minirai.course.tasks`) and for a teacher's own (``minirai grade --tasks-file``).

A :class:`Task`'s ``check(rng)`` is a generator. It draws its inputs from ``rng`` (each seed gives new
shapes, values and settings), yields a :class:`Call` for each call of the student's function, and
receives what that call gave as a :class:`Returned`: the returned value, and the arguments as the
function left them. It judges them with the helpers below, which raise :class:`Failed` with one line
naming the first difference and, where they recognise it, the mistake; it returns a one-line summary
when everything holds::

    def check_double(rng):
        x = rng.standard_normal((int(rng.integers(2, 6)), 3))
        got = yield Call(x)                       # double(x), run in the student's sandbox
        check_unchanged(got, x=0)                 # the argument at position 0 is as it was sent
        error = compare("y", got.value, 2 * x, factors={"2": 2.0})
        return f"matches 2 x (max diff {error:.1e})"

    TASKS = [Task("d1", "double", "a teacher's extra", "twice an array", check_double)]

The student's function runs in the sandbox; the check, and the reference it computes, run in the
grader, so nothing the student's code does can change them.
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Generator

import numpy as np

from .runner import Arg, Closure, Other

__all__ = ["Task", "Call", "Returned", "Failed", "Closure", "Arg", "Other", "compare", "array_of", "number",
           "parts", "check_unchanged", "check_updated", "close", "diagnosis", "type_name", "task_rng"]


class Failed(Exception):
    """A check did not hold; the message says what differs (and, if recognised, why)."""


class Call:
    """One call of the student's function, made in the sandbox: ``yield Call(x, W, b)``.

    Arguments may be NumPy arrays (each call gets fresh copies), numbers, booleans, strings, None,
    tuples and lists of them, and :class:`Closure` (a function built in the sandbox). ``function``
    names another function of the student's than the task's."""

    def __init__(self, *args: Any, function: str | None = None, **kwargs: Any):
        self.args, self.kwargs, self.function = args, kwargs, function


@dataclass
class Returned:
    """What a :class:`Call` gave: ``value`` (what the function returned: arrays, numbers, None, tuples
    and lists of them; any other type arrives as :class:`Other`), ``args`` and ``kwargs`` (each array
    argument as the function left it; other arguments as sent), ``call`` (the Call itself)."""
    call: Call
    value: Any
    args: tuple
    kwargs: dict
    seconds: float = 0.0


@dataclass(frozen=True)
class Task:
    """A graded task: its ``id`` (what ``minirai check 7`` and the gradebook's columns use), the
    student's ``function`` it calls, the ``chapter`` it goes with, a short ``title``, and its
    ``check(rng)`` generator (see the module's docstring)."""
    id: str
    function: str
    chapter: str
    title: str
    check: Callable[[np.random.Generator], Generator[Call, Returned, str]]

    def __post_init__(self):
        if not isinstance(self.id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.id):
            raise ValueError(f"Task: id must be letters, digits, '_', '.' or '-', got {self.id!r}")
        if not isinstance(self.function, str) or not self.function.isidentifier():
            raise ValueError(f"Task {self.id}: function must be a Python name, got {self.function!r}")
        if not callable(self.check):
            raise ValueError(f"Task {self.id}: check must be a generator function check(rng), got "
                             f"{type(self.check).__name__}")


def task_rng(seed: int, task_id: str) -> np.random.Generator:
    """The random numbers task ``task_id`` draws its inputs from, for grading seed ``seed``: the same for
    every student graded with that seed, whichever other tasks are graded."""
    return np.random.default_rng([int(seed), zlib.crc32(task_id.encode("utf-8"))])


# -- reading what came back ------------------------------------------------------------------------------
def type_name(value: Any) -> str:
    return value.type_name if isinstance(value, Other) else type(value).__name__


def array_of(name: str, got: Any, expected: np.ndarray) -> np.ndarray:
    """``got`` as a float64 array of ``expected``'s shape, or a Failed saying what it is instead."""
    if got is None:
        raise Failed(f"{name}: your function returned None (a missing `return`?)")
    if isinstance(got, Other):
        raise Failed(f"{name}: expected an array of shape {expected.shape}, got a {got.type_name}")
    try:
        raw = np.asarray(got)
        if raw.dtype.kind == "c":
            raise Failed(f"{name}: expected real numbers, got complex ones ({raw.dtype})")
        array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{name}: expected an array of shape {expected.shape}, got {type_name(got)}") from None
    if array.shape != expected.shape:
        if array.ndim == 2 and array.T.shape == expected.shape:
            raise Failed(f"{name}: shape {array.shape}, expected {expected.shape}: it is transposed")
        raise Failed(f"{name}: shape {array.shape}, expected {expected.shape}")
    return array


def number(name: str, got: Any) -> float:
    """A returned number as a float (a Python number, a NumPy scalar or a size-1 array)."""
    if got is None:
        raise Failed(f"{name}: your function returned None (a missing `return`?)")
    if isinstance(got, Other):
        raise Failed(f"{name}: expected a number, got a {got.type_name}")
    try:
        value = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Failed(f"{name}: expected a number, got {type_name(got)}") from None
    if value.size != 1:
        raise Failed(f"{name}: expected a number, got an array of shape {value.shape}")
    return float(value.reshape(-1)[0])


def parts(got: Any, count: int, names: str) -> tuple:
    """A returned tuple (or list) of ``count`` parts, or a Failed saying what to return."""
    if not (isinstance(got, (tuple, list)) and len(got) == count):
        raise Failed(f"return {names}, got {type_name(got)}"
                     + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return tuple(got)


# -- comparing, and recognising the usual mistakes --------------------------------------------------------
def close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-10) -> bool:
    return bool(np.all(np.isfinite(got))) and np.allclose(got, expected, rtol=rtol, atol=atol)


def diagnosis(got: np.ndarray, expected: np.ndarray, factors: dict[str, float]) -> str:
    """A one-line name for how ``got`` differs from ``expected``, or "" when none is recognised.

    A ratio is named only when ``got`` is that multiple of ``expected`` in every entry: a named factor
    (``factors``: label -> value) may explain even one number; an unnamed ratio needs at least two
    entries that differ, since any two single numbers are some multiple of each other."""
    if not np.all(np.isfinite(got)):
        return "it holds NaN or inf"
    if not np.any(expected):
        return ""
    if not np.any(got):
        return "you returned zeros"
    scale = float(np.abs(expected).max())
    if float(np.abs(got).max()) < 1e-8 * scale:
        return f"yours is nearly zero everywhere (largest size {float(np.abs(got).max()):.2g})"
    if close(got, -expected):
        return "the sign is flipped (you negated it)"
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(got.T, expected):
        return "it is transposed"
    big = np.abs(expected) > 1e-8 * scale
    ratio = float(np.median(got[big] / expected[big]))
    if not ratio or not np.allclose(got, ratio * expected, rtol=1e-6, atol=1e-12 * scale * abs(ratio)):
        return ""
    for label, value in factors.items():
        for sign, signed in ((1, ""), (-1, "the sign is flipped and ")):
            if math.isclose(ratio, sign * value, rel_tol=1e-6):
                return (f"{signed}a factor {label} too many, or 1/{label} missing "
                        f"(yours is {abs(ratio):.3g} × the expected)")
            if math.isclose(ratio, sign / value, rel_tol=1e-6):
                return (f"{signed}a factor {label} missing, or 1/{label} too many "
                        f"(yours is {abs(ratio):.3g} × the expected)")
    values = expected[big]
    if values.size >= 2 and not np.allclose(values, values[0], rtol=1e-9, atol=0):
        return f"yours is {ratio:.4g} × the expected"
    return ""


def compare(name: str, got: Any, expected: np.ndarray, factors: dict[str, float] | None = None,
            rtol: float = 1e-6, atol: float = 1e-10) -> float:
    """``got`` against ``expected``: a Failed naming the first wrong index, both values and the
    recognised mistake (``factors``: the constants a student might miss, label -> value). Returns
    the largest difference."""
    expected = np.asarray(expected, dtype=np.float64)
    got = array_of(name, got, expected)
    if close(got, expected, rtol, atol):
        return float(np.abs(got - expected).max()) if got.size else 0.0
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol) | ~np.isfinite(got)
    index = tuple(int(i) for i in np.argwhere(wrong)[0]) if got.ndim else ()
    what = diagnosis(got, expected, factors or {})
    at = f" at index {index}" if index else ""
    raise Failed(f"{name}{at}: expected {expected[index]:.6g}, got {got[index]:.6g}" + (f": {what}" if what else ""))


def check_updated(name: str, before: np.ndarray, after: np.ndarray, expected: np.ndarray) -> None:
    """An array the function must update in place, which it left as it was (a rebinding)."""
    if np.array_equal(before, after) and not np.array_equal(before, expected):
        raise Failed(f"{name} did not change: update it in place ({name}[...] = ..., {name} -= ...); rebinding "
                     f"the name ({name} = ...) changes nothing outside your function")


def check_unchanged(got: Returned, **where: int | str) -> None:
    """Each named argument (``name=position`` or ``name="keyword"``) is as it was sent: a Failed naming
    the first changed entry otherwise. Call it before comparing values: an input changed in place
    is then the diagnosis, even where it also explains a wrong value."""
    for name, key in where.items():
        sent = got.call.args[key] if isinstance(key, int) else got.call.kwargs[key]
        after = got.args[key] if isinstance(key, int) else got.kwargs[key]
        if not isinstance(sent, np.ndarray):
            continue
        after = np.asarray(after)
        if after.shape != sent.shape:
            raise Failed(f"your function changed its input {name} in place (its shape became {after.shape}); "
                         "leave it as you found it")
        if np.array_equal(sent, after, equal_nan=True):
            continue
        index = tuple(int(i) for i in np.argwhere(~((sent == after) | (np.isnan(sent) & np.isnan(after))))[0])
        at = f" at index {index}" if index else ""
        raise Failed(f"your function changed its input {name} in place ({name}{at} was {sent[index]:.6g}, "
                     f"it is now {after[index]:.6g}); leave it as you found it: work on a copy "
                     f"({name}.copy()) or on new arrays")
