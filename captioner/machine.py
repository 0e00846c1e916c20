"""What this process may use of the machine it runs on."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and ``taskset``
    narrow, rather than every core the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def on_every_core(run: Callable[[slice], list], count: int, least: int = 16) -> list:
    """``run(rows)`` over ``count`` rows as one contiguous piece per core, side by side, the
    results joined in order. numpy's elementwise work runs on one core per call, so a search
    split this way uses them all; BLAS keeps to one thread per piece meanwhile (else the
    pieces' products would fight over the cores). Fewer than ``least`` rows per piece: one call."""
    threads = min(cores(), count // least)
    if threads < 2:
        return run(slice(0, count))
    from threadpoolctl import threadpool_limits

    bounds = [count * i // threads for i in range(threads + 1)]
    with threadpool_limits(1), ThreadPoolExecutor(threads, thread_name_prefix="captioner-core") as pool:
        pieces = pool.map(run, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])])
        return [item for piece in pieces for item in piece]
