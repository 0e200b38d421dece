"""Result container of a detection evaluation, so every caller reports the same numbers.

``detection.evaluate`` fills a ``DetectionMetrics``; training logs, benchmarks and the CLI
only read it (``as_dict`` for JSON/CSV, ``render`` / ``table`` for the terminal).

Undefined values are ``nan``, never COCO's ``-1`` sentinel: e.g. ``map_small`` when the
ground truth holds no small box, or every AP when there is no ground truth at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class that has ground truth (COCO excludes the others from the mean)."""

    name: str
    num_gt: int
    ap: float  # AP@[.5:.95]
    ap50: float
    precision: float  # at the evaluation's score_thres / iou_thres
    recall: float


@dataclass(frozen=True)
class DetectionMetrics:
    """COCO mAP numbers plus precision/recall/F1 at one operating point.

    ``map*`` are COCO bbox stats (101-point interpolated AP, maxDets=100).
    ``precision``/``recall``/``f1`` are micro-averaged at ``score_thres`` and ``iou_thres``:
    true/false positives and missed boxes are summed over images and classes before dividing.
    """

    map: float  # mAP@[.5:.95]
    map50: float
    map75: float
    map_small: float
    map_medium: float
    map_large: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    score_thres: float
    iou_thres: float
    num_images: int
    num_gt: int
    num_predictions: int
    per_class: list[ClassMetrics] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-serialisable except ``nan``), per-class keyed by class name."""
        d = asdict(self)
        d["per_class"] = {c["name"]: {k: v for k, v in c.items() if k != "name"} for c in d["per_class"]}
        return d

    def table(self, title: str = "Detection metrics", per_class: bool = True) -> Table:
        """A rich table: one row per class with ground truth, then the ``all`` summary row."""
        t = Table(title=title, title_justify="left", caption_justify="left")
        for col in ("class", "gt", "P", "R", "AP50", "AP50-95"):
            t.add_column(col, justify="left" if col == "class" else "right")
        if per_class:
            for c in self.per_class:
                t.add_row(c.name, str(c.num_gt), _fmt(c.precision), _fmt(c.recall), _fmt(c.ap50), _fmt(c.ap))
        t.add_row(
            "all",
            str(self.num_gt),
            _fmt(self.precision),
            _fmt(self.recall),
            _fmt(self.map50),
            _fmt(self.map),
            style="bold",
            end_section=True,
        )
        t.caption = (
            f"F1 {_fmt(self.f1)} at score>={self.score_thres:g}, IoU>={self.iou_thres:g}\n"
            f"TP {self.tp}  FP {self.fp}  FN {self.fn}\n"
            f"mAP75 {_fmt(self.map75)}  APs/m/l {_fmt(self.map_small)}/{_fmt(self.map_medium)}/{_fmt(self.map_large)}\n"
            f"{self.num_images} images, {self.num_predictions} predictions"
        )
        return t

    def render(self, console: Console | None = None, **table_kwargs: Any) -> None:
        """Print ``table()`` to ``console`` (a fresh stdout console by default)."""
        (console or Console()).print(self.table(**table_kwargs))


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.3f}"
