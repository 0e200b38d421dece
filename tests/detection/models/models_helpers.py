"""Shared helpers of the built-in detector tests: a synthetic two-box scene and a short overfit loop.

A plain module (not conftest) so that test files import it by a project-unique name.
"""

from __future__ import annotations

import torch
from torch import nn

from detprune.detection.models import BuiltinAdapter
from detprune.detection.types import Target, total_loss

SIZE = 128
GT_BOXES = torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 30.0, 110.0, 100.0]])
GT_LABELS = torch.tensor([0, 1])


def make_scene() -> tuple[torch.Tensor, list[Target]]:
    """One 128x128 image with two bright rectangles of different colours (= classes)."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, SIZE, SIZE, generator=g) * 0.2
    img[0, 0, 12:60, 10:50] = 0.9
    img[0, 1, 30:100, 60:110] = 0.9
    return img, [Target(boxes=GT_BOXES.clone(), labels=GT_LABELS.clone(), image_id=0)]


def recalibrate_bn(model: nn.Module, images: torch.Tensor) -> None:
    """Set BN running statistics to those of ``images`` so eval mode matches what was just trained."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one batch -> exactly its statistics
    model.train()
    with torch.no_grad():
        model(images)


def overfit(
    adapter: BuiltinAdapter, images: torch.Tensor, targets: list[Target], steps: int, lr: float = 0.005
) -> list[float]:
    """Adam on a single batch; returns the total loss of every step."""
    opt = torch.optim.Adam(adapter.model.parameters(), lr=lr)
    adapter.model.train()
    history = []
    for _ in range(steps):
        loss = total_loss(adapter.loss(images, targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    return history
