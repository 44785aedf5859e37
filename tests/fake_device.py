"""A stand-in "device" array module that behaves like CuPy towards NumPy.

Why it exists: on a GPU, CuPy arrays live in device memory, and CuPy refuses
to mix them silently with NumPy. ``np.asarray(gpu_array)`` raises, and so does
``gpu_array + numpy_array``. Code that passes every test on the CPU can
therefore still break on the first GPU run. This module copies that
strictness on the CPU, so the tests can catch device mistakes without a GPU.
The engine must never call NumPy directly on device arrays (it asks
``minirai.backend`` for ``xp`` instead), and it converts to NumPy only at the
edges through ``minirai.backend.to_numpy``.

Usage::

    import fake_device
    from minirai import backend
    backend.use_module(fake_device)   # backend.xp() is now this module

How it works: :class:`ndarray` wraps a NumPy array in ``self._data``. It is
not a subclass of ``numpy.ndarray``. Operators, ufuncs (``__array_ufunc__``)
and NumPy functions (``__array_function__``) unwrap device arrays, run NumPy,
and wrap the results again. They raise ``TypeError`` when a plain NumPy array
(ndim >= 1) is among the inputs. Module attributes mirror the NumPy namespace
through ``__getattr__``. Only ``asarray``/``array`` accept host data, because
they are the explicit host-to-device copy, as in ``cupy.asarray``.

Like CuPy's arrays, the stand-in's have ``.base`` (the array that owns the memory, the same
object each time), ``.flags`` and ``.data.ptr``, so code that finds arrays lying side by side
(the packed optimizer's runs) takes on it the path it takes on CuPy. Unlike CuPy, it refuses
``float()``, ``int()``, ``bool()`` and ``complex()``: on a GPU each of those waits for the device
(a host synchronisation), so the engine must go through ``minirai.backend``'s explicit
``to_numpy``/``to_float``, which end in :func:`asnumpy` or ``.get()``. Those count:
:data:`counts` holds ``"syncs"`` (copies to the host) and ``"kernels"`` (device operations:
each ufunc, NumPy function or array method run on device arrays, as each would be a kernel
launch on a GPU; indexing and creation by ``asarray`` are counted apart as ``"indexing"`` and
``"copies"``). :func:`reset_counts` sets them to 0.

Limitations: there is no ``random`` generator type. ``random.default_rng`` hands
back NumPy's generator, whose draws are host arrays, so wrap them with
``asarray``. Python lists are refused as ufunc operands, as CuPy refuses them,
but elsewhere they are accepted.
"""
from __future__ import annotations

import functools
import types
import weakref
from typing import Any

import numpy as _np
from numpy.lib.mixins import NDArrayOperatorsMixin

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_SCALAR = ("{kind}() of a device array waits for the device (a host synchronisation); use "
           "minirai.backend.to_float / to_numpy, which do it once, explicitly")

counts = {"syncs": 0, "kernels": 0, "indexing": 0, "copies": 0}
_owners: "weakref.WeakValueDictionary[int, ndarray]" = None  # type: ignore[assignment]  (set below)


def reset_counts() -> dict:
    """Set every count to 0; returns the counts as they were."""
    before = dict(counts)
    for key in counts:
        counts[key] = 0
    return before


def _unsupported(x: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(x)}")


def _unwrap(x: Any, originals: dict, host_ok: bool = False) -> Any:
    """Replace device arrays by their NumPy data (recursively in lists/tuples).

    ``originals`` maps ``id(data)`` back to the device array, so a result that
    *is* an input buffer (``out=``, in-place ops) comes back as the same object.
    """
    if isinstance(x, ndarray):
        originals[id(x._data)] = x
        return x._data
    if isinstance(x, _np.ndarray) and x.ndim >= 1 and not host_ok:
        raise _unsupported(x)
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v, originals, host_ok) for v in x)
    return x


def _wrap(x: Any, originals: dict) -> Any:
    """Wrap NumPy results as device arrays; NumPy scalars become 0-d arrays (as in CuPy)."""
    if isinstance(x, _np.ndarray):
        original = originals.get(id(x))
        return original if original is not None else ndarray(x)
    if isinstance(x, _np.generic):
        return ndarray(_np.asarray(x))
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # named tuples (np.unique_all, ...)
        return type(x)(*(_wrap(v, originals) for v in x))
    if type(x) in (list, tuple):
        return type(x)(_wrap(v, originals) for v in x)
    return x


def _call(fn: Any, args: tuple, kwargs: dict, strict: bool = False) -> Any:
    """Run NumPy's ``fn`` on unwrapped arguments and wrap what it returns (one "kernel")."""
    counts["kernels"] += 1
    if strict:  # ufunc operands: CuPy accepts arrays and scalars, not lists
        if "where" in kwargs:  # CuPy's ufuncs take no where= mask (cupy.copyto does)
            raise TypeError("Wrong arguments {'where'}: CuPy ufuncs do not support where=")
        for a in args:
            if isinstance(a, (list, tuple)):
                raise _unsupported(a)
    originals: dict = {}
    args = _unwrap(tuple(args), originals)
    kwargs = {k: _unwrap(v, originals) for k, v in kwargs.items()}
    return _wrap(fn(*args, **kwargs), originals)


class ndarray(NDArrayOperatorsMixin):
    """A "device" array: a NumPy array that refuses to be treated as one."""

    def __init__(self, data: _np.ndarray):
        if not isinstance(data, _np.ndarray):
            raise TypeError(f"ndarray wraps a numpy.ndarray, got {type(data)}; use asarray()")
        self._data = data
        if data.base is None:
            _owners[id(data)] = self      # the owner of this memory, for the views' .base

    # --- the NumPy protocols -------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _call(getattr(ufunc, method), inputs, kwargs, strict=(method == "__call__"))

    def __array_function__(self, func, types, args, kwargs):
        return _call(func, args, kwargs)

    def get(self) -> _np.ndarray:
        """An explicit copy to a NumPy array (as ``cupy.ndarray.get``): one host synchronisation."""
        counts["syncs"] += 1
        return self._data.copy()

    @property
    def base(self) -> "ndarray | None":
        """The array that owns this view's memory (None for an owner), the same object each time."""
        owner = self._data.base
        if owner is None:
            return None
        found = _owners.get(id(owner)) if isinstance(owner, _np.ndarray) else None
        return found if found is not None and found._data is owner else ndarray(owner)

    @property
    def flags(self) -> Any:
        """``c_contiguous``, ``f_contiguous``, ``owndata`` (as ``cupy.ndarray.flags``)."""
        f = self._data.flags
        return types.SimpleNamespace(c_contiguous=f.c_contiguous, f_contiguous=f.f_contiguous,
                                     owndata=f.owndata)

    @property
    def data(self) -> Any:
        """The memory: ``.ptr`` is the address of the first element (as ``cupy.ndarray.data.ptr``)."""
        return types.SimpleNamespace(ptr=int(self._data.__array_interface__["data"][0]))

    # --- attributes ------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    itemsize = property(lambda self: self._data.itemsize)
    nbytes = property(lambda self: self._data.nbytes)
    strides = property(lambda self: self._data.strides)
    T = property(lambda self: ndarray(self._data.T))

    # --- indexing ----------------------------------------------------------------
    def __getitem__(self, key):
        counts["indexing"] += 1
        originals: dict = {}
        return _wrap(self._data[_unwrap(key, originals, host_ok=True)], originals)

    def __setitem__(self, key, value):
        counts["indexing"] += 1
        self._data[_unwrap(key, {}, host_ok=True)] = _unwrap(value, {})

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # --- conversions CuPy allows for size-1 arrays, each a hidden synchronisation: refused ---------
    def __float__(self) -> float:
        raise TypeError(_SCALAR.format(kind="float"))

    def __int__(self) -> int:
        raise TypeError(_SCALAR.format(kind="int"))

    def __bool__(self) -> bool:
        raise TypeError(_SCALAR.format(kind="bool"))

    def __complex__(self) -> complex:
        raise TypeError(_SCALAR.format(kind="complex"))

    def __index__(self) -> int:
        raise TypeError(_SCALAR.format(kind="index"))

    def __repr__(self) -> str:
        return "device_" + repr(self._data)

    def __str__(self) -> str:
        return str(self._data)


def _method(name: str):
    fn = getattr(_np.ndarray, name)

    def method(self, *args, **kwargs):
        return _call(fn, (self, *args), kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Like numpy.ndarray.{name}, on the device."
    return method


for _name in ("reshape", "ravel", "flatten", "transpose", "swapaxes", "squeeze", "sum", "mean",
              "max", "min", "argmax", "argmin", "prod", "std", "var", "cumsum", "any", "all",
              "clip", "dot", "astype", "copy", "fill", "view", "take",
              "repeat", "nonzero", "round", "conj", "diagonal", "trace", "sort", "argsort"):
    setattr(ndarray, _name, _method(_name))


def _to_host(name: str):
    def method(self, *args, **kwargs):
        counts["syncs"] += 1
        return getattr(self._data, name)(*args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Like cupy.ndarray.{name}: a copy to the host (one synchronisation)."
    return method


for _name in ("item", "tolist"):
    setattr(ndarray, _name, _to_host(_name))

_owners = weakref.WeakValueDictionary()

DeviceArray = ndarray


# --- module-level functions -------------------------------------------------------
def asarray(a: Any, dtype: Any = None, order: Any = None) -> ndarray:
    """Device array from ``a``; host data (NumPy arrays, lists) is copied over, as in ``cupy.asarray``."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    return array(a, dtype=dtype, order=order or "K")


def array(obj: Any, dtype: Any = None, copy: bool = True, order: str = "K", ndmin: int = 0) -> ndarray:
    """A new device array (always a copy of host data)."""
    if isinstance(obj, ndarray) and not copy and (dtype is None or obj.dtype == dtype) and obj.ndim >= ndmin:
        return obj
    counts["copies"] += 1
    data = _unwrap(obj, {}, host_ok=True)
    return ndarray(_np.array(data, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a: Any) -> _np.ndarray:
    """An explicit copy to NumPy (as ``cupy.asnumpy``; a device array's is one synchronisation)."""
    return a.get() if isinstance(a, ndarray) else _np.array(a)


class _Wrapped:
    """A NumPy function or ufunc that takes and returns device arrays."""

    def __init__(self, fn: Any):
        functools.update_wrapper(self, fn, updated=())
        self._fn = fn
        self._strict = isinstance(fn, _np.ufunc)

    def __call__(self, *args, **kwargs):
        return _call(self._fn, args, kwargs, strict=self._strict)

    def __getattr__(self, name):  # ufunc methods: add.reduce, add.at, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return _device_attr(getattr(self._fn, name))

    def __repr__(self) -> str:
        return f"<device {self._fn!r}>"


class _Namespace:
    """A NumPy submodule (linalg, fft, ...) seen through the device."""

    def __init__(self, module: types.ModuleType):
        self._module = module

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _device_attr(getattr(self._module, name))


def _device_attr(obj: Any) -> Any:
    if isinstance(obj, types.ModuleType):
        return _Namespace(obj)
    if callable(obj) and not isinstance(obj, type):  # functions and ufuncs, not dtypes/classes
        return _Wrapped(obj)
    return obj  # constants (pi, inf, nan, newaxis) and types (float32, dtype, errstate)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = _device_attr(getattr(_np, name))
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value
