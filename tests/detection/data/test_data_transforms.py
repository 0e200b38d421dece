"""Letterbox geometry, flips, colour jitter, mosaic, and augmented datasets."""

from __future__ import annotations

import pytest
import torch

from detprune.detection.data import build_dataset, letterbox, unletterbox_boxes
from detprune.detection.data.transforms import PAD_VALUE, color_jitter, hflip, mosaic


def _image(h: int, w: int, value: int = 200) -> torch.Tensor:
    return torch.full((3, h, w), value, dtype=torch.uint8)


def test_letterbox_wide_image() -> None:
    image = _image(100, 200)
    image[:, 10:30, 20:60] = 0  # a dark object exactly where the box is
    boxes = torch.tensor([[20.0, 10.0, 60.0, 30.0]])
    out, out_boxes, params = letterbox(image, boxes, 100)
    assert out.shape == (3, 100, 100) and out.dtype == torch.uint8
    assert params.scale == (0.5, 0.5) and params.pad == (0, 25) and params.orig_size == (100, 200)
    assert out_boxes.tolist() == [[10.0, 30.0, 30.0, 40.0]]
    assert (out[:, :25] == PAD_VALUE).all() and (out[:, 75:] == PAD_VALUE).all()
    assert out[:, 32:38, 12:28].float().mean() < 20  # the object moved with its box
    back = unletterbox_boxes(out_boxes, params.scale, params.pad, params.orig_size)
    assert torch.allclose(back, boxes)


def test_letterbox_tall_odd_image_and_upscaling() -> None:
    out, out_boxes, params = letterbox(_image(75, 31), torch.tensor([[0.0, 0.0, 31.0, 75.0]]), 150)
    assert out.shape == (3, 150, 150)
    new_w = round(31 * 2)
    assert params.pad == ((150 - new_w) // 2, 0)
    assert out_boxes[0, 0] == params.pad[0] and out_boxes[0, 2] == params.pad[0] + new_w
    assert out_boxes[0, 3] == 150


def test_unletterbox_clips_to_the_image() -> None:
    back = unletterbox_boxes(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), (0.5, 0.5), (0, 25), (100, 200))
    assert back.tolist() == [[0.0, 0.0, 200.0, 100.0]]


def test_hflip_moves_boxes_with_pixels() -> None:
    image = torch.zeros(3, 10, 20)
    image[:, 2:4, 1:5] = 1
    flipped, boxes = hflip(image, torch.tensor([[1.0, 2.0, 5.0, 4.0]]))
    assert boxes.tolist() == [[15.0, 2.0, 19.0, 4.0]]
    assert flipped[:, 2:4, 15:19].min() == 1 and flipped.sum() == image.sum()


def test_color_jitter_range_and_grey_axis() -> None:
    torch.manual_seed(0)
    grey = torch.full((3, 8, 8), PAD_VALUE / 255)
    out = color_jitter(grey, hue=0.5, saturation=0.9, value=0.0)
    assert torch.allclose(out, grey, atol=1e-5)  # hue and saturation keep grey grey
    colourful = torch.rand(3, 16, 16)
    outs = [color_jitter(colourful) for _ in range(5)]
    assert all(0 <= o.min() and o.max() <= 1 for o in outs)
    assert all(not torch.allclose(o, colourful, atol=1e-3) for o in outs)
    assert color_jitter(colourful, 0, 0, 0).allclose(colourful, atol=1e-5)  # zero gains: identity


def test_mosaic_geometry() -> None:
    torch.manual_seed(1)
    samples = [
        (_image(100, 100, 10 * (k + 1)), torch.tensor([[0.0, 0.0, 100.0, 100.0], [40.0, 40.0, 60.0, 60.0]]),
         torch.tensor([k, 10 + k]))
        for k in range(4)
    ]
    canvas, boxes, labels = mosaic(samples, 64)
    assert canvas.shape == (3, 64, 64) and canvas.dtype == torch.uint8
    assert set(canvas.unique().tolist()) <= {10, 20, 30, 40, PAD_VALUE}
    assert set(labels.tolist()) & {0, 1, 2, 3}  # whole-image boxes of several tiles survive
    assert ((boxes >= 0) & (boxes <= 64)).all()
    assert ((boxes[:, 2:] - boxes[:, :2]) >= 2).all()
    for box, label in zip(boxes.round().long().tolist(), labels.tolist(), strict=True):
        if label < 4:  # a full-tile box covers pixels of its own tile's grey value
            x1, y1, x2, y2 = box
            assert (canvas[0, y1:y2, x1:x2] == 10 * (label + 1)).all()


def test_augmented_dataset_is_random_but_seedable(make_yolo) -> None:  # type: ignore[no-untyped-def]
    labels = {f"i{k}": f"{k % 3} 0.3 0.4 0.2 0.3\n" for k in range(6)}
    data_yaml = make_yolo(labels)
    ds = build_dataset(data_yaml, "train", img_size=64, augment=True, mosaic=0.5)
    torch.manual_seed(5)
    first = [ds[k] for k in range(6)]
    torch.manual_seed(5)
    second = [ds[k] for k in range(6)]
    for (a, ta), (b, tb) in zip(first, second, strict=True):
        assert torch.equal(a, b) and torch.equal(ta["boxes"], tb["boxes"])
        assert a.shape == (3, 64, 64) and "scale" not in ta  # no mapping back for augmented samples
    plain = build_dataset(data_yaml, "train", img_size=64)
    assert any(not torch.equal(a, plain[k][0]) for k, (a, _) in enumerate(first))
    flipped = 0
    torch.manual_seed(0)
    for _ in range(20):
        _, t = build_dataset(data_yaml, "train", img_size=64, augment=True)[0]
        flipped += bool(torch.allclose(t["boxes"][0, 0], torch.tensor(64 - 0.4 * 64), atol=0.5))
    assert 3 <= flipped <= 17


@pytest.mark.parametrize("mosaic_p", [0.0, 1.0])
def test_augmented_boxes_stay_valid(make_yolo, mosaic_p: float) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({f"i{k}": "1 0.5 0.5 0.9 0.9\n2 0.1 0.1 0.1 0.1\n" for k in range(4)})
    ds = build_dataset(data_yaml, "train", img_size=96, augment=True, mosaic=mosaic_p)
    torch.manual_seed(3)
    for k in range(8):
        image, t = ds[k % 4]
        assert image.shape == (3, 96, 96) and 0 <= image.min() and image.max() <= 1
        b = t["boxes"]
        assert len(b) == len(t["labels"]) and ((b >= 0) & (b <= 96)).all()
        assert ((b[:, 2:] - b[:, :2]) > 0).all()
