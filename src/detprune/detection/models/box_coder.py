"""Box (de)coding between raw head maps and pixel boxes, shared by decoding and the losses.

Keeping one implementation guarantees that what the loss optimises is exactly what
``predict`` decodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# exp() of the darknet wh regression is clamped: exp(4) ~ 55x the anchor is already larger than any image.
MAX_LOG_WH = 4.0


def cell_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Integer cell coordinates ``[H, W, 2]`` as (x, y), i.e. the top-left corner of each cell in grid units."""
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), -1)


# ----------------------------------------------------------------------------------------- darknet / YOLOv3


def yolo_boxes(t: Tensor, cell_xy: Tensor, anchor_wh: Tensor, stride: float) -> Tensor:
    """Darknet box decoding to pixel xyxy.

    ``t``: [..., 4] raw (tx, ty, tw, th); ``cell_xy``: broadcastable [..., 2] cell indices;
    ``anchor_wh``: broadcastable [..., 2] anchor size in pixels.
    centre = (sigmoid(txy) + cell) * stride, size = anchor * exp(twh).
    """
    xy = (t[..., :2].sigmoid() + cell_xy) * stride
    wh = t[..., 2:4].clamp(max=MAX_LOG_WH).exp() * anchor_wh
    return torch.cat((xy - wh / 2, xy + wh / 2), -1)


# ----------------------------------------------------------------------------------------- anchor-free / DFL


def anchor_points(
    shapes: Sequence[Sequence[int]], strides: Sequence[int], device: torch.device, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Cell centres of every level, flattened in (level, y, x) order.

    Returns ``points`` [N, 2] in grid units of their own level (x + 0.5, y + 0.5) and
    ``stride_tensor`` [N, 1], so ``points * stride_tensor`` are pixel centres.
    """
    points, stride_list = [], []
    for (h, w), s in zip(shapes, strides, strict=True):
        points.append(cell_grid(h, w, device, dtype).view(-1, 2) + 0.5)
        stride_list.append(torch.full((h * w, 1), float(s), device=device, dtype=dtype))
    return torch.cat(points), torch.cat(stride_list)


def dfl_expectation(dist_logits: Tensor, reg_max: int) -> Tensor:
    """Expected distance of each side from its discrete distribution: [..., 4*reg_max] -> [..., 4]."""
    proj = torch.arange(reg_max, device=dist_logits.device, dtype=dist_logits.dtype)
    probs = dist_logits.unflatten(-1, (4, reg_max)).softmax(-1)
    return probs @ proj


def ltrb_to_xyxy(ltrb: Tensor, points: Tensor) -> Tensor:
    """Distances (left, top, right, bottom) from ``points`` to box edges -> xyxy (same units)."""
    lt, rb = ltrb.chunk(2, -1)
    return torch.cat((points - lt, points + rb), -1)


def xyxy_to_ltrb(boxes: Tensor, points: Tensor, max_dist: float) -> Tensor:
    """Inverse of :func:`ltrb_to_xyxy`, clamped into the representable range [0, max_dist)."""
    x1y1, x2y2 = boxes.chunk(2, -1)
    return torch.cat((points - x1y1, x2y2 - points), -1).clamp(0, max_dist - 0.01)
