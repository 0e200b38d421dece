"""Per-epoch records: CSV (always), TensorBoard (optional), progress bars.

The CSV is rewritten in full from the run history each epoch (atomically), so after a resume
it never holds duplicate or orphan rows of an epoch that was interrupted.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from detprune.atomic import atomic_path


def require_tensorboard() -> Any:
    """``SummaryWriter`` class, or a clear error if the optional ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch.utils.tensorboard imports the tensorboard package eagerly
        raise ImportError(
            "TrainConfig(tensorboard=True) needs the optional 'tensorboard' package, which is not installed; "
            "install it (pip install tensorboard) or set tensorboard=False (the CSV log is always written)"
        ) from e
    return SummaryWriter


def _columns(history: list[dict[str, float]]) -> list[str]:
    cols: list[str] = []
    for row in history:
        cols += [k for k in row if k not in cols and k != "seconds"]
    return cols + ["seconds"]


def write_csv(history: list[dict[str, float]], path: str | os.PathLike) -> Path:
    """One row per epoch; columns are the union of keys with ``seconds`` last."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(history), restval="")
        writer.writeheader()
        writer.writerows(history)
    return path


class EpochLogger:
    """CSV + optional TensorBoard writer for one run directory (main process only)."""

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = False, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.csv_path = self.run_dir / "results.csv"
        self._tb = require_tensorboard()(log_dir=str(self.run_dir / "tb")) if tensorboard and enabled else None

    def log(self, history: list[dict[str, float]]) -> None:
        """Rewrite the CSV and push the last row to TensorBoard."""
        if not self.enabled or not history:
            return
        write_csv(history, self.csv_path)
        if self._tb is not None:
            row = history[-1]
            for k, v in row.items():
                if k != "epoch":
                    self._tb.add_scalar(k, v, int(row["epoch"]))
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def progress(iterable: Iterable, total: int, desc: str, enabled: bool = True) -> Iterator:
    """tqdm bar (a plain iterator when disabled, e.g. on non-zero ranks)."""
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, dynamic_ncols=True, leave=True)
