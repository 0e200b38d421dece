"""Geometric and photometric transforms for detection samples.

Images are uint8 [3, H, W] tensors until the colour step; boxes are float32 [N, 4] xyxy
pixels. Resizing, padding and flipping go through ``torchvision.transforms.v2``, which
moves boxes along with pixels. Colour jitter is a single 3x3 colour matrix instead of
``v2.ColorJitter``: its hue path costs ~0.4 s per 640x640 image on a 2-core CPU, the
matrix about 2 ms. Mosaic has no torchvision counterpart and is implemented here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.ops import box_area
from torchvision.transforms.v2 import functional as F

PAD_VALUE = 114  # grey padding of the letterbox, as in YOLO tooling (114/255 after scaling)


@dataclass(frozen=True)
class LetterboxParams:
    """How an image was letterboxed: ``x_new = x_orig * scale[0] + pad[0]`` (and alike for y)."""

    scale: tuple[float, float]  # (sx, sy): equal up to the rounding of the resized size
    pad: tuple[int, int]  # (left, top) padding in pixels of the letterboxed image
    orig_size: tuple[int, int]  # (height, width) of the source image


def _boxes(boxes: Tensor, height: int, width: int) -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))


def letterbox(image: Tensor, boxes: Tensor, size: int) -> tuple[Tensor, Tensor, LetterboxParams]:
    """Resize keeping aspect ratio so the longer side is ``size``, then pad to ``size`` x ``size``."""
    height, width = image.shape[-2:]
    r = size / max(height, width)
    new_h, new_w = max(1, round(height * r)), max(1, round(width * r))
    left, top = (size - new_w) // 2, (size - new_h) // 2
    padding = [left, top, size - new_w - left, size - new_h - top]
    bb = _boxes(boxes, height, width)
    if (new_h, new_w) != (height, width):
        image = F.resize(image, [new_h, new_w], antialias=True)
        bb = F.resize(bb, [new_h, new_w])
    image = F.pad(image, padding, fill=PAD_VALUE)
    bb = F.pad(bb, padding)
    params = LetterboxParams(scale=(new_w / width, new_h / height), pad=(left, top), orig_size=(height, width))
    return image, bb.as_subclass(Tensor), params


def unletterbox_boxes(
    boxes: Tensor, scale: Sequence[float], pad: Sequence[float], orig_size: Sequence[int]
) -> Tensor:
    """Map xyxy boxes (e.g. predictions) from the letterboxed frame back to the source image."""
    sx, sy = scale
    px, py = pad
    out = (boxes - boxes.new_tensor([px, py, px, py])) / boxes.new_tensor([sx, sy, sx, sy])
    height, width = orig_size
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def hflip(image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    height, width = image.shape[-2:]
    return F.horizontal_flip(image), F.horizontal_flip(_boxes(boxes, height, width)).as_subclass(Tensor)


def color_jitter(image: Tensor, hue: float = 0.015, saturation: float = 0.7, value: float = 0.4) -> Tensor:
    """HSV-like jitter of a float image in [0, 1], gains drawn like YOLO's ``hsv_h/s/v``.

    Hue turns colours about the grey axis, saturation blends with luma, value scales:
    all linear in RGB, so they compose into one matrix (grey padding keeps its hue).
    """
    dh, ds, dv = ((torch.rand(3) * 2 - 1) * torch.tensor([hue, saturation, value])).tolist()
    theta = 2 * math.pi * dh
    k = 1 / math.sqrt(3)
    cross = torch.tensor([[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]])  # cross product with the grey axis
    eye = torch.eye(3)
    rotate = eye + math.sin(theta) * cross + (1 - math.cos(theta)) * (cross @ cross)  # Rodrigues
    luma = torch.tensor([[0.299, 0.587, 0.114]])
    saturate = (1 + ds) * eye + (-ds) * torch.ones(3, 1) @ luma
    matrix = (1 + dv) * saturate @ rotate
    return torch.einsum("ij,jhw->ihw", matrix, image).clamp_(0, 1)


def mosaic(
    samples: Sequence[tuple[Tensor, Tensor, Tensor]], size: int, min_visible: float = 0.25
) -> tuple[Tensor, Tensor, Tensor]:
    """Four ``(image uint8, boxes, labels)`` samples tiled around a random centre of a
    ``size`` x ``size`` canvas, each at letterbox scale so object sizes match evaluation.

    Boxes are clipped to their tile and kept when at least ``min_visible`` of their area
    and 2 px per side remain.
    """
    assert len(samples) == 4, "mosaic takes exactly 4 samples"
    canvas = torch.full((3, size, size), PAD_VALUE, dtype=torch.uint8)
    xc, yc = (int(v) for v in torch.randint(size // 4, 3 * size // 4 + 1, (2,)))
    all_boxes, all_labels = [], []
    for quadrant, (image, boxes, labels) in enumerate(samples):
        height, width = image.shape[-2:]
        r = size / max(height, width)
        nh, nw = max(1, round(height * r)), max(1, round(width * r))
        tile = F.resize(image, [nh, nw], antialias=True)
        scaled = F.resize(_boxes(boxes, height, width), [nh, nw]).as_subclass(Tensor)
        left_side, top_side = quadrant in (0, 2), quadrant in (0, 1)
        x1a, x2a = (max(xc - nw, 0), xc) if left_side else (xc, min(xc + nw, size))
        y1a, y2a = (max(yc - nh, 0), yc) if top_side else (yc, min(yc + nh, size))
        x1b = nw - (x2a - x1a) if left_side else 0
        y1b = nh - (y2a - y1a) if top_side else 0
        canvas[:, y1a:y2a, x1a:x2a] = tile[:, y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        shifted = scaled + scaled.new_tensor([x1a - x1b, y1a - y1b] * 2)
        clipped = shifted.clone()
        clipped[:, 0::2] = clipped[:, 0::2].clamp(x1a, x2a)
        clipped[:, 1::2] = clipped[:, 1::2].clamp(y1a, y2a)
        wh = clipped[:, 2:] - clipped[:, :2]
        keep = (box_area(clipped) >= min_visible * box_area(shifted)) & (wh >= 2).all(dim=1)
        all_boxes.append(clipped[keep])
        all_labels.append(labels[keep])
    return canvas, torch.cat(all_boxes), torch.cat(all_labels)
