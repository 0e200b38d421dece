"""Synthetic tiny-salient-object images: the default data of saliency tests and benchmarks.

Each sample is a deterministic function of ``(seed, split, index, size)``. The background is
cluttered and textured - a two-colour blend driven by smooth value noise, oriented stripes,
fine grain, 15-40 muted blobs and a few thin saturated strokes - so that neither edges, nor
contrast, nor colour alone give the answer. On it sit 1-3 salient objects: compact shapes
(radial "blobs" ``r(phi) = R (1 + k cos(n phi))``, stretched) in a saturated colour with
their own shading. The total object area is log-uniform in ``area`` (default 0.2 %-10 % of
the image, so about half of the images have objects well under 1 %), split between the
objects; shapes stay inside the image and do not overlap, so the mask's area is the asked
one up to rasterisation. Masks are the pixel centres inside the shape (0/255); the image edge
is anti-aliased over one pixel.

Every shape is rendered with whole-array NumPy operations: a 64 x 64 sample takes ~10 ms on the
shared 2-core machine under load (1500 + 2 x 375 images: ~45 s, once).
Splits are cached as PNG ``images/`` + ``masks/`` (read back by :mod:`detprune.saliency.data`,
the same code path as real data), each written to a temporary directory and renamed into
place, so an interrupted generation never leaves a half-written split.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from detprune.atomic_dir import atomic_dir
from detprune.cache import cache_root

__all__ = ["GENERATOR_VERSION", "render_sample", "saliency_cache_root", "split_sizes", "synthetic_saliency"]

GENERATOR_VERSION = 1  # bump whenever rendering changes, so stale caches are not reused
AREA = (0.002, 0.10)  # fraction of the image covered by all salient objects together


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random ``cells x cells`` grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)  # smoothstep: no visible grid lines
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _colour(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v))[:, None, None]


def _blend(img: np.ndarray, alpha: np.ndarray, rgb: np.ndarray) -> None:
    img += (rgb - img) * alpha


def _shape_field(size: int, cx: float, cy: float, radius: float, k: float, n: int, phase: float, aspect: float,
                 angle: float) -> np.ndarray:
    """Approximate signed distance (pixels, < 0 inside) to a stretched radial blob."""
    c = np.arange(size) + 0.5
    dx, dy = c[None, :] - cx, c[:, None] - cy
    ca, sa = math.cos(angle), math.sin(angle)
    u, v = (dx * ca + dy * sa) / aspect, (-dx * sa + dy * ca) * aspect  # area-preserving stretch
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    r = radius * (1 + k * np.cos(n * phi + phase))
    return (rho - r) * min(aspect, 1 / aspect)  # scaled back so the edge stays ~1 px wide


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """Textured, cluttered background [3, S, S] in [0, 1]; returns it and its base hue."""
    hue = rng.random()
    c1 = _colour(hue + rng.normal(0, 0.08), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.75))
    c2 = _colour(hue + rng.normal(0, 0.15), rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.75))
    t = _value_noise(rng, size, int(rng.integers(2, 6)))
    img = c1 * (1 - t) + c2 * t
    yy, xx = np.mgrid[0:size, 0:size] / size
    theta, freq = rng.uniform(0, np.pi), rng.uniform(3, 12)
    img = img + rng.uniform(0.03, 0.12) * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
    for _ in range(int(rng.integers(15, 41))):  # muted clutter blobs, as large as the objects
        f = _shape_field(size, *rng.uniform(0, size, 2), rng.uniform(0.01, 0.12) * size, rng.uniform(0, 0.3),
                         int(rng.integers(2, 6)), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2), rng.uniform(0, np.pi))
        rgb = _colour(hue + rng.normal(0, 0.1), rng.uniform(0.0, 0.4), rng.uniform(0.15, 0.85))
        _blend(img, np.clip(0.5 - f, 0, 1) * rng.uniform(0.4, 0.9), rgb)
    for _ in range(int(rng.integers(1, 4))):  # thin saturated strokes: contrast that is not an object
        x0, y0 = rng.uniform(0, size, 2)
        ang, length = rng.uniform(0, np.pi), rng.uniform(0.1, 0.4) * size
        c = np.arange(size) + 0.5
        px, py = c[None, :] - x0, c[:, None] - y0
        along = px * np.cos(ang) + py * np.sin(ang)
        across = np.abs(-px * np.sin(ang) + py * np.cos(ang))
        alpha = np.clip(1.0 - across, 0, 1) * ((along > 0) & (along < length))
        _blend(img, alpha, _colour(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)))
    return img, hue


def render_sample(seed: int, index: int, size: int = 64, split: str = "train",
                  area: tuple[float, float] = AREA) -> tuple[np.ndarray, np.ndarray]:
    """Image uint8 [S, S, 3] and mask uint8 [S, S] (0 / 255) of sample ``index``."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index, size])
    img, hue = _background(rng, size)
    total = math.exp(rng.uniform(math.log(area[0]), math.log(area[1]))) * size * size  # pixels
    n = int(rng.choice([1, 1, 1, 2, 2, 3]))
    shares = rng.dirichlet(np.full(n, 3.0)) if n > 1 else np.ones(1)
    mask = np.zeros((size, size), bool)
    placed: list[tuple[float, float, float]] = []
    for share in shares:
        k, lobes = rng.uniform(0, 0.35), int(rng.integers(3, 7))
        radius = math.sqrt(total * share / (math.pi * (1 + k * k / 2)))  # area of r(phi) = pi R^2 (1 + k^2/2)
        aspect = rng.uniform(0.7, 1.4)
        reach = radius * (1 + k) * max(aspect, 1 / aspect) + 1
        lo, hi = reach, size - reach
        for _ in range(20):  # inside the image, apart from earlier objects
            cx, cy = rng.uniform(lo, hi, 2) if hi > lo else (size / 2, size / 2)
            if all(math.hypot(cx - x, cy - y) > reach + r for x, y, r in placed):
                break
        placed.append((cx, cy, reach))
        f = _shape_field(size, cx, cy, radius, k, lobes, rng.uniform(0, 2 * np.pi), aspect, rng.uniform(0, np.pi))
        h = hue + 0.5 + rng.normal(0, 0.2)  # away from the background hue
        rgb = _colour(h, rng.uniform(0.7, 1.0), rng.uniform(0.6, 1.0))
        shade = 0.8 + 0.2 * _value_noise(rng, size, 3)[None]
        _blend(img, np.clip(0.5 - f, 0, 1), rgb * shade)
        mask |= f <= 0
    img = img + (rng.random((3, size, size)) - 0.5) * rng.uniform(0.02, 0.08)  # sensor grain
    image = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    return np.ascontiguousarray(image), mask.astype(np.uint8) * 255


def split_sizes(n: int) -> dict[str, int]:
    """``n`` training images; val and test get a quarter each (at least 8)."""
    return {"train": n, "val": max(n // 4, 8), "test": max(n // 4, 8)}


def saliency_cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``saliency/`` of :func:`detprune.cache.cache_root`."""
    return Path(cache_dir) if cache_dir is not None else cache_root("saliency")


def _params_hash(n: int, seed: int, size: int, area: tuple[float, float]) -> str:
    key = json.dumps({"version": GENERATOR_VERSION, "n": n, "seed": seed, "size": size, "area": list(area)},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _generate_split(out: Path, split: str, count: int, seed: int, size: int, area: tuple[float, float]) -> None:
    with atomic_dir(out, ("images", "masks")) as tmp:
        for i in range(count):
            image, mask = render_sample(seed, i, size, split, area)
            Image.fromarray(image).save(tmp / "images" / f"{i:06d}.png")
            Image.fromarray(mask).save(tmp / "masks" / f"{i:06d}.png")


def synthetic_saliency(n: int = 1000, split: str = "train", *, seed: int = 0, size: int = 64,
                       area: tuple[float, float] = AREA, cache_dir: str | Path | None = None) -> Path:
    """Directory (``images/`` + ``masks/``) of a cached synthetic split, generated on first use."""
    sizes = split_sizes(n)
    if split not in sizes:
        raise ValueError(f"synthetic saliency data has splits {list(sizes)}, not {split!r}")
    if not 0 < area[0] <= area[1] < 1:
        raise ValueError(f"area must be 0 < min <= max < 1, got {area}")
    out = saliency_cache_root(cache_dir) / _params_hash(n, seed, size, tuple(area)) / split
    if not out.is_dir():
        _generate_split(out, split, sizes[split], seed, size, tuple(area))
    return out
