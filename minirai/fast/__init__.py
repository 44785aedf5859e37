"""The fast path: the same numbers as the textbook methods, computed with less overhead.

The methods a learner steps into (each layer's and loss's ``forward``/``backward``,
``Sequential``'s two loops, each optimizer's ``update``, ``RAI.forward``/``backward``) are
written as the math. The training loops (``fit``, ``RAI.fit``) run their twins from here:

==================  =======================================================================
``chain``           a Sequential's forward/backward into reused buffers, fused sigmoid passes,
                    no arithmetic below a gradient that vanished to exactly 0
``stacking``        RAI's runs of identical blocks as batched forwards/backwards, in pieces
``optim``           an optimizer's step over packed runs, one compiled loop per rule
``packing``         parameters (and RAI's tables) as views of one flat array
``kernels``         the compiled (Numba) loops
``expf``            NumPy's float32 exp, compiled: the sigmoid as one loop
``denormals``       the CPU's flush-to-zero switch for subnormal numbers, on during a step
==================  =======================================================================

Each twin is tested to give the textbook path's numbers bit for bit (``tests/test_fast_path.py``,
``tests/test_fast_kernels.py``). ``with minirai.reference():`` or ``MINIRAI_REFERENCE=1`` makes
the training loops run the textbook methods instead (see :mod:`minirai.switches`).
"""
