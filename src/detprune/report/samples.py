"""Sample detections before/after pruning, drawn side by side on validation images.

One row per image; the first column shows the ground truth, then one column per model with
its detections above the F1 operating point (score >= ``score_thres``). Numbers say how much a
model lost; pictures say *what* it lost (small objects, a class, localisation).
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]
HEADER = 22


def _to_pil(image: Any) -> Image.Image:
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)


def _draw_boxes(img: Image.Image, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray | None,
                names: Sequence[str], font: Any) -> Image.Image:
    img = img.copy()
    d = ImageDraw.Draw(img)
    boxes = boxes.astype(float).reshape(-1, 4)
    labels = labels.astype(int).reshape(-1)
    sc = None if scores is None else scores.astype(float)
    for i, (box, lab) in enumerate(zip(boxes, labels)):
        color = _PALETTE[lab % len(_PALETTE)]
        d.rectangle([float(v) for v in box], outline=color, width=2)
        text = names[lab] if lab < len(names) else str(lab)
        if sc is not None:
            text += f" {sc[i]:.2f}"
        x, y = float(box[0]), max(0.0, float(box[1]) - 11)
        d.rectangle([x, y, x + 6 * len(text) + 2, y + 11], fill=color)
        d.text((x + 1, y), text, fill=(0, 0, 0), font=font)
    return img


def detection_grid(images: Sequence[Any], targets: Sequence[dict] | None, columns: Sequence[tuple[str, Sequence[dict]]],
                   names: Sequence[str], score_thres: float = 0.25) -> bytes:
    """PNG of ``len(images)`` rows x (ground truth + one column per ``(model name, predictions)``)."""
    font = ImageFont.load_default()
    pics = [_to_pil(im) for im in images]
    w = max(p.width for p in pics)
    h = max(p.height for p in pics)
    titles = (["ground truth"] if targets is not None else []) + [name for name, _ in columns]
    grid = Image.new("RGB", (w * len(titles), HEADER + h * len(pics)), (255, 255, 255))
    d = ImageDraw.Draw(grid)
    for c, title in enumerate(titles):
        d.text((c * w + 4, 5), title, fill=(0, 0, 0), font=font)
    for r, pic in enumerate(pics):
        cells = []
        if targets is not None:
            cells.append(_draw_boxes(pic, _np(targets[r]["boxes"]), _np(targets[r]["labels"]), None, names, font))
        for _, preds in columns:
            scores = _np(preds[r]["scores"])
            keep = scores >= score_thres
            cells.append(_draw_boxes(pic, _np(preds[r]["boxes"])[keep], _np(preds[r]["labels"])[keep], scores[keep],
                                     names, font))
        for c, cell in enumerate(cells):
            grid.paste(cell, (c * w, HEADER + r * h))
    buf = io.BytesIO()
    grid.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
