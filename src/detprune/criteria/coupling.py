"""DCODP intra-layer coupling: how much a channel adds to the nuclear norm of its layer's maps.

DCODP (2025) flattens a layer's feature map per image to ``A`` (C x HW) and scores channel i by

    CP_i = | ||A||_* - ||M_i A||_* |        (M_i zeroes row i; ||.||_* = nuclear norm)

averaged over calibration images. A channel that is (nearly) a linear combination of the others
barely changes the spectrum when removed: smallest CP = most redundant, pruned first.

Computing it exactly and fast. With the thin SVD ``A = U S V^T`` (rank r), row i of A is
``a_i = V S u_i`` (u_i = row i of U) and ``(M_i A)^T (M_i A) = A^T A - a_i a_i^T`` is, in the V
basis, ``D - z z^T`` with ``D = S^2`` and ``z = S u_i``: every masked spectrum is a rank-one
downdate of one r x r diagonal matrix, r = min(C, HW). Two exact evaluations are offered:

* ``method="eig"``: batched ``torch.linalg.eigvalsh`` of the C matrices ``D - z_i z_i^T`` (the
  principal submatrices of the Gram matrix, in the eigenbasis), chunked over i to bound memory;
  eigenvalues clamped at 0, ``||M_i A||_* = sum sqrt(mu)``. Cost O(C r^3) per image.
* ``method="quad"`` (default): from ``sqrt(l) = (2/pi) int_0^inf l / (l + t^2) dt`` and
  Sherman-Morrison on ``(D - z z^T + t^2)^{-1}``,

      CP_i = (2/pi) int_0^inf t^2 N_i(t) / (e_i + t^2 Q_i(t)) dt,
      N_i = sum_j u_ij^2 d_j / (d_j + t^2)^2,  Q_i = sum_j u_ij^2 / (d_j + t^2),  e_i = 1 - ||u_i||^2,

  evaluated by the trapezoidal rule in ``x = log t``. The integrand is analytic in the strip
  ``|Im x| < pi/2`` and decays exponentially at both ends, so step h gives error ~exp(-pi^2/h)
  (h = 0.5: ~3e-9 relative). N and Q for all i are two [C, r] x [r, K] matrix products: the cost
  is one Gram eigendecomposition per map, O(C r K), with no per-channel factorisation.

Both agree with the naive definition (SVD of each masked matrix) to ~1e-8 of ||A||_* (tested in
tests/criteria on full-rank and rank-deficient maps, C < HW and C > HW). Maps are processed in
chunks of images so that the float64 copies stay bounded (``max_elems``).
Singular values below ``1e-7 * s_max`` are treated as zero (changes CP by < 1e-7 s_max each).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from detprune.criteria._threads import num_threads
from detprune.criteria.activation import ActivationCriterion
from detprune.criteria.base import register_criterion

RANK_TOL = 1e-14  # on squared singular values, relative to the largest


def reduced_svd(A: Tensor) -> tuple[Tensor, Tensor]:
    """``A`` [B, C, P] -> (d [B, r] squared singular values, U [B, C, r]) via the smaller Gram matrix.

    Negligible components are zeroed (d = 0 and their U column = 0), so shapes stay batched.
    """
    A = A.double()
    C, P = A.shape[-2:]
    if C <= P:
        d, U = torch.linalg.eigh(A @ A.mT)
        d = d.clamp_min(0)
    else:
        d, V = torch.linalg.eigh(A.mT @ A)
        d = d.clamp_min(0)
    keep = (d > d.amax(-1, keepdim=True) * RANK_TOL) & (d > 0)
    if C > P:
        U = (A @ V) / torch.where(keep, d, torch.ones_like(d)).sqrt().unsqueeze(-2)
    d = torch.where(keep, d, torch.zeros_like(d))
    return d, U * keep.unsqueeze(-2)


def _drops_quad(d: Tensor, U: Tensor, h: float = 0.5, margin: float = 20.0) -> Tensor:
    u2 = U.square()
    e = (1.0 - u2.sum(-1)).clamp_min(0.0)
    positive = d[d > 0]
    if positive.numel() == 0:
        return torch.zeros(U.shape[:-1], dtype=torch.float64, device=U.device)
    lo = 0.5 * math.log(positive.min().item()) - margin
    hi = 0.5 * math.log(positive.max().item()) + margin
    x = torch.arange(lo, hi + h, h, dtype=torch.float64, device=U.device)
    t2, t3 = torch.exp(2 * x), torch.exp(3 * x)
    den = d.unsqueeze(-1) + t2  # [B, r, K]
    N = u2 @ (d.unsqueeze(-1) / den.square())  # [B, C, K]
    Q = u2 @ den.reciprocal()
    integrand = t3 * N / (e.unsqueeze(-1) + t2 * Q)
    return (2.0 / math.pi) * h * integrand.sum(-1)


def _drops_eig(d: Tensor, U: Tensor, max_elems: int = 1 << 22) -> Tensor:
    B, C, r = U.shape
    s = d.sqrt()
    z = U * s.unsqueeze(-2)
    out = torch.empty(B, C, dtype=torch.float64, device=U.device)
    step = max(1, max_elems // max(r * r, 1))
    for b in range(B):
        D = torch.diag_embed(d[b])
        for i in range(0, C, step):
            zi = z[b, i:i + step]
            mu = torch.linalg.eigvalsh(D - zi.unsqueeze(-1) * zi.unsqueeze(-2))
            out[b, i:i + step] = s[b].sum() - mu.clamp_min(0).sqrt().sum(-1)
    return out


def nuclear_drops(A: Tensor, method: str = "quad") -> Tensor:
    """``||A||_* - ||M_i A||_*`` for every row i: [B, C, P] -> [B, C] float64 (always >= 0)."""
    if method not in ("quad", "eig"):
        raise ValueError(f"method must be 'quad' or 'eig', got {method!r}")
    d, U = reduced_svd(A)
    return (_drops_quad if method == "quad" else _drops_eig)(d, U)


def nuclear_drops_naive(A: Tensor) -> Tensor:
    """Reference: SVD of every masked matrix (slow; for tests)."""
    A = A.double()
    full = torch.linalg.svdvals(A).sum(-1)
    out = []
    for i in range(A.shape[-2]):
        masked = A.clone()
        masked[..., i, :] = 0
        out.append(full - torch.linalg.svdvals(masked).sum(-1))
    return torch.stack(out, -1)


@register_criterion("coupling")
class Coupling(ActivationCriterion):
    """DCODP intra-layer coupling ``| ||A||_* - ||M_i A||_* |``, mean over images; see module docstring.

    ``method``: "quad" (default, fast) or "eig" (batched eigvalsh). ``hook`` defaults to the
    producer's own output (pre-activation), as DCODP scores the layer's feature map.
    ``linalg_threads``: intra-op threads for the per-map factorisations (None: unchanged).
    """

    def __init__(self, method: str = "quad", linalg_threads: int | None = 1, max_elems: int = 1 << 24,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if method not in ("quad", "eig"):
            raise ValueError(f"method must be 'quad' or 'eig', got {method!r}")
        self.method, self.linalg_threads, self.max_elems = method, linalg_threads, max_elems

    def drops(self, maps: Tensor) -> Tensor:
        """[N, C, *S] maps -> [N, C] nuclear-norm drops."""
        maps = maps.flatten(2)
        step = max(1, self.max_elems // max(maps[0].numel(), 1))
        with num_threads(self.linalg_threads):
            return torch.cat([nuclear_drops(chunk, self.method) for chunk in maps.split(step)])

    def statistic(self, maps: Tensor, grads: Tensor | None) -> Tensor:
        return self.drops(maps).abs().sum(0)
