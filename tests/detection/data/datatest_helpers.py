"""Helpers of the dataset-layer tests (a uniquely named module: safe to import by name,
unlike ``conftest``, of which the test tree may hold several)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int = 64, height: int = 48, seed: int = 0, fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path
