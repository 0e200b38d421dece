"""The one dataset class every format ends in, and its batch collation.

Readers produce a :class:`SplitIndex`; :class:`DetectionDataset` decodes, letterboxes
and (optionally) augments on access. Decoding errors are only discovered here, possibly
deep into a long run, so in lenient mode a bad image is reported once and replaced by
the next decodable sample instead of killing the run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..types import Target
from .images import IMAGE_ERRORS, read_image
from .records import ImageRecord, SplitIndex
from .report import BAD_IMAGE, DataError
from .transforms import color_jitter, hflip, letterbox, mosaic


class DetTarget(Target, total=False):
    """``Target`` plus, on non-augmented samples, how to map boxes back to the source image
    (see :func:`~detprune.detection.data.transforms.unletterbox_boxes`)."""

    orig_size: tuple[int, int]  # (height, width) of the source image
    scale: tuple[float, float]  # (sx, sy) letterbox resize factors
    pad: tuple[int, int]  # (left, top) letterbox padding in pixels


class DetectionDataset(Dataset[tuple[Tensor, DetTarget]]):
    """``(image float32 [3, S, S] in [0, 1], DetTarget)`` pairs of one split, ``S = img_size``.

    Boxes are xyxy pixels of the returned image. With ``augment`` the sample may be a
    4-image mosaic (probability ``mosaic``), is colour-jittered and flipped (probability
    ``flip``); random draws use torch's generator, so ``torch.manual_seed`` and DataLoader
    worker seeding make them reproducible.
    """

    def __init__(
        self,
        index: SplitIndex,
        img_size: int = 640,
        augment: bool = False,
        *,
        mosaic: float = 0.0,
        flip: float = 0.5,
        hsv: tuple[float, float, float] = (0.015, 0.7, 0.4),
    ) -> None:
        if not index.records:
            raise DataError(f"{index.report.source}: no usable images ({index.report.summary()})")
        self.records: list[ImageRecord] = index.records
        self.names: list[str] = index.names
        self.report = index.report
        self.root = index.root
        self.img_size = img_size
        self.augment = augment
        self.mosaic = mosaic
        self.flip = flip
        self.hsv = hsv
        self._bad: set[int] = set()  # undecodable indices met by this process

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def image_paths(self) -> list[Path]:
        return [r.path for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.report.source}, images={len(self)}, classes={self.num_classes}, "
            f"img_size={self.img_size}, augment={self.augment})"
        )

    def load(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        """Decoded uint8 image and its boxes/labels in the source frame; raises on bad files."""
        rec = self.records[i]
        image = read_image(rec.path)
        if tuple(image.shape[-2:]) != (rec.height, rec.width):
            raise ValueError(f"size {tuple(image.shape[-2:])} differs from the indexed {rec.height}x{rec.width}")
        return image, torch.from_numpy(rec.boxes.copy()), torch.from_numpy(rec.labels.copy())

    def _load_usable(self, i: int) -> tuple[int, tuple[Tensor, Tensor, Tensor]]:
        """Sample ``i``, or in lenient mode the next decodable one, with the index used."""
        n = len(self.records)
        for step in range(n):
            j = (i + step) % n
            if j in self._bad:
                continue
            try:
                return j, self.load(j)
            except IMAGE_ERRORS as exc:
                self._bad.add(j)
                self.report.problem(  # raises DataError in strict mode
                    BAD_IMAGE, str(self.records[j].path), f"cannot decode ({exc}); using the next sample"
                )
        raise DataError(f"{self.report.source}: no decodable image left")

    def __getitem__(self, i: int) -> tuple[Tensor, DetTarget]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")  # ends plain iteration
        i %= len(self)
        size = self.img_size
        extra: dict[str, object] = {}
        if self.augment and self.mosaic > 0 and torch.rand(()) < self.mosaic:
            others = torch.randint(len(self), (3,)).tolist()
            i, first = self._load_usable(i)
            image, boxes, labels = mosaic([first] + [self._load_usable(j)[1] for j in others], size)
        else:
            i, (image, boxes, labels) = self._load_usable(i)
            image, boxes, params = letterbox(image, boxes, size)
            if not self.augment:
                extra = {"orig_size": params.orig_size, "scale": params.scale, "pad": params.pad}
        img = image.float().div_(255)
        if self.augment:
            img = color_jitter(img, *self.hsv)
            if torch.rand(()) < self.flip:
                img, boxes = hflip(img, boxes)
        target = DetTarget(
            boxes=boxes.float().reshape(-1, 4),
            labels=labels.long().reshape(-1),
            image_id=self.records[i].image_id,
            **extra,  # type: ignore[typeddict-item]
        )
        return img, target


def collate_fn(batch: list[tuple[Tensor, DetTarget]]) -> tuple[Tensor, list[DetTarget]]:
    """Stack same-size images into [B, 3, H, W]; targets stay a list (box counts differ)."""
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)
