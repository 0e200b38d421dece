"""Batching of per-image :class:`Target` dicts into the tensor layouts the losses vectorise over."""

from __future__ import annotations

import torch
from torch import Tensor

from ..types import Target


def flatten_targets(targets: list[Target], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """All boxes of the batch in one list: ``image_index`` [M], ``labels`` [M], ``boxes`` [M, 4] (xyxy)."""
    idx = [torch.full((len(t["labels"]),), i, dtype=torch.int64) for i, t in enumerate(targets)]
    if not idx:
        return (torch.zeros(0, dtype=torch.int64, device=device),) * 2 + (torch.zeros(0, 4, device=device),)
    return (
        torch.cat(idx).to(device),
        torch.cat([t["labels"].reshape(-1).to(device, torch.int64) for t in targets]),
        torch.cat([t["boxes"].reshape(-1, 4).to(device, torch.float32) for t in targets]),
    )


def pad_targets(targets: list[Target], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image padded targets: ``labels`` [B, M] int64, ``boxes`` [B, M, 4], ``valid`` [B, M] bool.

    ``M`` is the largest box count of the batch (0 if the batch has no box).
    """
    m = max((len(t["labels"]) for t in targets), default=0)
    b = len(targets)
    labels = torch.zeros(b, m, dtype=torch.int64, device=device)
    boxes = torch.zeros(b, m, 4, device=device)
    valid = torch.zeros(b, m, dtype=torch.bool, device=device)
    for i, t in enumerate(targets):
        n = len(t["labels"])
        labels[i, :n] = t["labels"].reshape(-1).to(device)
        boxes[i, :n] = t["boxes"].reshape(-1, 4).to(device, torch.float32)
        valid[i, :n] = True
    return labels, boxes, valid
