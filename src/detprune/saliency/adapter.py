"""The saliency network behind the interface of the shared training loop and of gradient criteria.

``detection.train.fit`` drives any object with ``.model`` and ``.loss(images, targets)``; it
moves targets as a list of dicts, so a mask travels as ``{"mask": [1, H, W]}`` (a plain mask
tensor is accepted too). ``example_inputs`` lets ``detprune.prune(..., adapter=...)`` forward
batches, and ``predict`` gives probabilities for evaluation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from detprune.saliency.loss import bce_iou_loss, masks_of

__all__ = ["SaliencyAdapter", "as_adapter"]


class SaliencyAdapter:
    """``.model``, ``.loss(images, masks) -> {"bce", "iou"}``, ``.predict(images) -> [B, 1, H, W]``."""

    num_classes = 1  # one "class": salient

    def __init__(self, model: nn.Module, iou_weight: float = 1.0) -> None:
        self.model = model
        self.iou_weight = iou_weight

    def loss(self, images: Tensor, targets: Any) -> dict[str, Tensor]:
        return bce_iou_loss(self.model(images), masks_of(targets).to(images.device), self.iou_weight)

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Saliency probabilities in [0, 1], computed in eval mode (the mode is restored)."""
        was = self.model.training
        self.model.eval()
        try:
            return self.model(images).sigmoid()
        finally:
            self.model.train(was)

    def example_inputs(self, images: Tensor) -> Tensor:
        return images


def as_adapter(model: "nn.Module | SaliencyAdapter | str") -> SaliencyAdapter:
    """An adapter for a module, an adapter (returned as is) or a file saved by ``detprune.save``."""
    if isinstance(model, SaliencyAdapter):
        return model
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from detprune.io import load

        model = load(model)  # type: ignore[arg-type]
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a saliency model, adapter or saved-model path, got {type(model).__name__}")
    return SaliencyAdapter(model)
