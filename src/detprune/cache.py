"""Where detprune keeps what it can rebuild: generated data sets, latency tables, benchmark baselines.

One root for all of it, so one variable moves everything (CI, a shared disk, a test's temporary
directory): ``$DETPRUNE_CACHE``, else ``$XDG_CACHE_HOME/detprune``, else ``~/.cache/detprune``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(*parts: str) -> Path:
    """The cache directory, or the sub-directory ``parts`` of it (not created)."""
    base = os.environ.get("DETPRUNE_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "detprune"
    return root.joinpath(*parts)
