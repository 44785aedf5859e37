r"""The CPU's flush-to-zero switch, for training loops.

Numbers below float32's smallest normal value (1.2e-38) are *subnormal*: they keep a few bits
of precision, and x86 CPUs compute with them through a microcode assist, 20-200x slower than
usual. A deep sigmoid net makes them all the time: its backward gradient shrinks ~7x per
layer, and saturated sigmoids give activations of 1e-20 and less, so a weight gradient
dW = x^T dy of two tiny factors lands there. Measured here: a 100 x 100 matmul with subnormal
products took 3.4 ms instead of 18 µs, and Adam's g² of tiny gradients made its update 5x slower.

x86 CPUs have two switches in the MXCSR register of each thread: FTZ (flush to zero: a
subnormal *result* is written as 0) and DAZ (denormals are zero: a subnormal *input* is read
as 0). With both on, subnormal numbers never occur and nothing slows down. Every change is
below 1.2e-38, far below anything an update can use. PyTorch offers the same switch
(``torch.set_flush_denormal(True)``); TensorFlow and JAX turn it on by default on the CPU.

:func:`flushing_denormals` turns both on for the calling thread while ``fit`` and ``RAI.fit``
compute a step, on the fast and the textbook path alike (see ``minirai.train.TrainingLoop``);
records, callbacks and everything outside training keep strict IEEE arithmetic, and
``minirai.strict_ieee()`` (or ``MINIRAI_STRICT_IEEE=1``) keeps it inside training too. Python
cannot write MXCSR, so this module asks LLVM (through llvmlite, a dependency of Numba, declared
by minirai with the versions that work) for the two tiny functions that read and write it.
The IR is first given with typed pointers (``i8*``), which LLVM 14 (llvmlite 0.43, the oldest
that Numba 0.60 uses) needs and later LLVMs still read (checked with llvmlite 0.43 and 0.50),
then with opaque pointers (``ptr``) for an LLVM that reads only those. On another processor the
switch does nothing, and :func:`unavailable_reason` says why.
"""
from __future__ import annotations

import ctypes
import platform
from contextlib import contextmanager
from typing import Callable, Iterator

FTZ = 1 << 15     # MXCSR bit 15: flush subnormal results to zero
DAZ = 1 << 6      # MXCSR bit 6: read subnormal inputs as zero

# Two functions in LLVM's assembly language: stmxcsr stores the register, ldmxcsr loads it.
_MXCSR_IR = r"""
declare void @llvm.x86.sse.stmxcsr(ptr)
declare void @llvm.x86.sse.ldmxcsr(ptr)

define i32 @read_mxcsr() {
  %slot = alloca i32
  call void @llvm.x86.sse.stmxcsr(ptr %slot)
  %value = load i32, ptr %slot
  ret i32 %value
}

define void @write_mxcsr(i32 %value) {
  %slot = alloca i32
  store i32 %value, ptr %slot
  call void @llvm.x86.sse.ldmxcsr(ptr %slot)
  ret void
}
"""

# The same with typed pointers, for LLVM 14 (llvmlite 0.43), which does not read "ptr".
_MXCSR_IR_TYPED = r"""
declare void @llvm.x86.sse.stmxcsr(i8*)
declare void @llvm.x86.sse.ldmxcsr(i8*)

define i32 @read_mxcsr() {
  %slot = alloca i32
  %bytes = bitcast i32* %slot to i8*
  call void @llvm.x86.sse.stmxcsr(i8* %bytes)
  %value = load i32, i32* %slot
  ret i32 %value
}

define void @write_mxcsr(i32 %value) {
  %slot = alloca i32
  %bytes = bitcast i32* %slot to i8*
  store i32 %value, i32* %slot
  call void @llvm.x86.sse.ldmxcsr(i8* %bytes)
  ret void
}
"""

_access: tuple[Callable[[], int], Callable[[int], None]] | None = None
_unavailable_reason: str | None = None
_keep_alive: list = []     # the compiled code must outlive the function pointers


def mxcsr_access() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """``(read, write)`` for this thread's MXCSR register, or None where that is not possible."""
    global _access, _unavailable_reason
    if _access is None and _unavailable_reason is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            _unavailable_reason = f"not an x86-64 processor ({platform.machine()})"
            return None
        try:
            import llvmlite.binding as llvm  # noqa: PLC0415 - only when first needed
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            try:                          # typed pointers: LLVM 14 (llvmlite 0.43) and later accept them
                module = llvm.parse_assembly(_MXCSR_IR_TYPED)
            except RuntimeError:          # an LLVM that takes only opaque pointers
                module = llvm.parse_assembly(_MXCSR_IR)
            machine = llvm.Target.from_default_triple().create_target_machine()
            engine = llvm.create_mcjit_compiler(module, machine)
            engine.finalize_object()
            read = ctypes.CFUNCTYPE(ctypes.c_uint32)(engine.get_function_address("read_mxcsr"))
            write = ctypes.CFUNCTYPE(None, ctypes.c_uint32)(engine.get_function_address("write_mxcsr"))
        except Exception as error:     # no llvmlite, or an LLVM without these intrinsics
            _unavailable_reason = f"cannot reach MXCSR ({type(error).__name__}: {error})"
            return None
        _keep_alive.append(engine)
        _access = (read, write)
    return _access


def available() -> bool:
    """True where :func:`flushing_denormals` really switches the CPU (x86-64 with llvmlite)."""
    return mxcsr_access() is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True)."""
    mxcsr_access()
    return _unavailable_reason


@contextmanager
def flushing_denormals(enabled: bool = True) -> Iterator[None]:
    """Inside the block, this thread's CPU reads and writes subnormal numbers as 0 (FTZ + DAZ).

    The previous setting comes back afterwards, also after an exception. A no-op where
    ``enabled`` is False or the switch is not available (see :func:`available`).
    """
    access = mxcsr_access() if enabled else None
    if access is None:
        yield
        return
    read, write = access
    saved = read()
    write(saved | FTZ | DAZ)
    try:
        yield
    finally:
        write(saved)
