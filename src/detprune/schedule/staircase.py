"""Find the natural channel width of a runtime from a latency staircase.

CPU kernels process output channels in SIMD-wide blocks (8 floats with AVX2, 16 with AVX-512,
oneDNN / MLAS blocked layouts), so latency as a function of a layer's width is a staircase:
flat inside a block, a jump when one more channel needs another block. Pruning inside a step
saves MACs but no time; pruning down to the next multiple of the step width is what pays
(Gamanayake et al. 2020, "Cluster Pruning").

Given latencies at several widths, each candidate width ``w`` is scored with two models and
compared, by BIC, with a straight line and with each other: a *staircase* ("level per block
ceil(k / w) plus a common slope"; a finer ``w`` always fits at least as well, so BIC's parameter
penalty selects the coarsest width the data supports) and a *misalignment penalty* ("line plus
a constant extra cost when k is not a multiple of w"; ONNX Runtime shows this saw-tooth when a
layer's input channels break its 4/8-wide packing). A staircase that does not beat the line clearly (flat,
linear or noisy measurements) falls back to 16 on AVX-512 machines, else 8, with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

CANDIDATES = (4, 8, 16, 32, 64)
MIN_EVIDENCE = 6.0  # BIC units the staircase must win by ("strong" on Kass & Raftery's scale)


class StaircaseWarning(UserWarning):
    """No clear latency staircase was found; a default cluster size is used."""


@dataclass(frozen=True)
class ClusterFit:
    cluster: int
    source: str  # "staircase" or "fallback"
    evidence: float  # BIC of the best line minus BIC of the chosen staircase (bigger: clearer steps)


def default_cluster() -> int:
    """16 on AVX-512 CPUs (16 fp32 lanes), else 8 (AVX2 and most NEON kernels block by 8)."""
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
    best: tuple[float, int] | None = None
    for w in sorted(candidates):
        blocks = np.ceil(k / w).astype(np.int64)
        levels = np.unique(blocks)
        stairs = None
        if 3 <= len(levels) <= len(k) / 2:  # two steps at least, and several points per step
            stairs = np.concatenate([(blocks[:, None] == levels[None, :]).astype(np.float64), k[:, None]], axis=1)
        aligned = (k % w == 0).astype(np.float64)
        misalign = np.concatenate([line, 1.0 - aligned[:, None]], axis=1) if 2 <= aligned.sum() < len(k) - 1 else None
        for design in (stairs, misalign):
            if design is None:
                continue
            score = _bic(y, design)
            if best is None or score < best[0] - 1e-9:
                best = (score, w)
    if best is not None and base - best[0] >= min_evidence:
        return ClusterFit(best[1], "staircase", float(base - best[0]))
    if warn:
        where = f" for {label}" if label else ""
        warnings.warn(f"no clear latency staircase{where} ({len(k)} widths measured); using cluster size {fallback}",
                      StaircaseWarning, stacklevel=2)
    return ClusterFit(fallback, "fallback", float(base - best[0]) if best is not None else 0.0)
