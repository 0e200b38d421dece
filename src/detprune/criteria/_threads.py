"""Run many small dense factorisations (eigh, SVD of maps) with a bounded intra-op thread pool.

Batched LAPACK calls on matrices of a few hundred rows gain little from threads, and on a shared
CPU the pool's synchronisation dominates: measured 10x faster with one thread under load.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily ``torch.set_num_threads(n)``; ``None`` leaves the setting alone."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
