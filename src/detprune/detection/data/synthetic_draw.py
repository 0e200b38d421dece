"""Vectorised painters for the synthetic orchard scenes.

Every painter returns an ``(alpha [h, w], rgb [h, w, 3])`` float32 patch centred on the
object, built from numpy coordinate grids and signed distances (soft 1-pixel edges), so
cost is proportional to the object's area and no per-pixel Python loop runs. Classes
differ in outline (circle, bent ellipse, pointed ellipse, cluster, pear, cone), colour
and texture (highlight, gradient, pits, speckles, seeds); distractors (leaves, branches,
blobs) reuse the same shapes or colours so that neither cue alone identifies a class.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

Patch = tuple[np.ndarray, np.ndarray]  # alpha [h, w], rgb [3, h, w] (planar: fast numpy broadcasting)


def jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32), 0, 1)


def fill(rgb: np.ndarray, h: int, w: int | None = None) -> np.ndarray:
    """A planar [3, h, w] patch of one colour."""
    out = np.empty((3, h, w or h), np.float32)
    out[:] = rgb[:, None, None]
    return out


def grid(size: int, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (u along ``angle``, v across it) about the patch centre."""
    c = np.arange(size, dtype=np.float32) + 0.5 - size / 2
    y, x = c[:, None], c[None, :]
    ca, sa = math.cos(angle), math.sin(angle)
    return x * ca + y * sa, -x * sa + y * ca


def edge(dist: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in pixels (negative inside)."""
    return np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)


def segment_distance(u: np.ndarray, v: np.ndarray, p0: tuple[float, float], p1: tuple[float, float]) -> np.ndarray:
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    t = np.clip(((u - p0[0]) * du + (v - p0[1]) * dv) / max(du * du + dv * dv, 1e-6), 0, 1)
    return np.hypot(u - p0[0] - t * du, v - p0[1] - t * dv)


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a coarse random grid upsampled bicubically (cheap, in C)."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float32) / 255


def _shade(rgb: np.ndarray, q: np.ndarray, depth: float = 0.35) -> np.ndarray:
    """Darken towards the rim (``q`` = normalised radius) for a rounded, 3-D look."""
    return rgb * (1 - depth * np.clip(q, 0, 1) ** 2)


def _highlight(rgb: np.ndarray, u: np.ndarray, v: np.ndarray, cu: float, cv: float, sigma: float, k: float) -> np.ndarray:
    spot = k * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * sigma**2))
    return rgb * (1 - spot) + spot


def _add_stem(alpha: np.ndarray, rgb: np.ndarray, u: np.ndarray, v: np.ndarray, top: float, r: float) -> None:
    d = segment_distance(u, v, (0.0, top), (0.12 * r, top - 0.35 * r)) - max(0.8, 0.07 * r)
    stem = edge(d)
    over = stem > alpha
    rgb[:, over] = np.float32([[0.35], [0.22], [0.1]])
    np.maximum(alpha, stem, out=alpha)


def apple(rng: np.random.Generator, r: float) -> Patch:
    size = int(2.9 * r) + 4
    u, v = grid(size, rng.normal(0, 0.2))
    q = np.hypot(u / 1.06, v) / r
    alpha = edge((q - 1) * r)
    base = jitter(rng, (0.8, 0.1, 0.08)) if rng.random() < 0.7 else jitter(rng, (0.85, 0.35, 0.1))
    rgb = _highlight(_shade(fill(base, size), q), u, v, -0.35 * r, -0.38 * r, 0.17 * r, 0.75)
    _add_stem(alpha, rgb, u, v, -0.92 * r, r)
    return alpha, rgb.astype(np.float32)


def mango(rng: np.random.Generator, r: float) -> Patch:
    size = int(2.4 * r) + 4
    u, v = grid(size, rng.uniform(0, 2 * math.pi))
    a, b = r, 0.66 * r
    vb = v - 0.15 * r * (u / a) ** 2  # slightly bent, kidney-like
    q = np.hypot(u / a, vb / b)
    alpha = edge((q - 1) * b)
    t = (1 - np.clip((u / a + 1) / 2, 0, 1)) ** 1.5  # 1 at the green end
    green, orange = jitter(rng, (0.5, 0.65, 0.12)), jitter(rng, (0.98, 0.62, 0.1))
    rgb = orange[:, None, None] + (green - orange)[:, None, None] * t
    blush = np.clip(1 - np.hypot(u - 0.5 * a, vb + 0.3 * b) / (0.6 * a), 0, 1) * rng.uniform(0, 0.6)
    rgb += (np.float32([0.88, 0.25, 0.1])[:, None, None] - rgb) * blush
    return alpha, _shade(rgb, q, 0.25).astype(np.float32)


def _pointed(u: np.ndarray, v: np.ndarray, a: float, b: float, power: float) -> np.ndarray:
    """Signed distance (approx.) of a pointed ellipse: half-width ``b (1 - t^2)^power``."""
    t = np.clip(u / a, -1, 1)
    half = b * (1 - t * t) ** power
    return np.where(np.abs(u) < a, np.abs(v) - half, np.abs(u) - a + np.abs(v))


def lemon(rng: np.random.Generator, r: float) -> Patch:
    size = int(2.2 * r) + 4
    u, v = grid(size, rng.uniform(0, 2 * math.pi))
    a, b = r, 0.68 * r
    alpha = edge(_pointed(u, v, a, b, 0.8))
    rgb = fill(jitter(rng, (0.97, 0.86, 0.16), 0.04), size)
    pits = (rng.random((size, size), dtype=np.float32) > 0.93) * np.float32(0.12)
    rgb = _highlight(_shade(rgb * (1 - pits), np.hypot(u / a, v / b), 0.3), u, v, -0.2 * a, -0.35 * b, 0.2 * r, 0.5)
    return alpha, rgb.astype(np.float32)


def grapes(rng: np.random.Generator, r: float) -> Patch:
    angle = rng.normal(0, 0.25)
    g = r * rng.uniform(0.22, 0.3)
    centres = []
    rows = max(2, int(2 * r / (1.6 * g)))
    for k in range(rows):  # inverted triangle: wide rows on top
        count = max(1, round((rows - k) * 0.9))
        y = -r + g + k * 1.6 * g
        xs = (np.arange(count) - (count - 1) / 2) * 1.75 * g
        centres += [(x + rng.normal(0, 0.15 * g), y + rng.normal(0, 0.15 * g)) for x in xs]
    cu = np.float32([c[0] for c in centres])[:, None, None]
    cv = np.float32([c[1] for c in centres])[:, None, None]
    reach = max(float(np.hypot(cu, cv).max()) + g, 1.3 * r)  # outermost grape or the stem tip
    size = 2 * math.ceil(reach) + 4
    u, v = grid(size, angle)
    dist = np.hypot(u - cu, v - cv)  # [m, h, w]
    nearest = dist.argmin(axis=0)
    dmin = np.take_along_axis(dist, nearest[None], 0)[0]
    alpha = edge(dmin - g)
    base = jitter(rng, (0.36, 0.1, 0.42), 0.05)
    rgb = _shade(fill(base, size), dmin / g, 0.5)
    lu, lv = u - cu[nearest, 0, 0], v - cv[nearest, 0, 0]  # coordinates within the nearest grape
    rgb = _highlight(rgb, lu, lv, -0.35 * g, -0.35 * g, 0.2 * g, 0.6)
    _add_stem(alpha, rgb, u, v, -r + 0.2 * g, 0.6 * r)
    return alpha, rgb.astype(np.float32)


def pear(rng: np.random.Generator, r: float) -> Patch:
    size = int(2.4 * r) + 4
    u, v = grid(size, rng.normal(0, 0.25) + math.pi / 2)  # u points down the pear
    d1 = np.hypot(u + 0.42 * r, v) - 0.4 * r  # neck
    d2 = np.hypot(u - 0.3 * r, v) - 0.62 * r  # body
    k = 0.35 * r  # smooth union of the two discs
    h = np.clip(0.5 + 0.5 * (d2 - d1) / k, 0, 1)
    dist = d2 * (1 - h) + d1 * h - k * h * (1 - h)
    alpha = edge(dist)
    t = np.clip((u / r + 1) / 2, 0, 1)  # 0 at the neck, 1 at the bottom
    green, yellow = jitter(rng, (0.55, 0.72, 0.2)), jitter(rng, (0.85, 0.82, 0.3))
    rgb = green[:, None, None] + (yellow - green)[:, None, None] * t
    speckles = (rng.random((size, size), dtype=np.float32) > 0.96) * np.float32(0.35)
    rim = 1 - np.clip(-dist / (0.6 * r), 0, 1)  # 0 deep inside, 1 at the outline
    rgb = _shade(rgb * (1 - speckles), rim, 0.3)
    stem_rgb = rgb.copy()
    du, dv = -0.8 * r, 0.0  # stem beyond the neck
    stem = edge(segment_distance(u, v, (du, dv), (du - 0.3 * r, 0.1 * r)) - max(0.8, 0.06 * r))
    stem_rgb[:, stem > alpha] = np.float32([[0.35], [0.22], [0.1]])
    return np.maximum(alpha, stem), stem_rgb.astype(np.float32)


def strawberry(rng: np.random.Generator, r: float) -> Patch:
    size = int(2.3 * r) + 4
    u, v = grid(size, rng.normal(0, 0.3))  # v points down (tip)
    t = (v + 0.65 * r) / (1.65 * r)  # 0 at the shoulders, 1 at the tip
    half = 0.85 * r * np.clip(1 - t, 0, 1) ** 0.75 * np.sqrt(np.clip(3.5 * t, 0, 1))
    inside_t = (t >= 0) & (t <= 1)
    alpha = edge(np.where(inside_t, np.abs(u) - half, np.minimum(np.abs(t), np.abs(t - 1)) * 1.65 * r + 1))
    rgb = fill(jitter(rng, (0.86, 0.08, 0.12), 0.05), size)
    cell = max(0.2 * r, 2.2)  # staggered seed lattice
    gy = v / cell
    gx = u / cell + 0.5 * np.floor(gy)
    seeds = ((gx - np.round(gx)) ** 2 + (gy - np.floor(gy) - 0.5) ** 2) < 0.05
    rgb[:, seeds] = jitter(rng, (0.95, 0.85, 0.35), 0.03)[:, None]
    rgb = _shade(rgb, np.abs(u) / np.maximum(half, 1e-3), 0.3)
    theta = np.arctan2(v + 0.62 * r, u)
    calyx = edge(np.hypot(u, v + 0.62 * r) - 0.42 * r * (0.45 + 0.55 * np.abs(np.cos(2.5 * theta))))
    rgb[:, calyx > 0.5] = jitter(rng, (0.2, 0.55, 0.15), 0.05)[:, None]
    return np.maximum(alpha, calyx), rgb.astype(np.float32)


def leaf(rng: np.random.Generator, r: float) -> Patch:
    """Distractor and occluder: lemon-like pointed outline, but green, thin and veined."""
    size = int(2.2 * r) + 4
    u, v = grid(size, rng.uniform(0, 2 * math.pi))
    a, b = r, r * rng.uniform(0.28, 0.42)
    alpha = edge(_pointed(u, v, a, b, 1.0))
    base = (0.62, 0.7, 0.2) if rng.random() < 0.15 else (0.2, 0.5, 0.15)  # some yellowed leaves
    rgb = fill(jitter(rng, base, 0.08), size)
    rgb[:, np.abs(v) < max(0.6, 0.04 * r)] *= 1.35  # midrib
    veins = np.abs(np.sin((u - 1.2 * np.abs(v)) / max(0.12 * r, 1.5) * math.pi)) < 0.15
    rgb[:, veins] *= 1.15
    return alpha, np.clip(rgb, 0, 1).astype(np.float32)


def blob(rng: np.random.Generator, r: float) -> Patch:
    """Distractor: irregular blob in a random, sometimes fruit-like, colour."""
    size = int(2.8 * r) + 4
    u, v = grid(size)
    theta = np.arctan2(v, u)
    radius = np.full_like(theta, r)
    for k in (2, 3, 5):
        radius += r * rng.uniform(0, 0.18) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    alpha = edge(np.hypot(u, v) - radius)
    hue, sat, val = rng.random(), rng.uniform(0.3, 1), rng.uniform(0.3, 1)
    rgb = fill(np.float32(colorsys.hsv_to_rgb(hue, sat, val)), size)
    if rng.random() < 0.5:  # striped blobs
        rgb *= 0.75 + 0.25 * (np.sin(u / max(0.15 * r, 1.5)) > 0)
    return alpha, rgb.astype(np.float32)


def branch(rng: np.random.Generator, size: int) -> tuple[Patch, float, float]:
    """Distractor: a brown bent line across the canvas, with the centre to paste it at.

    Drawn with PIL (a C line rasteriser) on the line's bounding box only.
    """
    pts = rng.uniform(-0.1, 1.1, (3, 2)) * size
    width = int(rng.integers(3, 10))
    lo = np.floor(pts.min(0)).astype(int) - width
    hi = np.ceil(pts.max(0)).astype(int) + width
    w, h = (hi - lo).tolist()
    mask = Image.new("L", (w, h))
    ImageDraw.Draw(mask).line([tuple(p) for p in (pts - lo).tolist()], fill=255, width=width, joint="curve")
    alpha = np.asarray(mask, np.float32) / 255
    rgb = fill(jitter(rng, (0.38, 0.25, 0.14), 0.06), h, w)
    cx, cy = (lo + hi) / 2
    return (alpha, rgb), float(cx), float(cy)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Gradient, stripes or smooth noise between two random earthy/sky colours, plus mottling."""
    hues = rng.choice([0.08, 0.12, 0.25, 0.3, 0.55, 0.6, 0.0], 2)
    c0, c1 = (np.float32(colorsys.hsv_to_rgb(h, rng.uniform(0, 0.7), rng.uniform(0.2, 0.9))) for h in hues)
    c = np.linspace(0, 1, size, dtype=np.float32)
    y, x = c[:, None], c[None, :]
    kind = rng.integers(4)
    ang = rng.uniform(0, math.pi)
    if kind == 0:  # vertical gradient (sky to ground)
        t = np.broadcast_to(y, (size, size))
    elif kind == 1:  # diagonal gradient
        t = (x * math.cos(ang) + y * math.sin(ang) + 1) / 2.5
    elif kind == 2:  # stripes (rows, grass)
        t = 0.5 + 0.5 * np.sin((x * math.cos(ang) + y * math.sin(ang)) * rng.uniform(8, 40) * math.pi)
    else:  # smooth noise
        t = value_noise(rng, size, int(rng.integers(3, 10)))
    t = t + (value_noise(rng, size, 16) - 0.5) * 0.25  # mottling
    img = c0[:, None, None] + (c1 - c0)[:, None, None] * t
    return np.clip(img, 0, 1, out=img)  # planar [3, size, size]
