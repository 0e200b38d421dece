"""Detection evaluation: COCO mAP through faster-coco-eval plus P/R/F1 at one operating point.

mAP is delegated to faster-coco-eval (a C++ re-implementation of pycocotools' COCOeval that
agrees with it numerically; see ``tests/detection/evaluate``) so our numbers are comparable
with published COCO-style results. Conventions of the COCO side:

* bbox IoU, 10 IoU thresholds .50:.05:.95, 101 recall points, maxDets=100 per image and class;
  gt area = box area (no segmentation), no crowd boxes;
* classes without ground truth are excluded from every mean (COCO's ``-1``, reported as ``nan``);
* images without ground truth still count: their predictions are false positives;
* COCO image ids are positions in the ``targets`` list (``Target.image_id`` need not be unique).

Precision, recall and F1 are what the attribution-pruning paper reports (F1 at score 0.25):
predictions with ``score >= score_thres`` are matched greedily in descending score order, each
to the still-unmatched gt of the same class and image with the highest IoU ``>= iou_thres``
(one gt per prediction, as COCO matches). TP/FP/FN are summed over images and classes (micro
average); empty denominators give 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from faster_coco_eval import COCO, COCOeval_faster
from tqdm.auto import tqdm

from detprune.detection.metrics import ClassMetrics, DetectionMetrics
from detprune.detection.types import DetectorAdapter, Prediction, Target

__all__ = ["ClassMetrics", "DetectionMetrics", "evaluate", "evaluate_predictions"]

_log = logging.getLogger(__name__)
Names = Sequence[str] | Mapping[int, str] | None


def evaluate_predictions(
    predictions: list[Prediction],
    targets: list[Target],
    num_classes: int,
    names: Names = None,
    score_thres: float = 0.25,
    iou_thres: float = 0.5,
) -> DetectionMetrics:
    """Score ``predictions[i]`` against ``targets[i]`` (same pixel frame) for every image i."""
    if len(predictions) != len(targets):
        raise ValueError(f"predictions has {len(predictions)} images but targets has {len(targets)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    preds = [_as_numpy(p, "predictions", i, num_classes) for i, p in enumerate(predictions)]
    gts = [_as_numpy(t, "targets", i, num_classes) for i, t in enumerate(targets)]
    class_names = _class_names(names, num_classes)

    stats, class_ap, class_ap50 = _coco_stats(preds, gts, num_classes)
    tp, fp, n_gt = _greedy_counts(preds, gts, num_classes, score_thres, iou_thres)

    per_class = [
        ClassMetrics(
            name=class_names[k],
            num_gt=int(n_gt[k]),
            ap=float(class_ap[k]),
            ap50=float(class_ap50[k]),
            precision=_ratio(tp[k], tp[k] + fp[k]),
            recall=_ratio(tp[k], n_gt[k]),
        )
        for k in range(num_classes)
        if n_gt[k] > 0
    ]
    tp_all, fp_all, gt_all = int(tp.sum()), int(fp.sum()), int(n_gt.sum())
    p, r = _ratio(tp_all, tp_all + fp_all), _ratio(tp_all, gt_all)
    return DetectionMetrics(
        map=stats[0],
        map50=stats[1],
        map75=stats[2],
        map_small=stats[3],
        map_medium=stats[4],
        map_large=stats[5],
        precision=p,
        recall=r,
        f1=_ratio(2 * p * r, p + r),
        tp=tp_all,
        fp=fp_all,
        fn=gt_all - tp_all,
        score_thres=score_thres,
        iou_thres=iou_thres,
        num_images=len(gts),
        num_gt=gt_all,
        num_predictions=sum(len(s) for _, s, _ in preds),
        per_class=per_class,
    )


def evaluate(
    adapter: DetectorAdapter,
    loader: Iterable[tuple[torch.Tensor, list[Target]]],
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    max_det: int = 300,
    progress: bool = True,
    *,
    names: Names = None,
    score_thres: float = 0.25,
) -> DetectionMetrics:
    """Run ``adapter.predict`` over ``loader`` and evaluate; restores the model's train/eval mode.

    ``conf_thres``/``iou_thres``/``max_det`` go to the adapter's post-processing (NMS); the low
    default confidence keeps the whole PR curve for mAP, while ``score_thres`` picks the F1 point.
    """
    model = adapter.model
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    predictions: list[Prediction] = []
    targets: list[Target] = []
    model.eval()
    try:
        with torch.inference_mode():
            for images, batch_targets in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
                out = adapter.predict(images.to(device), conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)
                if len(out) != len(batch_targets):
                    raise ValueError(f"adapter.predict returned {len(out)} predictions for {len(batch_targets)} images")
                predictions.extend(Prediction(**{k: v.detach().cpu() for k, v in p.items()}) for p in out)
                targets.extend(batch_targets)
    finally:
        model.train(was_training)
    return evaluate_predictions(predictions, targets, adapter.num_classes, names=names, score_thres=score_thres)


def _coco_stats(
    preds: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    num_classes: int,
) -> tuple[list[float], np.ndarray, np.ndarray]:
    """COCO summary stats [AP, AP50, AP75, APs, APm, APl] and per-class AP / AP50 (nan = no gt)."""
    images = [{"id": i + 1} for i in range(len(gts))]
    categories = [{"id": k + 1, "name": str(k)} for k in range(num_classes)]
    gt_anns: list[dict[str, Any]] = []
    for i, (boxes, _, labels) in enumerate(gts):
        for box, label in zip(_xywh(boxes), labels.tolist()):
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    dt_anns: list[dict[str, Any]] = []
    for i, (boxes, scores, labels) in enumerate(preds):
        for box, score, label in zip(_xywh(boxes), scores.tolist(), labels.tolist()):
            dt_anns.append(
                {
                    "id": len(dt_anns) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": box,
                    "score": score,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    nan_k = np.full(num_classes, np.nan)
    if not gt_anns:  # COCO has nothing to average over: every AP is undefined
        return [float("nan")] * 6, nan_k, nan_k.copy()

    coco_gt = COCO({"images": images, "categories": categories, "annotations": gt_anns})
    coco_dt = COCO({"images": images, "categories": categories, "annotations": dt_anns})
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_log.debug)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    stats = [float("nan") if s < 0 else float(s) for s in ev.stats[:6]]

    prec = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]  # [T, R, K] at area=all, maxDets=100
    valid = prec > -1
    with np.errstate(invalid="ignore"):  # classes without gt -> 0/0 -> nan
        ap = np.where(valid, prec, 0).sum((0, 1)) / valid.sum((0, 1))
        ap50 = np.where(valid[0], prec[0], 0).sum(0) / valid[0].sum(0)
    return stats, ap, ap50


def _greedy_counts(
    preds: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    gts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    num_classes: int,
    score_thres: float,
    iou_thres: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class TP, FP and gt counts at one score / IoU threshold (greedy by score, per image)."""
    tp = np.zeros(num_classes, np.int64)
    fp = np.zeros(num_classes, np.int64)
    n_gt = np.zeros(num_classes, np.int64)
    for (p_boxes, p_scores, p_labels), (g_boxes, _, g_labels) in zip(preds, gts):
        n_gt += np.bincount(g_labels, minlength=num_classes)
        keep = p_scores >= score_thres
        p_boxes, p_scores, p_labels = p_boxes[keep], p_scores[keep], p_labels[keep]
        for c in np.unique(p_labels):
            pc = p_labels == c
            order = np.argsort(-p_scores[pc], kind="stable")
            gb = g_boxes[g_labels == c]
            if len(gb) == 0:
                fp[c] += len(order)
                continue
            iou = _box_iou(p_boxes[pc][order], gb)
            free = np.ones(len(gb), bool)
            for row in iou:
                cand = np.where(free, row, -1.0)
                j = int(cand.argmax())
                if cand[j] >= iou_thres:
                    free[j] = False
                    tp[c] += 1
                else:
                    fp[c] += 1
    return tp, fp, n_gt


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU [len(a), len(b)] of xyxy boxes, the same formula as COCO (no +1 pixel).

    Local rather than ``torchvision.ops.box_iou`` because importing torchvision pulls in
    torch._dynamo (seconds), which scoring a list of predictions should not pay for.
    """
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _as_numpy(d: Mapping[str, Any], arg: str, i: int, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes float64 [N,4], scores float64 [N], labels int64 [N]) with shape/label checks."""
    boxes = torch.as_tensor(d["boxes"]).detach().cpu().double().reshape(-1, 4).numpy()
    labels = torch.as_tensor(d["labels"]).detach().cpu().long().reshape(-1).numpy()
    scores = (
        torch.as_tensor(d["scores"]).detach().cpu().double().reshape(-1).numpy()
        if "scores" in d
        else np.ones(len(labels))
    )
    if not (len(boxes) == len(labels) == len(scores)):
        raise ValueError(f"{arg}[{i}]: boxes/scores/labels lengths differ ({len(boxes)}/{len(scores)}/{len(labels)})")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{arg}[{i}]: labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return boxes, scores, labels


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    out = boxes.copy()
    out[:, 2:] -= out[:, :2]
    return out.tolist()


def _class_names(names: Names, num_classes: int) -> list[str]:
    if names is None:
        return [str(k) for k in range(num_classes)]
    if isinstance(names, Mapping):
        return [str(names.get(k, k)) for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"names has {len(names)} entries but num_classes is {num_classes}")
    return [str(n) for n in names]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0
