"""Shared data contracts of the detection workflow.

Every dataset yields ``(image, target)`` pairs and every detector is driven through a
``DetectorAdapter``, so training, evaluation, criteria and the CLI never need to know
whether a model is built-in, torchvision or Ultralytics.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

import torch
from torch import Tensor, nn


class Target(TypedDict):
    """Ground truth of one image, in the pixel frame of the image tensor it accompanies."""

    boxes: Tensor  # float32 [N, 4], (x1, y1, x2, y2) absolute pixels
    labels: Tensor  # int64 [N], 0-based class index
    image_id: int


class Prediction(TypedDict):
    """Post-processed detections of one image (after score threshold and NMS)."""

    boxes: Tensor  # float32 [N, 4], xyxy pixels of the input image tensor
    scores: Tensor  # float32 [N]
    labels: Tensor  # int64 [N], 0-based


class DetectorAdapter(Protocol):
    """What the training loop, the evaluator and data-driven criteria need from a detector."""

    model: nn.Module
    num_classes: int

    def loss(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        """Training losses for a batch ``images`` [B, 3, H, W] in [0, 1]; the total is their sum."""
        ...

    def predict(
        self, images: Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300
    ) -> list[Prediction]:
        """Detections per image, in eval mode, for a batch [B, 3, H, W] in [0, 1]."""
        ...

    def example_inputs(self, images: Tensor) -> Any:
        """What ``model`` takes as forward input for ``images`` (passed to ``detprune.groups``)."""
        ...


def total_loss(losses: dict[str, Tensor]) -> Tensor:
    """Sum of a loss dict, the quantity every optimiser step minimises."""
    return torch.stack([v for v in losses.values()]).sum()
