"""``DetectorAdapter`` for torchvision detection models (Faster R-CNN, RetinaNet, SSD, FCOS).

Label convention. detprune labels are 0-based foreground classes. torchvision is not uniform:

* Faster R-CNN (and its Mask/Keypoint subclasses) and SSD score a softmax over
  ``num_classes`` outputs whose index 0 is *background*; foreground classes are
  ``1..num_classes-1``. The adapter therefore builds them with ``num_classes + 1`` outputs and
  shifts labels by ``+1`` going in and ``-1`` coming out (``label_offset == 1``).
* RetinaNet and FCOS use per-class sigmoids; background is "no class fires", so every output is
  a foreground class and labels pass through unchanged (``label_offset == 0``).

Weights are never downloaded: ``build_torchvision`` always passes ``weights=None,
weights_backbone=None``; load trained state dicts yourself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import detection as tvd
from torchvision.models.detection.fcos import FCOS
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.models.detection.ssd import SSD

from detprune.detection.adapters import torchvision_heads
from detprune.detection.types import Prediction, Target

__all__ = ["TORCHVISION_DETECTORS", "TorchvisionAdapter", "build_torchvision", "label_offset_of"]

TORCHVISION_DETECTORS: dict[str, Any] = {
    "fasterrcnn_mobilenet_v3_large_fpn": tvd.fasterrcnn_mobilenet_v3_large_fpn,
    "fasterrcnn_resnet50_fpn": tvd.fasterrcnn_resnet50_fpn,
    "retinanet_resnet50_fpn": tvd.retinanet_resnet50_fpn,
    "ssd300_vgg16": tvd.ssd300_vgg16,
    "ssdlite320_mobilenet_v3_large": tvd.ssdlite320_mobilenet_v3_large,
    "fcos_resnet50_fpn": tvd.fcos_resnet50_fpn,
}


def label_offset_of(model: nn.Module) -> int:
    """1 if the model reserves output 0 for background (Faster R-CNN, SSD), else 0."""
    if isinstance(model, (tvd.FasterRCNN, SSD)):
        return 1
    if isinstance(model, (RetinaNet, FCOS)):
        return 0
    raise TypeError(f"unsupported torchvision detector {type(model).__name__}")


def _num_outputs(model: nn.Module) -> int:
    """Number of class outputs of the head, background included when there is one."""
    if isinstance(model, tvd.FasterRCNN):
        return int(model.roi_heads.box_predictor.cls_score.out_features)
    if isinstance(model, SSD):
        return int(model.head.classification_head.num_columns)
    return int(model.head.classification_head.num_classes)


def build_torchvision(name: str, num_classes: int, **kwargs: Any) -> nn.Module:
    """Randomly initialised torchvision detector with ``num_classes`` foreground classes.

    ``kwargs`` go to the torchvision builder (``min_size``, ``max_size``, ``score_thresh``...).
    SSD builders have a fixed input size in torchvision; ``size=S`` is accepted here and
    applied to the model's transform after construction. The model carries
    ``model.spec`` so that ``build_torchvision(**model.spec)`` rebuilds the same architecture.
    """
    if name not in TORCHVISION_DETECTORS:
        raise ValueError(f"unknown torchvision detector {name!r}; choose from {sorted(TORCHVISION_DETECTORS)}")
    if num_classes < 1:
        raise ValueError("num_classes must be >= 1")
    for key in ("weights", "weights_backbone"):
        if kwargs.get(key) is not None:
            raise ValueError(f"{key} is not supported: detprune never downloads weights; load a state dict instead")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("weights", "weights_backbone")}
    spec: dict[str, Any] = {"name": name, "num_classes": num_classes, **kwargs}
    size = kwargs.pop("size", None)
    builder = TORCHVISION_DETECTORS[name]
    background = 1 if name.startswith(("fasterrcnn", "ssd")) else 0
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes + background, **kwargs)
    if size is not None:
        if not isinstance(model, SSD):
            raise ValueError("size= only applies to SSD models; use min_size/max_size for the others")
        model.transform.min_size = (int(size),)
        model.transform.max_size = int(size)
        model.transform.fixed_size = (int(size), int(size))
    model.spec = spec
    return model


class TorchvisionAdapter:
    """Drives a torchvision detector through detprune's ``DetectorAdapter`` contract.

    The model's own transform normalises and resizes images, and maps boxes back to the input
    frame, so ``images`` are plain [0, 1] tensors in the frame of the targets.
    """

    def __init__(self, model: nn.Module, num_classes: int | None = None) -> None:
        self.model = model
        self.label_offset = label_offset_of(model)
        inferred = _num_outputs(model) - self.label_offset
        if num_classes is not None and num_classes != inferred:
            raise ValueError(f"num_classes={num_classes} but the model head predicts {inferred} foreground classes")
        self.num_classes = inferred

    @classmethod
    def build(cls, name: str, num_classes: int, **kwargs: Any) -> TorchvisionAdapter:
        """Adapter around ``build_torchvision(name, num_classes, **kwargs)``."""
        return cls(build_torchvision(name, num_classes, **kwargs), num_classes)

    def to_torchvision_targets(self, targets: Sequence[Target], device: torch.device) -> list[dict[str, Tensor]]:
        """Shift labels into torchvision's convention and drop degenerate boxes.

        torchvision raises on boxes with non-positive width or height, which augmentation and
        clipping can produce; they carry no signal, so they are removed rather than fatal.
        """
        out = []
        for t in targets:
            boxes = t["boxes"].to(device=device, dtype=torch.float32).reshape(-1, 4)
            labels = t["labels"].to(device=device, dtype=torch.int64).reshape(-1)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            out.append({"boxes": boxes[keep], "labels": labels[keep] + self.label_offset})
        return out

    def loss(self, images: Tensor | Sequence[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        """torchvision's loss dict; the model is put in train mode, the only mode that returns losses."""
        if not self.model.training:
            self.model.train()
        imgs = list(images)
        tv_targets = self.to_torchvision_targets(targets, imgs[0].device)
        return self.model(imgs, tv_targets)

    @contextmanager
    def _postprocess(self, conf_thres: float, iou_thres: float, max_det: int) -> Iterator[None]:
        """Temporarily set the model's own NMS thresholds (they live on different submodules)."""
        owner = self.model.roi_heads if isinstance(self.model, tvd.FasterRCNN) else self.model
        names = {"score_thresh": conf_thres, "nms_thresh": iou_thres, "detections_per_img": max_det}
        saved = {k: getattr(owner, k) for k in names}
        try:
            for k, v in names.items():
                setattr(owner, k, v)
            yield
        finally:
            for k, v in saved.items():
                setattr(owner, k, v)

    @torch.no_grad()
    def predict(
        self,
        images: Tensor | Sequence[Tensor],
        conf_thres: float = 0.001,
        iou_thres: float = 0.6,
        max_det: int = 300,
    ) -> list[Prediction]:
        """Detections with 0-based labels, scores >= ``conf_thres``, in the input image frame."""
        was_training = self.model.training
        self.model.eval()
        try:
            with self._postprocess(conf_thres, iou_thres, max_det):
                raw = self.model(list(images))
        finally:
            self.model.train(was_training)
        preds: list[Prediction] = []
        for r in raw:
            keep = r["scores"] >= conf_thres
            preds.append(
                Prediction(
                    boxes=r["boxes"][keep].float(),
                    scores=r["scores"][keep].float(),
                    labels=r["labels"][keep].long() - self.label_offset,
                )
            )
        return preds

    def example_inputs(self, images: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """torchvision detectors take a list of [3, H, W] tensors."""
        return [img for img in images]

    def raw_outputs(self, model: nn.Module, images: Sequence[Tensor]) -> torchvision_heads.HeadOutputs:
        """The head's outputs before decoding (one-stage detectors), for attribution's class scores."""
        return torchvision_heads.head_outputs(model, images)

    def class_logits(self, raw: torchvision_heads.HeadOutputs) -> list[Tensor]:
        """Foreground class logits per level [B, A, nc, H, W] of ``raw_outputs``."""
        return torchvision_heads.class_logits(raw)

    def box_outputs(self, raw: torchvision_heads.HeadOutputs) -> list[Tensor]:
        """Box outputs per level [B, A, k, H, W] of ``raw_outputs``, aligned with ``class_logits``."""
        return torchvision_heads.box_outputs(raw)
