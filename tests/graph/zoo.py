"""The detectors of the zoo test and how to read their raw (pre-NMS) head outputs."""

from __future__ import annotations

import torch
import torchvision.models.detection as tvd
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

TORCHVISION = ["fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_frozenbn",
               "retinanet_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large", "fcos_resnet50_fpn"]


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Swap BatchNorm2d for torchvision's FrozenBatchNorm2d, as torchvision does with pretrained weights."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def build_torchvision(name: str, size: int = 320, num_classes: int = 5) -> nn.Module:
    base = name.removesuffix("_frozenbn")
    kwargs = dict(weights=None, weights_backbone=None, num_classes=num_classes)
    if not base.startswith("ssd"):
        kwargs.update(min_size=size, max_size=size)
    model = getattr(tvd, base)(**kwargs)
    if name.endswith("_frozenbn"):
        freeze_batchnorm(model.backbone.body)
    return model.eval()


def torchvision_raw_outputs(model: nn.Module, images: list[Tensor]) -> list[Tensor]:
    """Head outputs before any data-dependent post-processing, with fixed proposals for RoI heads."""
    with torch.no_grad():
        image_list, _ = model.transform(images)
        features = model.backbone(image_list.tensors)
        if isinstance(features, Tensor):
            features = {"0": features}
        feats = list(features.values())
        if isinstance(model, tvd.FasterRCNN):
            objectness, deltas = model.rpn.head(feats)
            h, w = image_list.tensors.shape[-2:]
            g = torch.Generator().manual_seed(0)
            xy = torch.rand(16, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
            wh = torch.rand(16, 2, generator=g) * torch.tensor([w * 0.4, h * 0.4]) + 8
            proposals = [torch.cat([xy, xy + wh], 1)]
            pooled = model.roi_heads.box_roi_pool(features, proposals, image_list.image_sizes)
            scores, boxes = model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))
            return objectness + deltas + [scores, boxes]
        head = model.head(feats)
        return list(head.values())
