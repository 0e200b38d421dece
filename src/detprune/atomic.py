"""Replace a file in one step: readers see the old content or the new one, never half a file.

Checkpoints, latency tables, ratios, metrics and reports are rewritten while other processes
(DataLoader workers, parallel runs, a later benchmark) may read them, and a run can be killed
mid-write. :func:`atomic_path` yields a temporary sibling of the destination (same directory, so
the rename never crosses file systems); when the block ends normally the file is fsynced and
renamed over the destination (``os.replace``), and the directory is fsynced so the rename
survives a crash. When the block raises, the temporary file is removed and the destination is
left as it was. Directories: see :mod:`detprune.atomic_dir`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary file next to ``path`` that replaces ``path`` if the block succeeds.

    Write to the yielded path by name (``torch.save``, ``safetensors``, ``torch.onnx.export``) or
    open it; close it before the block ends. The parent directory is created if missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        _fsync(tmp, os.O_RDWR)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # persist the rename itself (not possible on every platform, e.g. Windows)
        _fsync(path.parent, os.O_RDONLY)
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _new_temp(path: Path) -> Path:
    """Create ``.<name>.<random>.tmp`` beside ``path`` with the permissions ``open`` would give."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
