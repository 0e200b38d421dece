"""Built-in synthetic orchard scenes: the default data of the demo and of fast tests.

Each image is a deterministic function of ``(seed, split, index)``: a textured
background (gradient, stripes or smooth noise), distractor branches, leaves and blobs,
and 1-15 fruits of six classes (apple, mango, lemon, grapes, pear, strawberry), small
(~10 px) to large (~180 px), overlapping each other and partly covered by leaves. A
fruit is labelled with the box of its visible pixels when at least 35 % of it is
visible; otherwise it stays in the picture unlabelled, like a hidden fruit in real data.

Generated once into a cache directory as JPEG + YOLO labels + ``data.yaml`` and then
read by the ordinary YOLO reader, so synthetic and real data share one code path.
Each split is written to a temporary directory and renamed into place, so a killed
generation never leaves a half-written split behind. Layout:
``<cache>/<params-hash>/{data.yaml, train/images, train/labels, val/..., test/...}``,
splits generated on first request (see :func:`cache_root` for where ``<cache>`` is).

Measured speed (``benchmark()``; 320x320, JPEG + labels written; 2-core CPU shared with
other jobs, load average ~5): 3000 images in 43 s with the 2-process pool (69 images/s),
500 in 7.7 s in one process (65 images/s). CPU cost is ~10 ms per image, i.e. about
100 images/s per free core: the default 2000 + 500 + 500 images take well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import tempfile
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from detprune.atomic import atomic_write_text
from detprune.atomic_dir import atomic_dir
from detprune.cache import cache_root as detprune_cache

from . import synthetic_draw as draw
from .report import DataError

SYNTHETIC_NAMES = ["apple", "mango", "lemon", "grapes", "pear", "strawberry"]
_FRUITS = (draw.apple, draw.mango, draw.lemon, draw.grapes, draw.pear, draw.strawberry)
GENERATOR_VERSION = 1  # bump whenever rendering changes, so stale caches are not reused
DEFAULT_COUNT = 2000
MIN_VISIBLE = 0.35  # fraction of a fruit that must stay visible for it to be labelled
MIN_BOX = 4  # px: smaller visible boxes are not labelled


def split_sizes(n: int) -> dict[str, int]:
    """``synthetic:N`` means N training images; val and test get a quarter each."""
    return {"train": n, "val": max(n // 4, 8), "test": max(n // 4, 8)}


def _paste(
    img: np.ndarray, idmap: np.ndarray, patch: draw.Patch, cx: float, cy: float, obj_id: int
) -> tuple[int, tuple[int, int, int, int] | None]:
    """Alpha-blend ``patch`` centred at (cx, cy); returns its full area and the clipped region."""
    alpha, rgb = patch
    size = img.shape[-1]
    h, w = alpha.shape
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
    area = int((alpha > 0.5).sum())
    if xb <= xa or yb <= ya:
        return area, None
    a = alpha[ya - y0 : yb - y0, xa - x0 : xb - x0]
    sub = img[:, ya:yb, xa:xb]
    sub += (rgb[:, ya - y0 : yb - y0, xa - x0 : xb - x0] - sub) * a
    idmap[ya:yb, xa:xb][a > 0.5] = obj_id
    return area, (ya, yb, xa, xb)


def render_scene(
    seed: int, index: int, img_size: int = 320, split: str = "train"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image uint8 [S, S, 3], boxes float32 [N, 4] xyxy pixels and labels int64 [N]."""
    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), index])
    size = img_size
    img = draw.background(rng, size)
    idmap = np.zeros((size, size), np.int32)  # which fruit owns each pixel (0: none)
    for _ in range(rng.integers(0, 3)):
        _paste(img, idmap, *draw.branch(rng, size), 0)
    for _ in range(rng.integers(0, 5)):  # leaves behind the fruit
        _paste(img, idmap, draw.leaf(rng, rng.uniform(8, 45)), *rng.uniform(0, size, 2), 0)

    style = rng.random()  # few large / mixed / many small
    n, r_lo, r_hi = (
        (int(rng.integers(1, 4)), 25, 90) if style < 0.3
        else (int(rng.integers(3, 9)), 6, 55) if style < 0.7
        else (int(rng.integers(6, 16)), 5, 18)
    )
    items = [int(rng.integers(len(_FRUITS))) for _ in range(n)] + [-1] * int(rng.integers(0, 4))
    rng.shuffle(items)
    fruits: list[tuple[int, int, tuple[int, int, int, int] | None]] = []  # (class, area, region)
    centres: list[tuple[float, float, float]] = []
    for cls in items:
        r = math.exp(rng.uniform(math.log(r_lo), math.log(r_hi)))
        if centres and rng.random() < 0.3:  # next to an earlier object: overlaps
            px, py, pr = centres[int(rng.integers(len(centres)))]
            cx, cy = px + rng.normal(0, pr + r) * 0.8, py + rng.normal(0, pr + r) * 0.8
        else:
            cx, cy = rng.uniform(-0.05, 1.05, 2) * size
        if cls < 0:
            _paste(img, idmap, draw.blob(rng, r), cx, cy, 0)
            continue
        area, region = _paste(img, idmap, _FRUITS[cls](rng, r), cx, cy, len(fruits) + 1)
        fruits.append((cls, area, region))
        centres.append((cx, cy, r))
        if rng.random() < 0.25:  # a leaf partly covering this fruit
            lx, ly = cx + rng.uniform(-1, 1) * r, cy + rng.uniform(-1, 1) * r
            _paste(img, idmap, draw.leaf(rng, r * rng.uniform(0.5, 1.0)), lx, ly, 0)

    img *= 0.85 + 0.3 * draw.value_noise(rng, size, 3)  # uneven illumination
    img += (rng.random((size, size), dtype=np.float32) - 0.5) * rng.uniform(0.02, 0.1)  # sensor grain
    np.clip(img, 0, 1, out=img)
    img *= 255
    img += 0.5
    image = np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0))

    boxes, labels = [], []
    for obj_id, (cls, area, region) in enumerate(fruits, start=1):
        if region is None:
            continue
        ya, yb, xa, xb = region
        ys, xs = np.nonzero(idmap[ya:yb, xa:xb] == obj_id)
        if len(ys) < MIN_VISIBLE * area:
            continue
        box = (xa + xs.min(), ya + ys.min(), xa + xs.max() + 1, ya + ys.max() + 1)
        if box[2] - box[0] >= MIN_BOX and box[3] - box[1] >= MIN_BOX:
            boxes.append(box)
            labels.append(cls)
    return image, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``synthetic/`` of :func:`detprune.cache.cache_root`."""
    return Path(cache_dir) if cache_dir is not None else detprune_cache("synthetic")


def params_hash(n: int, seed: int, img_size: int) -> str:
    key = json.dumps({"version": GENERATOR_VERSION, "n": n, "seed": seed, "img_size": img_size}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _write_images(args: tuple[Path, str, list[int], int, int]) -> None:
    """Worker: render ``indices`` of ``split`` into ``out/images`` and ``out/labels``."""
    out, split, indices, seed, img_size = args
    for i in indices:
        image, boxes, labels = render_scene(seed, i, img_size, split)
        Image.fromarray(image).save(out / "images" / f"{i:06d}.jpg", quality=90)
        cxcy = (boxes[:, :2] + boxes[:, 2:]) / 2 / img_size
        wh = (boxes[:, 2:] - boxes[:, :2]) / img_size
        lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, (x, y), (w, h) in zip(labels, cxcy, wh, strict=True)]
        (out / "labels" / f"{i:06d}.txt").write_text("".join(line + "\n" for line in lines))


def generate_split(
    out_dir: Path, split: str, count: int, seed: int = 0, img_size: int = 320, workers: int | None = None
) -> None:
    """Write ``count`` scenes of ``split`` to ``out_dir/{images,labels}``, all or nothing."""
    workers = workers or min(2, os.cpu_count() or 1)
    if multiprocessing.current_process().daemon:  # e.g. a DataLoader worker: no children allowed
        workers = 1
    with atomic_dir(out_dir, ("images", "labels")) as tmp:
        chunks = [list(c) for c in np.array_split(np.arange(count), max(1, workers * 4)) if len(c)]
        jobs = [(tmp, split, [int(i) for i in c], seed, img_size) for c in chunks]
        if workers > 1 and count >= 64:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            with multiprocessing.get_context(method).Pool(workers) as pool:
                pool.map(_write_images, jobs)
        else:
            for job in jobs:
                _write_images(job)


def _write_yaml_atomic(path: Path, content: dict[str, object]) -> None:
    text = yaml.safe_dump(content, sort_keys=False)
    if path.is_file() and path.read_text() == text:
        return
    atomic_write_text(path, text)


def synthetic_data_yaml(
    n: int = DEFAULT_COUNT,
    splits: Iterable[str] = ("train",),
    *,
    seed: int = 0,
    img_size: int = 320,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
) -> Path:
    """The ``data.yaml`` of the cached synthetic set, generating any missing split of ``splits``."""
    root = cache_root(cache_dir) / params_hash(n, seed, img_size)
    sizes = split_sizes(n)
    for split in splits:
        if split not in sizes:
            raise DataError(f"synthetic data has splits {list(sizes)}, not '{split}'")
        if not (root / split).is_dir():
            generate_split(root / split, split, sizes[split], seed, img_size, workers)
    meta = {"version": GENERATOR_VERSION, "n": n, "seed": seed, "img_size": img_size}
    cfg = {"path": ".", **{s: f"{s}/images" for s in sizes}, "names": SYNTHETIC_NAMES, "synthetic": meta}
    _write_yaml_atomic(root / "data.yaml", cfg)
    return root / "data.yaml"


def benchmark(count: int = DEFAULT_COUNT, workers: int | None = None) -> dict[str, float]:
    """Generation speed in a temporary directory: wall-clock and CPU images/s.

    CPU time (this process plus workers) is the number that survives a busy machine.
    """
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), os.times()
        generate_split(Path(d) / "train", "train", count, workers=workers)
        wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
        c0.user + c0.system + c0.children_user + c0.children_system
    )
    return {"images": count, "wall_s": wall, "images_per_s": count / wall, "cpu_ms_per_image": 1000 * cpu / count}
