"""Sharing independent rows (sequences) of a compiled loop out over threads.

The compiled Viterbi loops release the GIL (`nogil=True`), so threads of one process run them
in parallel on different rows. One lazily created pool serves every call.

The thread count is numba's configured default (`NUMBA_NUM_THREADS`, one per core unless the
user sets it), read from its configuration: asking `numba.get_num_threads()` would launch
numba's OpenMP layer, which resets the OpenMP thread count of the calling thread — the
caller's `torch.set_num_threads` — and a library call must not change that.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import numba
import torch

__all__ = ["for_rows", "one_torch_thread", "split_rows"]

P = ParamSpec("P")
R = TypeVar("R")


def one_torch_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with one torch intra-op thread and give the caller's setting back after.

    The forward-backward recursions are thousands of small tensor operations; on a 2-core
    machine with another busy process, two OpenMP threads per operation made them 4-6x slower
    than one (measured on 10⁶ steps, K = 8: log p(x) 1.86 s against 0.38 s), while one thread
    costs at most 2x on an idle machine. The limit holds only inside the package's own call."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        threads = torch.get_num_threads()
        if threads == 1:
            return function(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return limited


def split_rows(rows: int, work_per_row: int) -> list[tuple[int, int]]:
    """Rows [a, b) for each thread: up to `NUMBA_NUM_THREADS` parts (one per core unless set
    otherwise), none with less than ~10⁶ inner steps of work."""
    parts = max(1, min(rows, rows * work_per_row // 1_000_000, numba.config.NUMBA_NUM_THREADS))
    edges = [round(i * rows / parts) for i in range(parts + 1)]
    return list(itertools.pairwise(edges))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=numba.config.NUMBA_NUM_THREADS)


def for_rows(run: Callable[[int, int], None], rows: int, work_per_row: int) -> None:
    """Call `run(a, b)` for the parts [a, b) of `rows` that `split_rows` gives, on threads if
    there is more than one part; return when all are done."""
    parts = split_rows(rows, work_per_row)
    if len(parts) == 1:
        run(0, rows)
        return
    for job in [_pool().submit(run, a, b) for a, b in parts]:
        job.result()
