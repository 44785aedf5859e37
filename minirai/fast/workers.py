"""Worker threads for the fast path: independent work of one step on several cores.

Some of a step's work does not depend on itself: under RAI every block reads its own table, so
a stack of 99 blocks splits into two stacks of 50 and 49 whose forward and backward can run at
the same time; an optimizer's rule is elementwise, so its runs (the packed weights, the packed
tables) can be updated at the same time. NumPy's matrix products and ufuncs, and the compiled
kernels (``nogil``), release Python's lock while they compute, so plain threads run them on
separate cores, each with a one-thread BLAS. (Two BLAS threads on one product spin waiting for
each other on a busy machine; two products on two threads do not. And a BLAS library may round
a product differently with more threads, while a product computed on one thread is the same
product on any thread: the numbers do not depend on the number of workers.)

Each task runs in the CPU's arithmetic of the step (flush-to-zero is set per thread), and the
caller waits for all of them before it goes on. ``MINIRAI_THREADS`` (or ``TrainingLoop(threads)``)
sets how many threads a step may use; with 1 (the default) nothing runs on another thread.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Callable, Iterable

_pools: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):     # a forked child (a multiprocessing worker) has none of the threads
    os.register_at_fork(after_in_child=_pools.clear)


def pool(helpers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``helpers`` threads (made once per size, kept for later steps)."""
    if helpers not in _pools:
        _pools[helpers] = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="minirai-worker")
    return _pools[helpers]


def run_all(tasks: Iterable[tuple[Callable[[], Any], float]], workers: int,
            arithmetic: Callable[[], AbstractContextManager[Any]]) -> None:
    """Run ``(task, cost)`` pairs on ``workers`` threads (the caller's is one of them): the tasks are
    dealt, largest cost first, to the thread with the least work so far, and each thread runs its
    share in order, inside ``arithmetic()``. Returns when all have ended; raises the first error."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        for task, _ in tasks:
            task()
        return
    shares: list[list[Callable[[], Any]]] = [[] for _ in range(min(workers, len(tasks)))]
    loads = [0.0] * len(shares)
    for task, cost in sorted(tasks, key=lambda pair: -pair[1]):
        k = loads.index(min(loads))
        shares[k].append(task)
        loads[k] += cost

    def run_share(share: list[Callable[[], Any]]) -> None:
        with arithmetic():
            for task in share:
                task()

    futures: list[Future[Any]] = [pool(len(shares) - 1).submit(run_share, share) for share in shares[1:]]
    errors: list[BaseException] = []
    try:
        for task in shares[0]:                     # (the caller is already in the step's arithmetic)
            task()
    except BaseException as error:                 # noqa: BLE001 - raised below, after the others end
        errors.append(error)
    for future in futures:
        try:
            future.result()
        except BaseException as error:             # noqa: BLE001
            errors.append(error)
    if errors:
        raise errors[0]


def split(first: int, count: int, parts: int, smallest: int = 2) -> list[tuple[int, int]]:
    """``(first, count)`` cut into at most ``parts`` consecutive pieces of near-equal size, none
    smaller than ``smallest`` (fewer pieces where there is not enough)."""
    parts = max(1, min(parts, count // smallest))
    sizes = [count // parts + (k < count % parts) for k in range(parts)]
    pieces, start = [], first
    for size in sizes:
        pieces.append((start, size))
        start += size
    return pieces
