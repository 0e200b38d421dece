"""BCE + soft-IoU loss for saliency maps.

BCE alone is dominated by the background when the salient object covers well under 1 % of
the image: predicting "nothing" is almost free. The soft IoU term (computed per image on the
sigmoid map, as in BASNet) is normalised by the object's own size, so a 10-pixel object
weighs as much as a 10,000-pixel one. ``smooth`` keeps the IoU of an empty ground truth
defined (1 when the prediction is empty too) without noticeably biasing tiny objects.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["bce_iou_loss", "masks_of", "saliency_loss_fn", "soft_iou_loss"]


def soft_iou_loss(logits: Tensor, masks: Tensor, smooth: float = 1.0) -> Tensor:
    """Mean over images of ``1 - (I + s) / (U + s)`` with I, U the soft intersection and union."""
    p = logits.sigmoid().flatten(1)
    g = masks.flatten(1).to(p)
    inter = (p * g).sum(1)
    union = (p + g - p * g).sum(1)
    return (1 - (inter + smooth) / (union + smooth)).mean()


def bce_iou_loss(logits: Tensor, masks: Tensor, iou_weight: float = 1.0) -> dict[str, Tensor]:
    """``{"bce": ..., "iou": ...}`` for logits [B, 1, H, W] and {0, 1} masks of the same shape."""
    if logits.shape != masks.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and masks {tuple(masks.shape)} differ in shape")
    masks = masks.to(logits)
    return {"bce": F.binary_cross_entropy_with_logits(logits, masks),
            "iou": iou_weight * soft_iou_loss(logits, masks)}


def masks_of(targets: Any) -> Tensor:
    """Masks [B, 1, H, W] from a tensor batch or a list of ``{"mask": [1, H, W]}`` targets.

    The list form exists because the shared training loop moves targets as a list of dicts.
    """
    if isinstance(targets, Tensor):
        return targets if targets.dim() == 4 else targets.unsqueeze(1)
    masks = [t["mask"] if isinstance(t, dict) else t for t in targets]
    return torch.stack([m if m.dim() == 3 else m.unsqueeze(0) for m in masks])


def saliency_loss_fn(model: nn.Module, batch: Any) -> Tensor:
    """``loss_fn(model, batch)`` for gradient criteria (``detprune.prune(..., loss_fn=...)``)."""
    images, targets = batch[0], batch[1]
    return sum(bce_iou_loss(model(images), masks_of(targets)).values())  # type: ignore[return-value]
