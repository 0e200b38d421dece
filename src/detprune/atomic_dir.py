"""Build a cache directory in one piece: all of it appears, or none of it does.

Generated data sets are cached on disk and may be built by several processes at once (DataLoader
workers, parallel test runs) or killed half-way. Files are written into a hidden temporary sibling
that is renamed to its final name only when complete; a concurrent builder that finished first
wins, and temporaries a killed run left behind are removed after an hour.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_dir"]

STALE_TMP_SECONDS = 3600


@contextmanager
def atomic_dir(out: Path, subdirs: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory (with ``subdirs`` made) that becomes ``out`` on success."""
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".tmp-{out.name}-"
    for stale in out.parent.glob(prefix + "*"):  # left by a killed generation
        if time.time() - stale.stat().st_mtime > STALE_TMP_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=out.parent))
    try:
        for sub in subdirs:
            (tmp / sub).mkdir()
        yield tmp
        try:
            os.rename(tmp, out)
        except OSError:
            if not out.is_dir():  # not a concurrent generator that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
