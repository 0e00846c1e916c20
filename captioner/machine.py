"""What this process may use of the machine it runs on."""

from __future__ import annotations

import os


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, which containers and ``taskset``
    narrow, rather than every core the machine has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1
