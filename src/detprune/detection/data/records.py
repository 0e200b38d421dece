"""Format-neutral index of a dataset split, and the box checks every reader shares.

Readers (YOLO, COCO, VOC) only parse their format into :class:`ImageRecord` objects in
the original image's pixel frame; the checks that decide whether a box is usable live
here once, so every format reports the same problems the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .images import IMAGE_ERRORS, probe_image
from .report import BAD_IMAGE, CLIPPED, LABEL_FORMAT, OUT_OF_BOUNDS, ZERO_AREA, DataReport

# How far (as a fraction of the image side) a box may overshoot the image and still be
# clipped rather than rejected: annotation tools round, real mistakes are far bigger.
BOX_TOLERANCE = 0.01


@dataclass(frozen=True)
class ImageRecord:
    """One usable image and its clean boxes, in the original image's pixel frame."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray  # float32 [N, 4] xyxy absolute pixels
    labels: np.ndarray  # int64 [N], 0-based
    image_id: int

    def __post_init__(self) -> None:
        assert self.boxes.shape == (len(self.labels), 4), (self.boxes.shape, self.labels.shape)


@dataclass
class SplitIndex:
    """The result of reading one split: usable records, class names and the problem report."""

    records: list[ImageRecord]
    names: list[str]
    report: DataReport
    root: Path | None = None  # dataset root, for messages and exporters
    meta: dict[str, object] = field(default_factory=dict)


def clean_box(
    box: Sequence[float],
    width: int,
    height: int,
    where: str,
    report: DataReport,
    tol: float = BOX_TOLERANCE,
) -> tuple[float, float, float, float] | None:
    """``box`` (xyxy pixels) clipped to the image, or ``None`` after reporting why it is unusable."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        report.problem(LABEL_FORMAT, where, f"non-finite box {box}")
        return None
    tx, ty = tol * width, tol * height
    if x1 < -tx or y1 < -ty or x2 > width + tx or y2 > height + ty:
        report.problem(
            OUT_OF_BOUNDS,
            where,
            f"box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) outside the {width}x{height} image",
        )
        return None
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 <= cx1 or cy2 <= cy1:
        report.problem(
            ZERO_AREA, where, f"zero-area box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) dropped"
        )
        return None
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        report.note(CLIPPED, where, "box overshooting the image slightly: clipped")
    return cx1, cy1, cx2, cy2


def checked_image_size(path: Path, report: DataReport) -> tuple[int, int] | None:
    """(width, height) of a readable image, or ``None`` after reporting why it is not."""
    try:
        return probe_image(path)
    except IMAGE_ERRORS as exc:
        report.problem(BAD_IMAGE, str(path), f"unreadable image ({exc})")
        return None


def make_record(
    path: Path,
    width: int,
    height: int,
    boxes: list[tuple[float, float, float, float]],
    labels: list[int],
    image_id: int,
) -> ImageRecord:
    return ImageRecord(
        path=path,
        width=width,
        height=height,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64).reshape(-1),
        image_id=image_id,
    )
