"""Our mAP (faster-coco-eval) equals pycocotools' COCOeval on the real COCO128 val boxes."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detprune.detection.evaluate import evaluate_predictions
from detprune.detection.types import Prediction, Target

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "coco128"
NUM_CLASSES = 80


def _load_coco128_val() -> list[Target]:
    """YOLO labels (class cx cy w h, normalised) -> xyxy pixel Targets, read directly."""
    label_dir, image_dir = DATA / "labels" / "val2017", DATA / "images" / "val2017"
    if not label_dir.is_dir():
        pytest.skip(f"COCO128 not found at {DATA} (shared data absent); mAP parity test needs real boxes")
    targets: list[Target] = []
    for i, img in enumerate(sorted(image_dir.glob("*.jpg"))):
        with Image.open(img) as im:
            w, h = im.size
        lbl = label_dir / f"{img.stem}.txt"
        rows = np.loadtxt(lbl, ndmin=2) if lbl.exists() and lbl.stat().st_size else np.zeros((0, 5))
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        targets.append(
            Target(
                boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                labels=torch.tensor(rows[:, 0], dtype=torch.int64),
                image_id=i,
            )
        )
    return targets


def _fake_predictions(targets: list[Target], seed: int) -> list[Prediction]:
    """Jittered gt boxes with random scores, missed boxes, class swaps and false positives."""
    rng = np.random.default_rng(seed)
    preds: list[Prediction] = []
    for t in targets:
        g = t["boxes"].double().numpy()
        labels = t["labels"].numpy().copy()
        keep = rng.random(len(g)) > 0.15  # ~15 % missed
        g, labels = g[keep], labels[keep]
        wh = np.maximum(g[:, 2:] - g[:, :2], 1.0)
        boxes = g + rng.normal(0, 0.08, g.shape) * np.concatenate([wh, wh], 1)  # IoUs spread over .5-.95
        swap = rng.random(len(labels)) < 0.1
        labels[swap] = rng.integers(0, NUM_CLASSES, swap.sum())
        n_fp = rng.poisson(3)
        xy = rng.uniform(0, 500, (n_fp, 2))
        fp = np.concatenate([xy, xy + rng.uniform(4, 200, (n_fp, 2))], 1)
        dup = g[: len(g) // 5] + rng.normal(0, 2, (len(g) // 5, 4))  # duplicate detections
        boxes = np.concatenate([boxes, fp, dup])
        labels = np.concatenate([labels, rng.integers(0, NUM_CLASSES, n_fp), labels[: len(dup)]])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)  # keep boxes valid
        preds.append(
            Prediction(
                boxes=torch.tensor(boxes, dtype=torch.float32),
                scores=torch.tensor(rng.random(len(boxes)), dtype=torch.float32),
                labels=torch.tensor(labels, dtype=torch.int64),
            )
        )
    return preds


def _pycocotools_stats(preds: list[Prediction], targets: list[Target]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b: torch.Tensor) -> list[list[float]]:
        b = b.double().numpy().copy()
        b[:, 2:] -= b[:, :2]
        return b.tolist()

    gt = {
        "images": [{"id": i + 1} for i in range(len(targets))],
        "categories": [{"id": k + 1} for k in range(NUM_CLASSES)],
        "annotations": [],
    }
    for i, t in enumerate(targets):
        for box, c in zip(xywh(t["boxes"]), t["labels"].tolist()):
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": i + 1,
                    "category_id": c + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    dets = [
        {"image_id": i + 1, "category_id": c + 1, "bbox": box, "score": s}
        for i, p in enumerate(preds)
        for box, c, s in zip(xywh(p["boxes"]), p["labels"].tolist(), p["scores"].double().tolist())
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.fixture(scope="module")
def coco128_targets() -> list[Target]:
    return _load_coco128_val()


@pytest.mark.parametrize("stress", [False, True], ids=["continuous-scores", "tied-scores+maxdets"])
def test_map_matches_pycocotools_on_coco128(coco128_targets: list[Target], stress: bool) -> None:
    preds = _fake_predictions(coco128_targets, seed=int(stress))
    if stress:  # score ties (sort stability) and >100 detections of one class in one image (maxDets cut)
        for p in preds:
            p["scores"] = torch.round(p["scores"] * 10) / 10
        p, t, n = preds[0], coco128_targets[0], 250
        gen = torch.Generator().manual_seed(0)
        p["boxes"] = torch.cat([p["boxes"], t["boxes"][:1] + torch.rand(n, 4, generator=gen) * 8])
        p["scores"] = torch.cat([p["scores"], torch.rand(n, generator=gen)])
        p["labels"] = torch.cat([p["labels"], t["labels"][:1].repeat(n)])
    ours = evaluate_predictions(preds, coco128_targets, NUM_CLASSES)
    ref = _pycocotools_stats(preds, coco128_targets)
    got = [ours.map, ours.map50, ours.map75, ours.map_small, ours.map_medium, ours.map_large]
    assert 0.2 < ours.map < 0.9  # the generated predictions exercise the whole IoU range
    # measured agreement: <= 2e-16 (float64 rounding in the mean); pycocotools is the reference
    np.testing.assert_allclose(got, ref[:6], rtol=0, atol=1e-12)
    # per-class APs average to the overall mAP, over classes with gt only (COCO's convention)
    assert len(ours.per_class) == len({c for t in coco128_targets for c in t["labels"].tolist()})
    assert np.mean([c.ap for c in ours.per_class]) == pytest.approx(ours.map, abs=1e-12)
    assert np.mean([c.ap50 for c in ours.per_class]) == pytest.approx(ours.map50, abs=1e-12)
