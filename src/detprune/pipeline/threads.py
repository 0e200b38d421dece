"""Pick a torch thread count that does not fight other processes for the cores.

On a shared machine an intra-op thread pool larger than the idle cores makes every parallel
region wait for a descheduled thread: measured on 2 cores at load 7, a YOLOv8 training step is
5-7x slower with 2 threads than with 1. ``auto`` therefore uses the cores left idle by the
1-minute load average (at least 1, at most all).
"""

from __future__ import annotations

import os

import torch


def auto_threads() -> int:
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on every platform
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def resolve_threads(value: int | str | None) -> int:
    """``None``/``"auto"`` -> :func:`auto_threads`, else a positive int."""
    if value is None or value == "auto":
        return auto_threads()
    n = int(value)
    if n < 1:
        raise ValueError(f"threads must be >= 1 or 'auto', got {value!r}")
    return n


def apply_threads(value: int | str | None) -> int:
    n = resolve_threads(value)
    torch.set_num_threads(n)
    return n
