"""Saliency datasets in the usual layout: ``images/<stem>.jpg|png`` + ``masks/<stem>.png``.

Every mask is checked once at index time, through the same problem policy as the detection
readers (:class:`detprune.detection.data.report.DataReport`): ``strict=True`` raises
:class:`DataError` naming the file at the first problem; ``strict=False`` skips the image with a
warning and counts it in ``dataset.report``. Problems:

* missing mask (``missing_file``), unreadable image or mask (``bad_image``);
* mask size differs from the image size (``size_mismatch``): masks are never stretched to fit,
  a different size means a different picture or a crop;
* non-binary mask (``label_format``). Masks are binarised at 128, and must be 0/255 except
  for anti-aliasing: a "grey" pixel (more than ``gray_tol`` from both 0 and 255, so JPEG-like
  noise is tolerated) is accepted only on an object edge, i.e. within ``EDGE_PX`` = 2 pixels of
  both a clear-object and a clear-background pixel (anti-aliasing, or the ramp of a resized
  mask up to 3 pixels wide). Such masks are kept (counted in ``dataset.antialiased`` and
  logged); a grey pixel anywhere else - a soft saliency map, a photograph saved as a mask, a
  grey speck on flat background - rejects the mask.

Samples are ``(image [3, H, W] float in [0, 1], {"mask": [1, H, W] float {0, 1}, "image_id": i})``,
the target form the shared training loop moves to the device. With ``size`` both are resized
(image bilinear; mask bilinear then re-thresholded at 0.5, smoother than nearest for tiny objects).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from detprune.detection.data.images import IMAGE_ERRORS, IMAGE_SUFFIXES, probe_image
from detprune.detection.data.report import (BAD_IMAGE, LABEL_FORMAT, MISSING_FILE, SIZE_MISMATCH, DataError,
                                            DataReport)

__all__ = ["EDGE_PX", "GRAY_TOL", "SaliencyFolder", "check_mask", "collate", "resolve_loader", "saliency_loader"]

log = logging.getLogger(__name__)

GRAY_TOL = 16  # values within this of 0 or 255 count as binary (compression noise)
EDGE_PX = 2  # grey pixels are anti-aliasing if this close to both clear object and clear background


def _dilate(b: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1) x (2r+1) square, separable, zero outside."""
    out = b.copy()
    for axis in (0, 1):
        src, out = out, out.copy()
        n = src.shape[axis]
        for d in range(1, r + 1):
            if d >= n:
                break
            lead = [slice(None)] * 2
            lag = [slice(None)] * 2
            lead[axis], lag[axis] = slice(d, None), slice(None, n - d)
            out[tuple(lag)] |= src[tuple(lead)]
            out[tuple(lead)] |= src[tuple(lag)]
    return out


def check_mask(mask: np.ndarray, gray_tol: int = GRAY_TOL, edge: int = EDGE_PX) -> tuple[str | None, bool]:
    """(problem or None, anti-aliased) for a uint8 mask; see the module docstring for the rule."""
    gray = (mask > gray_tol) & (mask < 255 - gray_tol)
    if not gray.any():
        return None, False
    on_edge = _dilate(mask >= 255 - gray_tol, edge) & _dilate(mask <= gray_tol, edge)
    stray = gray & ~on_edge
    if stray.any():
        vals = mask[stray]
        return (f"not a binary mask: {int(stray.sum())} pixels ({stray.mean():.1%}) are grey "
                f"(values {int(vals.min())}..{int(vals.max())}) away from any object edge; masks must be "
                "0/255, anti-aliased edges are accepted"), False
    return None, True


def _read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        if im.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit / float masks: rescale to 8 bits
            arr = np.asarray(im, dtype=np.float64)
            top = 65535.0 if arr.max() > 255 else 1.0 if im.mode == "F" and arr.max() <= 1 else 255.0
            return np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8)
        return np.asarray(im.convert("L"))


class SaliencyFolder(Dataset):
    """Image/mask pairs of one directory; ``report`` says what was skipped and why."""

    def __init__(self, root: str | Path, size: int | tuple[int, int] | None = None, *, strict: bool = True,
                 augment: bool = False, gray_tol: int = GRAY_TOL) -> None:
        self.root = Path(root)
        self.size = (size, size) if isinstance(size, int) else size
        self.augment = augment
        self.report = DataReport(str(self.root), strict=strict)
        self.antialiased = 0
        image_dir, mask_dir = self.root / "images", self.root / "masks"
        if not image_dir.is_dir() or not mask_dir.is_dir():
            raise DataError(f"{self.root}: expected images/ and masks/ subdirectories")
        self.items: list[tuple[Path, Path]] = []
        for image in sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = mask_dir / f"{image.stem}.png"
            if self._valid(image, mask, gray_tol):
                self.items.append((image, mask))
        self.report.finish()
        if self.antialiased:
            log.info("%s: %d masks with anti-aliased edges kept (binarised at 128)", self.root, self.antialiased)
        if not self.items:
            raise DataError(f"{self.root}: no usable image/mask pair ({self.report.summary()})")

    def _valid(self, image: Path, mask: Path, gray_tol: int) -> bool:
        if not mask.is_file():
            self.report.problem(MISSING_FILE, str(image), f"no mask {mask}")
            return False
        try:
            size = probe_image(image)
        except IMAGE_ERRORS as exc:
            self.report.problem(BAD_IMAGE, str(image), f"unreadable image ({exc})")
            return False
        try:
            m = _read_mask(mask)
        except IMAGE_ERRORS as exc:
            self.report.problem(BAD_IMAGE, str(mask), f"unreadable mask ({exc})")
            return False
        if (m.shape[1], m.shape[0]) != size:
            self.report.problem(SIZE_MISMATCH, str(mask),
                                f"mask is {m.shape[1]}x{m.shape[0]}, its image {image.name} is {size[0]}x{size[1]}")
            return False
        problem, antialiased = check_mask(m, gray_tol)
        if problem:
            self.report.problem(LABEL_FORMAT, str(mask), problem)
            return False
        self.antialiased += antialiased
        return True

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, dict[str, Any]]:
        image_path, mask_path = self.items[i]
        with Image.open(image_path) as im:
            image = im.convert("RGB")
        mask = Image.fromarray(_read_mask(mask_path))
        if self.size is not None and image.size != (self.size[1], self.size[0]):
            wh = (self.size[1], self.size[0])
            image, mask = image.resize(wh, Image.BILINEAR), mask.resize(wh, Image.BILINEAR)
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        m = torch.from_numpy((np.asarray(mask) >= 128).astype(np.float32))[None]
        if self.augment and torch.rand(()) < 0.5:
            x, m = x.flip(-1), m.flip(-1)
        return x, {"mask": m, "image_id": i}


def collate(batch: list[tuple[Tensor, dict[str, Any]]]) -> tuple[Tensor, list[dict[str, Any]]]:
    """Stack images; keep targets as a list of dicts (the training loop's batch contract)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def saliency_loader(root: str | Path, batch_size: int = 8, *, shuffle: bool = False, size: int | None = None,
                    strict: bool = True, augment: bool = False, workers: int = 0, seed: int = 0) -> DataLoader:
    """A DataLoader over :class:`SaliencyFolder` (seeded generator, so ``fit(resume=True)`` is exact)."""
    ds = SaliencyFolder(root, size, strict=strict, augment=augment)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def resolve_loader(data: Any, split: str = "train", *, size: int | None = None, batch_size: int = 8,
                   shuffle: bool | None = None, strict: bool = True, augment: bool | None = None,
                   seed: int = 0, workers: int = 0) -> DataLoader:
    """A loader from what a user (or the CLI) names: a DataLoader or list of batches (returned as is), ``"synthetic"`` /
    ``"synthetic:N"`` (the cached tiny-object set with N training images, default 1000, at ``size``
    px, default 64), or a directory: ``<dir>/<split>/{images,masks}`` if present, else
    ``<dir>/{images,masks}``. Training splits shuffle and flip by default."""
    if not isinstance(data, (str, os.PathLike)):
        return data  # a DataLoader (or any sized iterable of batches)
    train = split == "train"
    shuffle = train if shuffle is None else shuffle
    augment = train if augment is None else augment
    text = str(data)
    if text == "synthetic" or text.startswith("synthetic:"):
        from detprune.saliency.synthetic import synthetic_saliency

        n = int(text.partition(":")[2] or 1000)
        root: Path = synthetic_saliency(n, split, size=size or 64)
    else:
        base = Path(text)
        root = base / split if (base / split / "images").is_dir() else base
    return saliency_loader(root, batch_size, shuffle=shuffle, size=size, strict=strict, augment=augment,
                           workers=workers, seed=seed)
