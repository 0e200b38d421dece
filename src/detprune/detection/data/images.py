"""Image file checks and decoding.

Index time only reads headers (cheap, so a few thousand images index in about a
second) plus the JPEG end-of-image marker, which catches the commonest real defect:
files truncated by an interrupted copy. Full decoding happens in ``__getitem__``.
EXIF orientation is not applied: labels refer to the stored pixel grid, as in COCO.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.v2.functional import pil_to_tensor

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

# What PIL raises on bad files: OSError (unreadable, truncated), ValueError / SyntaxError
# (malformed headers) and DecompressionBombError (absurd sizes). ImportError: once Ultralytics is
# imported it patches Image.open to retry unidentified files with an optional HEIF plugin, and
# raises ModuleNotFoundError where that plugin is not installed.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, ImportError, Image.DecompressionBombError)

_JPEG_EOI = b"\xff\xd9"
_TAIL_BYTES = 1024  # EOI may be followed by a little padding; scan data never contains FFD9


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) of ``path`` after a header check; raises OSError/ValueError if bad."""
    with Image.open(path) as im:
        im.verify()  # structural check; for PNG it also verifies chunk checksums
    with Image.open(path) as im:  # verify() leaves the object unusable: reopen for the size
        width, height = im.size
        fmt = im.format
    if width <= 0 or height <= 0:
        raise ValueError(f"empty image {width}x{height}")
    if fmt == "JPEG":
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            if _JPEG_EOI not in f.read():
                raise OSError("truncated JPEG (no end-of-image marker)")
    return width, height


def read_image(path: Path) -> torch.Tensor:
    """Decoded RGB image as uint8 [3, H, W]; raises OSError on undecodable files."""
    with Image.open(path) as im:
        return pil_to_tensor(im.convert("RGB"))
