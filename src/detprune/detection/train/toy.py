"""A tiny one-box-per-image detector on generated images, for smoke tests of the training stack.

It honours the ``DetectorAdapter`` contract with a YOLO-like raw-map forward, BatchNorm (to
exercise buffer handling under EMA/DDP) and optional dropout (to exercise RNG restoration),
while training in milliseconds on CPU. It is not a real detector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from detprune.detection.types import Prediction, Target


class ToyDetector(nn.Module):
    """conv-BN-ReLU x2 -> 1x1 head; ``forward`` returns ``[raw map [B, 4 + nc, H/4, W/4]]``."""

    def __init__(self, num_classes: int = 3, width: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Dropout2d(dropout),
            nn.Conv2d(width, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(width, 4 + num_classes, 1)
        self.spec = {"num_classes": num_classes, "width": width, "dropout": dropout}

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.head(self.body(x))]


class ToyAdapter:
    """Pooled head output -> one normalised box (L1) and one class (cross-entropy) per image."""

    def __init__(self, model: ToyDetector) -> None:
        self.model = model
        self.num_classes = model.num_classes

    def _pooled(self, images: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(images)[0].mean((2, 3))
        h, w = images.shape[-2:]
        scale = images.new_tensor([w, h, w, h])
        return out[:, :4].sigmoid() * scale, out[:, 4:]

    def loss(self, images: Tensor, targets: list[Target]) -> dict[str, Tensor]:
        boxes, logits = self._pooled(images)
        h, w = images.shape[-2:]
        gt_boxes = torch.stack([t["boxes"][0] for t in targets]).to(boxes)
        gt_labels = torch.stack([t["labels"][0] for t in targets]).to(images.device)
        return {
            "box": F.l1_loss(boxes / max(h, w), gt_boxes / max(h, w)),
            "cls": F.cross_entropy(logits, gt_labels),
        }

    @torch.no_grad()
    def predict(
        self, images: Tensor, conf_thres: float = 0.001, iou_thres: float = 0.6, max_det: int = 300
    ) -> list[Prediction]:
        was = self.model.training
        self.model.eval()
        try:
            boxes, logits = self._pooled(images)
        finally:
            self.model.train(was)
        scores, labels = logits.softmax(1).max(1)
        preds = []
        for b, s, lab in zip(boxes, scores, labels):
            keep = (s >= conf_thres).reshape(1)
            preds.append(Prediction(boxes=b[None][keep], scores=s[None][keep], labels=lab[None][keep]))
        return preds

    def example_inputs(self, images: Tensor) -> Tensor:
        return images


class ToyBoxes(Dataset):
    """Images with one coloured rectangle; the class is which colour channel is lit."""

    def __init__(self, n: int = 16, size: int = 32, num_classes: int = 3, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g) * 0.2
        self.targets: list[Target] = []
        for i in range(n):
            x1, y1 = torch.randint(0, size // 2, (2,), generator=g).tolist()
            bw, bh = torch.randint(size // 4, size // 2, (2,), generator=g).tolist()
            label = int(torch.randint(0, num_classes, (1,), generator=g))
            self.images[i, label % 3, y1 : y1 + bh, x1 : x1 + bw] = 1.0
            box = torch.tensor([[x1, y1, x1 + bw, y1 + bh]], dtype=torch.float32)
            self.targets.append(Target(boxes=box, labels=torch.tensor([label]), image_id=i))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Tensor, Target]:
        return self.images[i], self.targets[i]


def collate(batch: list[tuple[Tensor, Target]]) -> tuple[Tensor, list[Target]]:
    """Stack images, keep targets as a list (the loop's batch contract)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def toy_loader(n: int = 16, size: int = 32, batch_size: int = 4, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """Single-process loader over ``ToyBoxes``."""
    return DataLoader(ToyBoxes(n, size, seed=seed), batch_size=batch_size, shuffle=shuffle, collate_fn=collate)
