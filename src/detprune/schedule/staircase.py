"""Find the natural channel width of a runtime from a latency staircase.

CPU kernels process output channels in SIMD-wide blocks (8 floats with AVX2, 16 with AVX-512,
oneDNN / MLAS blocked layouts), so latency as a function of a layer's width is a staircase:
flat inside a block, a jump when one more channel needs another block. Pruning inside a step
saves MACs but no time; pruning down to the next multiple of the step width is what pays
(Gamanayake et al. 2020, "Cluster Pruning").

Given latencies at several widths, each candidate width ``w`` is scored, by BIC, with a
*staircase* ("level per block ceil(k / w) plus a common slope"), a *misalignment penalty* ("line
plus a constant extra cost when k is not a multiple of w"; ONNX Runtime shows this saw-tooth when
a layer's input channels break its 4/8-wide packing), and both at once (steps every ``w`` under
the saw-tooth of a finer ``v``: ONNX Runtime on AVX-512 shows 16-wide steps under a 4-wide
saw-tooth, and a cluster of 4 there saves no time). The best model must beat a straight line by
``MIN_EVIDENCE``; then the coarsest width whose best model is within ``COARSER_WITHIN`` of the
best one wins (a finer width always fits at least as well, and must earn its extra levels). A
staircase that does not beat the line clearly (flat, linear or noisy measurements) falls back to
16 on AVX-512 machines, else 8, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

CANDIDATES = (4, 8, 16, 32, 64)
MIN_EVIDENCE = 6.0  # BIC units the staircase must win by ("strong" on Kass & Raftery's scale)
COARSER_WITHIN = 2.0  # BIC units within which a coarser width is preferred ("not worth more than a mention")


class StaircaseWarning(UserWarning):
    """No clear latency staircase was found; a default cluster size is used."""


@dataclass(frozen=True)
class ClusterFit:
    cluster: int
    source: str  # "staircase" or "fallback"
    evidence: float  # BIC of the best line minus BIC of the chosen staircase (bigger: clearer steps)


def default_cluster(isa: Iterable[str] | None = None) -> int:
    """16 on AVX-512 CPUs (16 fp32 lanes), else 8 (AVX2 and most NEON kernels block by 8).

    ``isa``: the instruction-set flags of the device (a latency table's fingerprint); default: this CPU's.
    """
    if isa is not None:
        return 16 if "avx512f" in isa else 8
    try:
        with open("/proc/cpuinfo") as f:
            return 16 if " avx512f" in f.read() else 8
    except OSError:
        return 8


def drop_spikes(k: np.ndarray, y: np.ndarray, window: int = 5, tol: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Remove upward outliers (a timing hit by background load) against a running median, which keeps steps."""
    if len(y) < window:
        return k, y
    half = window // 2
    padded = np.pad(y, half, mode="edge")
    med = np.array([np.median(padded[i : i + window]) for i in range(len(y))])
    r = y - med
    mad = 1.4826 * np.median(np.abs(r)) + 1e-3 * float(np.median(np.abs(y)) or 1.0)
    keep = r <= tol * mad
    return k[keep], y[keep]


def _bic(y: np.ndarray, design: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    rss = float(((y - design @ coef) ** 2).sum())
    n, p = len(y), np.linalg.matrix_rank(design)
    scale = max(float(np.var(y)), 1e-12) * 1e-6  # floor: a perfect fit must not reach log(0)
    return n * np.log(rss / n + scale) + p * np.log(n)


def _blocks(k: np.ndarray, w: int) -> np.ndarray:
    """Block index ``ceil(k / w)`` per width; a block with a single width joins its neighbour
    (one point would get its own level and fit its noise exactly)."""
    blocks = np.ceil(k / w).astype(np.int64)
    levels, counts = np.unique(blocks, return_counts=True)
    for lv in levels[counts < 2]:
        others = levels[levels != lv]
        if len(others):
            blocks[blocks == lv] = others[np.argmin(np.abs(others - lv))]
    return blocks


def _misaligned(design: np.ndarray, k: np.ndarray, w: int) -> np.ndarray | None:
    """``design`` plus a constant extra cost for widths that are not multiples of ``w``."""
    aligned = (k % w == 0).astype(np.float64)
    if not 2 <= aligned.sum() < len(k) - 1:
        return None
    return np.concatenate([design, 1.0 - aligned[:, None]], axis=1)


def derive_cluster(sizes: np.ndarray | list[int], ms: np.ndarray | list[float],
                   candidates: tuple[int, ...] = CANDIDATES, fallback: int | None = None,
                   min_evidence: float = MIN_EVIDENCE, warn: bool = True, label: str = "") -> ClusterFit:
    """The step width of the staircase ``ms(sizes)``; see the module docstring."""
    k = np.asarray(sizes, dtype=np.float64)
    y = np.asarray(ms, dtype=np.float64)
    order = np.argsort(k)
    k, y = drop_spikes(k[order], y[order])
    fallback = fallback or default_cluster()
    line = np.stack([np.ones_like(k), k], axis=1)
    base = _bic(y, line) if len(k) >= 3 else np.inf
    scores: dict[int, float] = {}  # best BIC per width
    for w in sorted(candidates):
        blocks = _blocks(k, w)
        levels = np.unique(blocks)
        stairs = None
        if 2 <= len(levels) <= len(k) / 2:  # a step at least, and several points per step
            stairs = np.concatenate([(blocks[:, None] == levels[None, :]).astype(np.float64), k[:, None]], axis=1)
        designs = [stairs, _misaligned(line, k, w)]
        if stairs is not None:  # steps every w channels, and a finer packing penalty inside them
            designs += [_misaligned(stairs, k, v) for v in candidates if v < w and w % v == 0]
        fits = [_bic(y, d) for d in designs if d is not None]
        if fits:
            scores[w] = min(fits)
    if scores and base - min(scores.values()) >= min_evidence:
        # the coarsest width that fits about as well as the best: a finer one must earn its extra levels
        top = min(scores.values())
        w = max(v for v, sc in scores.items() if sc <= top + COARSER_WITHIN)
        return ClusterFit(w, "staircase", float(base - scores[w]))
    if warn:
        where = f" for {label}" if label else ""
        warnings.warn(f"no clear latency staircase{where} ({len(k)} widths measured); using cluster size {fallback}",
                      StaircaseWarning, stacklevel=2)
    return ClusterFit(fallback, "fallback", float(base - min(scores.values())) if scores else 0.0)
