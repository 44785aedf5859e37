"""Where arrays live: NumPy on the CPU, or CuPy on a GPU.

This is the only module that knows about CuPy. Everything else asks it for an
array module (``xp``) and writes ``xp.exp(x)``, ``xp.zeros(...)`` and so on, so
the same code runs on both. Conversion to NumPy happens only at the edges
(plots, reports, ``summary.json``) through :func:`to_numpy`.

Choosing the device
-------------------
* ``MINIRAI_DEVICE=cpu``  always NumPy.
* ``MINIRAI_DEVICE=gpu``  CuPy; a clear error if CuPy or a CUDA device is missing.
* ``MINIRAI_DEVICE=auto`` (the default) CuPy when it imports and a device answers,
  otherwise NumPy.

:func:`set_device` overrides the environment from Python. Tests can also
register a stand-in array module (see ``tests/fake_device.py``) with
:func:`use_module`, which behaves like CuPy: it refuses implicit conversion to
NumPy, so device mistakes are caught without a GPU.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator

import numpy as np

DEVICES = ("cpu", "gpu", "auto")

_active: ModuleType | None = None   # the array module in use, chosen lazily
_device_modules: list[ModuleType] = []  # non-NumPy modules we have seen (CuPy, stand-ins)


_probe: tuple[ModuleType | None, str] | None = None    # CuPy (or None) and why, found once
_choice = "not chosen yet"                              # how the active module was chosen, in words


def _import_cupy() -> ModuleType | None:
    """Return CuPy if it imports, a CUDA device answers and a kernel runs, else None (see :func:`probe_gpu`)."""
    return probe_gpu()[0]


def probe_gpu() -> tuple[ModuleType | None, str]:
    """``(cupy, reason)``: CuPy if it imports, a device answers and a first kernel runs; else None,
    and in both cases one line saying why. The answer is found once per process.

    A first kernel is run because a CuPy wheel built for another CUDA version imports, and counts
    the devices, but fails at its first kernel when the matching CUDA libraries are missing.
    """
    global _probe
    if _probe is not None:
        return _probe
    try:
        import cupy  # noqa: PLC0415 - the one place CuPy is imported
    except ImportError as error:
        _probe = (None, f"CuPy is not installed ({error}); see the README for the gpu-cuda12/gpu-cuda13 extras")
        return _probe
    except Exception as error:          # a broken installation raises anything
        _probe = (None, f"CuPy is installed but failed to import ({type(error).__name__}: {error})")
        return _probe
    version = getattr(cupy, "__version__", "?")
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:
        _probe = (None, f"CuPy {version} imports, but no CUDA device answers ({type(error).__name__}: {error})")
        return _probe
    if count < 1:
        _probe = (None, f"CuPy {version} imports, but it sees no CUDA device")
        return _probe
    try:
        (cupy.arange(4, dtype=cupy.float32) * 2).sum().get()
    except Exception as error:
        _probe = (None, f"CuPy {version} sees {count} CUDA device(s) but cannot run a kernel "
                        f"({type(error).__name__}: {error}); install the extra that matches the driver's CUDA "
                        "version (gpu-cuda12 or gpu-cuda13)")
        return _probe
    _probe = (cupy, f"CuPy {version} runs on {_gpu_name(cupy)}")
    return _probe


def _gpu_name(cupy: ModuleType) -> str:
    try:
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return "a CUDA device"


def gpu_available() -> bool:
    """True when CuPy imports, at least one CUDA device answers and a kernel runs."""
    return _import_cupy() is not None


def set_device(device: str, *, source: str = "set_device") -> ModuleType:
    """Choose where new arrays live: ``"cpu"``, ``"gpu"`` or ``"auto"``.

    Returns the array module now in use. Asking for ``"gpu"`` without a usable GPU raises
    ``RuntimeError`` saying why. ``"auto"`` falls back to the CPU; when CuPy is installed but
    cannot be used, it says why in one line on stderr (the reason is always in
    :func:`device_report` and ``minirai info``).
    """
    global _active, _choice
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    device = device.lower()
    if device == "cpu":
        _active, _choice = np, f"cpu, as asked ({source})"
        return np
    cupy, reason = probe_gpu()
    if cupy is None:
        if device == "gpu":
            raise RuntimeError(f"device 'gpu' was requested ({source}) but no GPU is usable: {reason}. Use "
                               "device 'cpu', or see `minirai info`.")
        _active, _choice = np, f"auto chose the CPU: {reason}"
        if not reason.startswith("CuPy is not installed"):
            import sys  # noqa: PLC0415
            print(f"minirai: device auto: using the CPU: {reason}", file=sys.stderr)
        return np
    _register(cupy)
    _active, _choice = cupy, (f"gpu, as asked ({source}): {reason}" if device == "gpu"
                              else f"auto chose the GPU: {reason}")
    return cupy


def device_report() -> dict[str, Any]:
    """What ``minirai info`` prints: the device in use, how it was chosen, and the GPU as CuPy sees it."""
    module = xp()
    report: dict[str, Any] = {"device": device_name(module), "chosen": _choice, "numpy": np.__version__}
    cupy, reason = probe_gpu()
    report["gpu"] = reason
    if cupy is not None:
        try:
            runtime = cupy.cuda.runtime
            free, total = runtime.memGetInfo()
            report.update(cupy=cupy.__version__, cuda_runtime=_cuda_version(runtime.runtimeGetVersion()),
                          cuda_driver=_cuda_version(runtime.driverGetVersion()), gpu_name=_gpu_name(cupy),
                          gpu_memory=f"{total / 2 ** 30:.1f} GiB ({free / 2 ** 30:.1f} GiB free)")
        except Exception as error:      # a report never fails
            report["gpu_details"] = f"unavailable ({type(error).__name__}: {error})"
    return report


def _cuda_version(number: int) -> str:
    """CUDA's integer version (12040) as text (12.4)."""
    return f"{number // 1000}.{number % 1000 // 10}"


def use_module(module: ModuleType) -> ModuleType:
    """Make ``module`` (NumPy, CuPy or a NumPy-like stand-in) the active array module.

    The module must provide ``ndarray`` and ``asnumpy`` like CuPy does (NumPy is
    accepted as it is). Returns the previously active module so callers can restore it.
    """
    global _active, _choice
    previous = xp()
    _choice = f"{device_name(module)}, set by use_module"
    if module is not np:
        for name in ("ndarray", "asnumpy", "asarray"):
            if not hasattr(module, name):
                raise TypeError(f"array module {module.__name__!r} lacks {name!r}; it cannot be used as a backend")
        _register(module)
    _active = module
    return previous


def _register(module: ModuleType) -> None:
    if module not in _device_modules:
        _device_modules.append(module)


def xp() -> ModuleType:
    """The active array module (chosen from ``MINIRAI_DEVICE`` on first use)."""
    if _active is None:
        text = os.environ.get("MINIRAI_DEVICE", "auto")
        if text.lower() not in DEVICES:
            raise ValueError(f"MINIRAI_DEVICE must be one of {DEVICES}, got {text!r}")
        set_device(text, source="MINIRAI_DEVICE" if "MINIRAI_DEVICE" in os.environ else "the default, auto")
    return _active  # type: ignore[return-value]


def device_name(module: ModuleType | None = None) -> str:
    """``"cpu"`` for NumPy, ``"gpu"`` for CuPy, otherwise the module's name."""
    module = module or xp()
    if module is np:
        return "cpu"
    if module.__name__ == "cupy":
        return "gpu"
    return module.__name__


def array_module(*arrays: Any) -> ModuleType:
    """The array module that owns ``arrays`` (like ``cupy.get_array_module``).

    Mixing NumPy arrays with device arrays is a clear ``TypeError`` rather than
    the confusing error the device library would raise later.
    """
    if len(arrays) == 1 and type(arrays[0]) is np.ndarray:
        return np                        # the common case, answered without a loop
    found: ModuleType | None = None
    for a in arrays:
        if a is None or np.isscalar(a):
            continue
        module = np if isinstance(a, np.ndarray) else None
        for device_module in _device_modules:
            if isinstance(a, device_module.ndarray):
                module = device_module
        if module is None:
            continue
        if found is not None and module is not found:
            raise TypeError(
                f"arrays live on different devices ({device_name(found)} and {device_name(module)}); "
                "move them with minirai.backend.to_device or to_numpy first")
        found = module
    return found or np


def is_device_array(a: Any) -> bool:
    """True for an array of a non-NumPy module (CuPy or a stand-in)."""
    return any(isinstance(a, m.ndarray) for m in _device_modules)


def to_numpy(a: Any) -> np.ndarray:
    """Copy ``a`` to a NumPy array (the edge: plots, reports, JSON)."""
    for module in _device_modules:
        if isinstance(a, module.ndarray):
            return module.asnumpy(a)
    return np.asarray(a)


def to_device(a: Any, module: ModuleType | None = None) -> Any:
    """Move ``a`` onto ``module`` (default: the active module)."""
    module = module or xp()
    if module is np:
        return to_numpy(a)
    if isinstance(a, module.ndarray):
        return a
    return module.asarray(to_numpy(a))


def to_float(a: Any) -> float:
    """A Python float from a 0-d or size-1 array on any device."""
    return float(to_numpy(a).reshape(-1)[0]) if not isinstance(a, (float, int)) else float(a)


def to_bool(a: Any) -> bool:
    """A Python bool from a 0-d or size-1 array on any device (one explicit copy to the host)."""
    return bool(to_numpy(a).reshape(-1)[0]) if not isinstance(a, (bool, np.bool_)) else bool(a)


def data_pointer(a: Any) -> int | None:
    """The address of ``a``'s first element (NumPy or CuPy), or None where unknown."""
    if isinstance(a, np.ndarray):
        return int(a.__array_interface__["data"][0])
    data = getattr(a, "data", None)
    return int(data.ptr) if hasattr(data, "ptr") else None


def synchronize() -> None:
    """Wait for queued device work (a no-op on NumPy); benchmarks call this before reading a clock."""
    module = xp()
    if device_name(module) == "gpu":
        module.cuda.Stream.null.synchronize()


DEFAULT_DTYPE = np.float32
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype: Any = None) -> np.dtype:
    """Check and normalise a floating dtype (float32 by default, float64 for gradient checks)."""
    if dtype is None:
        return np.dtype(DEFAULT_DTYPE)
    try:
        d = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if d not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {d}")
    return d


def blas_threads_default() -> int:
    """The threads a training step may use: ``MINIRAI_THREADS`` if set, else 1 (the fast path's workers;
    see :class:`minirai.train.TrainingLoop`; BLAS itself stays at one thread in training loops)."""
    text = os.environ.get("MINIRAI_THREADS", "1")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"MINIRAI_THREADS must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"MINIRAI_THREADS must be a positive integer, got {value}")
    return value


@contextmanager
def blas_threads(threads: int | None = None) -> Iterator[None]:
    """Limit NumPy's BLAS to ``threads`` threads (default: ``MINIRAI_THREADS``, else 1).

    Training loops ask for one: the matrices here are small (100 x 100), and measured on a 2-core
    machine a deep RAI step took 25 ms with one OpenBLAS thread and over 1.5 s with two while the
    other core was busy, because BLAS threads spin waiting for each other. Independent products run
    on minirai's own worker threads instead (``MINIRAI_THREADS``, :mod:`minirai.fast.workers`).
    """
    if _active is not None and _active is not np:
        yield                          # the GPU does its own scheduling
        return
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=threads or blas_threads_default(), user_api="blas"):
        yield
