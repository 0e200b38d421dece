"""Problem reporting for dataset loading: one policy for every reader.

A long training run must neither crash on one bad label nor silently train on it, so
every reader funnels each problem through a :class:`DataReport`: in strict mode the
first error raises :class:`DataError`; in lenient mode the bad box or image is skipped,
a :class:`DataWarning` names the file and line (or object index), and the report keeps
counts by kind for a summary at the end of loading.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# Kinds that drop data (a box or a whole image): errors, raised in strict mode.
BAD_IMAGE = "bad_image"  # missing, unreadable, truncated or undecodable image
LABEL_FORMAT = "label_format"  # malformed line / XML / JSON entry
CLASS_RANGE = "class_range"  # class id out of range or unknown class name
OUT_OF_BOUNDS = "out_of_bounds"  # box beyond the image by more than the tolerance
ZERO_AREA = "zero_area"  # box with zero (or negative) width or height
SIZE_MISMATCH = "size_mismatch"  # annotated image size differs from the actual image
MISSING_FILE = "missing_file"  # annotation file listed by a split but absent
ERROR_KINDS = frozenset(
    {BAD_IMAGE, LABEL_FORMAT, CLASS_RANGE, OUT_OF_BOUNDS, ZERO_AREA, SIZE_MISMATCH, MISSING_FILE}
)

# Kinds that keep the data (possibly adjusted): notes, never raised.
MISSING_LABELS = "missing_labels"  # YOLO image without a label file: kept with no objects
CLIPPED = "clipped"  # box overshooting the image within the tolerance: clipped
DIFFICULT = "difficult"  # VOC difficult object: kept as an ordinary box
CROWD = "crowd"  # COCO iscrowd annotation: a region, not one object, so not used
NOTE_KINDS = frozenset({MISSING_LABELS, CLIPPED, DIFFICULT, CROWD})


class DataError(ValueError):
    """Bad or unusable data: raised on the first problem in strict mode, and always for
    configuration errors (unknown spec, missing or empty split)."""


class DataWarning(UserWarning):
    """A data problem that lenient loading skipped."""


@dataclass
class DataReport:
    """Counts and messages of every problem met while loading one split."""

    source: str
    strict: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)
    max_messages: int = 1000  # keep memory bounded on huge, badly broken datasets
    max_warnings: int = 20  # past this, problems go to the log only: a broken dataset must not flood stderr

    def problem(self, kind: str, where: str, detail: str) -> None:
        """Record an error; raise it in strict mode, otherwise warn (the caller skips the data)."""
        assert kind in ERROR_KINDS, kind
        message = f"{where}: {detail} [{kind}]"
        if self.strict:
            raise DataError(message)
        self._keep(kind, message)
        if self.num_errors <= self.max_warnings:
            warnings.warn(message, DataWarning, stacklevel=3)
        else:
            log.warning(message)

    def note(self, kind: str, where: str, detail: str) -> None:
        """Record a harmless irregularity (data kept); logged, never raised."""
        assert kind in NOTE_KINDS, kind
        message = f"{where}: {detail} [{kind}]"
        self._keep(kind, message)
        log.info(message)

    def _keep(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if len(self.messages) < self.max_messages:
            self.messages.append(message)

    @property
    def num_errors(self) -> int:
        return sum(n for k, n in self.counts.items() if k in ERROR_KINDS)

    @property
    def num_notes(self) -> int:
        return sum(n for k, n in self.counts.items() if k in NOTE_KINDS)

    def summary(self) -> str:
        if not self.counts:
            return f"{self.source}: no data problems"
        parts = ", ".join(f"{k}={n}" for k, n in sorted(self.counts.items()))
        return f"{self.source}: {self.num_errors} skipped, {self.num_notes} notes ({parts})"

    def finish(self) -> None:
        """Emit the end-of-loading summary: a warning if anything was skipped."""
        if self.num_errors:
            more = self.num_errors - self.max_warnings
            tail = f"; {more} more problems were only logged" if more > 0 else ""
            warnings.warn(self.summary() + tail, DataWarning, stacklevel=2)
        else:
            log.info(self.summary())
