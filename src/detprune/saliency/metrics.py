"""The six salient-object-detection metrics, following PySODMetrics' conventions.

Per image (``pred`` a saliency map, ``gt`` a binary mask of the same size):

* **MAE** - mean |pred - gt| (Perazzi et al. 2012).
* **max F** / **mean F** - F-measure with beta^2 = 0.3 (Achanta et al. 2009). The curve has one
  point per threshold t = 0..255 on the map quantised as ``uint8(pred * 255)`` (binary map:
  ``pred_u8 >= t``); max F is the max over thresholds *of the dataset-mean curve*. mean F is the
  adaptive-threshold F-measure: threshold ``min(2 * mean(pred), 1)``, averaged over images.
* **weighted F** - Margolin et al. CVPR 2014 with beta^2 = 1, as PySODMetrics / the authors'
  MATLAB code: errors spread to background pixels from their nearest object pixel (exact EDT,
  :mod:`detprune.saliency.edt`, since SciPy is not installed), a 7x7 sigma-5 Gaussian, and
  background errors weighted by ``2 - exp(log(0.5) / 5 * distance)``.
* **S-measure** - Fan et al. ICCV 2017, alpha = 0.5 object-aware + region-aware structure.
* **E-measure** - Fan et al. IJCAI 2018 enhanced alignment; we report the **mean E-measure over
  the 256 thresholds** (``em``; the value most papers quote as "mean E"), plus max and
  adaptive-threshold E in ``em_max`` / ``em_adp``.

Conventions (PySODMetrics): ``pred`` is min-max normalised per image unless constant (MATLAB's
``mapminmax``; turn off with ``normalize=False``); uint8 masks are binarised as ``gt > 128``.
Edge cases: empty gt -> max/mean F = 0 and weighted F = 0, S = 1 - mean(pred), E counts
predicted-background pixels; all-salient gt -> S = mean(pred), E counts predicted-foreground
pixels. Two guards where PySODMetrics returns NaN: S-measure's std of a 1-pixel region is 0
(not NaN) and an empty quadrant (centroid on the last row/column) contributes nothing (its
weight is 0). Dataset values are per-image means (max F / max E: max of the mean curve).

Checked once against PySODMetrics 1.6.2 with SciPy's EDT on several hundred random map pairs
(all eight numbers identical to 1e-15, EDT tie-breaking included); one such pair is a test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detprune.saliency.edt import distance_to_features

__all__ = ["BETA2_F", "BETA2_WF", "SaliencyEvaluator", "SaliencyMetrics", "adaptive_e_measure",
           "adaptive_f_measure", "e_measure_curve", "f_measure_curve", "mae", "prepare", "s_measure",
           "weighted_f_measure"]

EPS = np.spacing(1)  # MATLAB's eps, as PySODMetrics
BETA2_F = 0.3
BETA2_WF = 1.0


def prepare(pred: Any, gt: Any, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(pred float64 in [0, 1], gt bool). uint8 inputs are read as 0..255 images."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must be 2-D maps of the same size")
    gt = gt > 128 if gt.dtype == np.uint8 else gt.astype(np.float64) >= 0.5 if gt.dtype != bool else gt
    pred = pred / 255.0 if pred.dtype == np.uint8 else np.clip(pred.astype(np.float64), 0.0, 1.0)
    lo, hi = pred.min(), pred.max()
    if normalize and hi != lo:
        pred = (pred - lo) / (hi - lo)
    return pred, gt


def adaptive_threshold(pred: np.ndarray) -> float:
    return min(2.0 * float(pred.mean()), 1.0)


def mae(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - gt)))


def _counts_at_thresholds(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For t = 0..255: #object and #background pixels with ``uint8(pred * 255) >= t``."""
    q = (pred * 255).astype(np.uint8)
    fg = np.bincount(q[gt], minlength=256)[::-1].cumsum()[::-1]
    bg = np.bincount(q[~gt], minlength=256)[::-1].cumsum()[::-1]
    return fg.astype(np.float64), bg.astype(np.float64)


def _f(precision: Any, recall: Any, beta2: float) -> Any:
    num = (1 + beta2) * precision * recall
    return num / np.where(num == 0, 1, beta2 * precision + recall)


def f_measure_curve(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2_F) -> tuple[np.ndarray, ...]:
    """(precision, recall, F) at thresholds t = 0..255 (index t: ``pred_u8 >= t``)."""
    tp, fp = _counts_at_thresholds(pred, gt)
    predicted = tp + fp
    precision = tp / np.where(predicted == 0, 1, predicted)
    recall = tp / max(int(gt.sum()), 1)
    return precision, recall, _f(precision, recall, beta2)


def adaptive_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2_F) -> float:
    binary = pred >= adaptive_threshold(pred)
    inter = int(np.count_nonzero(binary & gt))
    if inter == 0:
        return 0.0
    precision, recall = inter / np.count_nonzero(binary), inter / np.count_nonzero(gt)
    return float(_f(precision, recall, beta2))


def _gaussian_7x7(sigma: float = 5.0) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', 7, sigma)``."""
    y, x = np.ogrid[-3:4, -3:4]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def _filter_zero_padded(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlation with zero padding (``imfilter``'s default; the kernel is symmetric)."""
    k = kernel.shape[0] // 2
    padded = np.pad(img, k)
    h, w = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[dy : dy + h, dx : dx + w]
    return out


def weighted_f_measure(pred: np.ndarray, gt: np.ndarray, beta2: float = BETA2_WF) -> float:
    """Margolin et al.'s weighted F-measure; 0 for an empty ground truth."""
    if not gt.any():
        return 0.0
    dist, idx = distance_to_features(gt)
    err = np.abs(pred - gt)
    err_t = err.copy()
    bg = ~gt
    err_t[bg] = err[idx[0][bg], idx[1][bg]]  # background pixels take their nearest object pixel's error
    ea = _filter_zero_padded(err_t, _gaussian_7x7())
    min_e_ea = np.where(gt & (ea < err), ea, err)
    weight = np.where(bg, 2 - np.exp(np.log(0.5) / 5 * dist), 1.0)
    ew = min_e_ea * weight
    tpw = gt.sum() - ew[gt].sum()
    fpw = ew[bg].sum()
    recall = 1 - ew[gt].mean()
    precision = tpw / (tpw + fpw + EPS)
    return float((1 + beta2) * recall * precision / (recall + beta2 * precision + EPS))


def _s_object(x: np.ndarray) -> float:
    mean = x.mean()
    std = x.std(ddof=1) if x.size > 1 else 0.0
    return float(2 * mean / (mean**2 + 1 + std + EPS))


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    n = pred.size
    x, y = pred.mean(), gt.mean()
    d = max(n - 1, 1)
    sx, sy = ((pred - x) ** 2).sum() / d, ((gt - y) ** 2).sum() / d
    sxy = ((pred - x) * (gt - y)).sum() / d
    alpha, beta = 4 * x * y * sxy, (x**2 + y**2) * (sx + sy)
    if alpha != 0:
        return float(alpha / (beta + EPS))
    return 1.0 if beta == 0 else 0.0


def s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """Structure measure: ``alpha * object + (1 - alpha) * region``, floored at 0."""
    y = gt.mean()
    if y == 0:
        return float(1 - pred.mean())
    if y == 1:
        return float(pred.mean())
    obj = y * _s_object(pred[gt]) + (1 - y) * _s_object((1 - pred)[~gt])
    h, w = gt.shape
    cy, cx = (int(v) + 1 for v in np.argwhere(gt).mean(axis=0).round())  # MATLAB's 1-based split
    g = gt.astype(np.float64)
    region = 0.0
    for rows, cols in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                       (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):
        p = pred[rows, cols]
        if p.size:
            region += p.size / (h * w) * _ssim(p, g[rows, cols])
    return float(max(0.0, alpha * obj + (1 - alpha) * region))


def _enhanced_sum(fg_fg: Any, fg_bg: Any, gt_fg: int, size: int) -> Any:
    """Sum of the enhanced alignment matrix from pixel counts (binary pred vs gt)."""
    pred_fg = fg_fg + fg_bg
    pred_bg = size - pred_fg
    if gt_fg == 0:
        return pred_bg
    if gt_fg == size:
        return pred_fg
    bg_fg = gt_fg - fg_fg
    bg_bg = pred_bg - bg_fg
    mp, mg = pred_fg / size, gt_fg / size
    total = 0
    for count, a, b in ((fg_fg, 1 - mp, 1 - mg), (fg_bg, 1 - mp, -mg), (bg_fg, -mp, 1 - mg), (bg_bg, -mp, -mg)):
        align = 2 * a * b / (a**2 + b**2 + EPS)
        total = total + (align + 1) ** 2 / 4 * count
    return total


def e_measure_curve(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """E-measure at thresholds t = 0..255 (index t: ``pred_u8 >= t``)."""
    fg_fg, fg_bg = _counts_at_thresholds(pred, gt)
    size = gt.size
    return np.asarray(_enhanced_sum(fg_fg, fg_bg, int(gt.sum()), size), dtype=np.float64) / (size - 1 + EPS)


def adaptive_e_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    binary = pred >= adaptive_threshold(pred)
    fg_fg, fg_bg = np.count_nonzero(binary & gt), np.count_nonzero(binary & ~gt)
    return float(_enhanced_sum(fg_fg, fg_bg, int(gt.sum()), gt.size) / (gt.size - 1 + EPS))


@dataclass
class SaliencyMetrics:
    """Dataset-level metrics (higher is better except ``mae``)."""

    mae: float
    max_f: float  # max over thresholds of the mean F curve (beta^2 = 0.3)
    mean_f: float  # adaptive-threshold F (threshold 2 x mean saliency), mean over images
    wf: float  # weighted F-measure (beta^2 = 1)
    sm: float  # S-measure (alpha = 0.5)
    em: float  # mean E-measure over the 256 thresholds
    em_max: float
    em_adp: float
    images: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class SaliencyEvaluator:
    """Accumulates per-image metrics; :meth:`result` aggregates them over the dataset."""

    def __init__(self, normalize: bool = True) -> None:
        self.normalize = normalize
        self.rows: list[tuple[float, float, float, float, float, float]] = []
        self.f_curves: list[np.ndarray] = []
        self.e_curves: list[np.ndarray] = []

    def update(self, pred: Any, gt: Any) -> None:
        """Add one image: ``pred`` [H, W] probabilities (or uint8), ``gt`` [H, W] mask."""
        p, g = prepare(pred, gt, self.normalize)
        self.f_curves.append(f_measure_curve(p, g)[2])
        e_curve = e_measure_curve(p, g)
        self.e_curves.append(e_curve)
        self.rows.append((mae(p, g), adaptive_f_measure(p, g), weighted_f_measure(p, g), s_measure(p, g),
                          float(e_curve.mean()), adaptive_e_measure(p, g)))

    def update_batch(self, preds: Any, masks: Any) -> None:
        """Add a batch of [B, 1, H, W] (or [B, H, W]) maps, tensors or arrays."""
        preds, masks = _as_numpy(preds), _as_numpy(masks)
        for p, g in zip(preds.reshape(-1, *preds.shape[-2:]), masks.reshape(-1, *masks.shape[-2:]), strict=True):
            self.update(p, g)

    def result(self) -> SaliencyMetrics:
        if not self.rows:
            raise ValueError("no image was evaluated")
        m = np.mean(np.asarray(self.rows), axis=0)
        return SaliencyMetrics(mae=float(m[0]), max_f=float(np.mean(self.f_curves, axis=0).max()), mean_f=float(m[1]),
                               wf=float(m[2]), sm=float(m[3]), em=float(m[4]),
                               em_max=float(np.mean(self.e_curves, axis=0).max()), em_adp=float(m[5]),
                               images=len(self.rows))


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)
