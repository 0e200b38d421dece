"""Score threshold + class-aware NMS turning dense candidates into :class:`Prediction` dicts."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms

from ..types import Prediction

# Candidates kept per image before NMS: bounds the cost when conf_thres is tiny (mAP evaluation).
MAX_NMS_CANDIDATES = 30000


def postprocess(
    boxes: Tensor,
    scores: Tensor,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    image_size: tuple[int, int] | None = None,
) -> list[Prediction]:
    """Per image: every (box, class) pair above ``conf_thres`` (multi-label), class-wise NMS, best ``max_det``.

    ``boxes`` [B, N, 4] xyxy, ``scores`` [B, N, nc]; boxes are clipped to ``image_size`` = (H, W) if given.
    """
    out: list[Prediction] = []
    for img_boxes, img_scores in zip(boxes, scores, strict=True):
        idx, labels = (img_scores > conf_thres).nonzero(as_tuple=True)
        conf = img_scores[idx, labels]
        if conf.numel() > MAX_NMS_CANDIDATES:
            conf, top = conf.topk(MAX_NMS_CANDIDATES)
            idx, labels = idx[top], labels[top]
        cand = img_boxes[idx].float()
        if image_size is not None:
            cand[:, 0::2] = cand[:, 0::2].clamp(0, image_size[1])
            cand[:, 1::2] = cand[:, 1::2].clamp(0, image_size[0])
        keep = batched_nms(cand, conf.float(), labels, iou_thres)[:max_det]  # sorted by score
        out.append(Prediction(boxes=cand[keep], scores=conf[keep].float(), labels=labels[keep].to(torch.int64)))
    return out
