"""Raw head maps -> dense candidate boxes and per-class confidences (before NMS).

Both decoders return ``boxes`` [B, N, 4] (xyxy, pixels of the network input) and
``scores`` [B, N, nc] in [0, 1], the common input of :func:`nms.postprocess`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .box_coder import anchor_points, cell_grid, dfl_expectation, ltrb_to_xyxy, yolo_boxes


def decode_yolo(raw: list[Tensor], anchors: Tensor, strides: Sequence[int], num_classes: int) -> tuple[Tensor, Tensor]:
    """Decode darknet-style maps ``[B, A*(5+nc), H, W]``; ``anchors`` [L, A, 2] in pixels.

    The confidence of a class is ``sigmoid(obj) * sigmoid(cls)`` as in YOLOv3.
    """
    all_boxes, all_scores = [], []
    for r, anc, s in zip(raw, anchors, strides, strict=True):
        b, _, h, w = r.shape
        na = anc.shape[0]
        p = r.unflatten(1, (na, 5 + num_classes)).permute(0, 1, 3, 4, 2)  # [B, A, H, W, 5+nc]
        cells = cell_grid(h, w, r.device, r.dtype)  # [H, W, 2]
        boxes = yolo_boxes(p[..., :4], cells, anc.to(r)[:, None, None, :], s)
        scores = p[..., 5:].sigmoid() * p[..., 4:5].sigmoid()
        all_boxes.append(boxes.reshape(b, -1, 4))
        all_scores.append(scores.reshape(b, -1, num_classes))
    return torch.cat(all_boxes, 1), torch.cat(all_scores, 1)


def decode_dfl(raw: list[Tensor], strides: Sequence[int], reg_max: int) -> tuple[Tensor, Tensor]:
    """Decode anchor-free DFL maps ``[B, 4*reg_max + nc, H, W]``.

    Each side's distance is the expectation of its softmax distribution over ``reg_max`` bins
    (in stride units, measured from the cell centre); the class confidence is ``sigmoid(cls)``.
    """
    b = raw[0].shape[0]
    flat = torch.cat([r.flatten(2) for r in raw], 2).transpose(1, 2)  # [B, N, 4*reg_max + nc]
    dist, cls = flat.split((4 * reg_max, flat.shape[-1] - 4 * reg_max), -1)
    points, stride_t = anchor_points([r.shape[2:] for r in raw], strides, raw[0].device, raw[0].dtype)
    boxes = ltrb_to_xyxy(dfl_expectation(dist, reg_max), points) * stride_t
    return boxes.view(b, -1, 4), cls.sigmoid()
