"""Reader and exporter for COCO detection JSON.

Category ids are remapped to contiguous 0-based labels in increasing id order (COCO's
own ids have gaps). ``iscrowd`` annotations mark regions of many objects, not one
object, so they are left out (counted as notes). Image ``file_name`` is resolved
against ``image_root`` (default: the JSON file's directory).

:func:`to_coco_json` writes any indexed dataset back as COCO JSON in the original image
frame, which is also the ground truth file pycocotools / faster-coco-eval expect.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from detprune.atomic import atomic_write_text

from .records import BOX_TOLERANCE, ImageRecord, SplitIndex, checked_image_size, clean_box, make_record
from .report import CLASS_RANGE, CROWD, LABEL_FORMAT, SIZE_MISMATCH, DataError, DataReport


class Indexed(Protocol):
    """Anything carrying records and class names: a ``SplitIndex`` or a ``DetectionDataset``."""

    records: list[ImageRecord]
    names: list[str]


def _load(json_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{json_path}: cannot read COCO JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{json_path}: expected 'images' and 'categories' lists")
    if not data["images"]:
        raise DataError(f"{json_path}: split is empty: no images")
    if not data["categories"]:
        raise DataError(f"{json_path}: no categories")
    return data


def read_coco(
    json_path: str | Path,
    *,
    image_root: str | Path | None = None,
    strict: bool = False,
    tol: float = BOX_TOLERANCE,
) -> SplitIndex:
    """Index a COCO JSON file; image ids are the file's own ids."""
    json_path = Path(json_path).resolve()
    root = Path(image_root).resolve() if image_root is not None else json_path.parent
    data = _load(json_path)
    categories = sorted(data["categories"], key=lambda c: int(c["id"]))
    names = [str(c["name"]) for c in categories]
    label_of = {int(c["id"]): i for i, c in enumerate(categories)}
    report = DataReport(source=str(json_path), strict=strict)

    images: dict[int, tuple[Path, int, int]] = {}
    for k, entry in enumerate(data["images"]):
        where = f"{json_path} image #{k}"
        try:
            image_id, path = int(entry["id"]), root / str(entry["file_name"])
        except (KeyError, TypeError, ValueError):  # also: entry not a dict
            report.problem(LABEL_FORMAT, where, "image entry without integer 'id' and 'file_name'")
            continue
        size = checked_image_size(path, report)
        if size is None:
            continue
        declared = (entry.get("width"), entry.get("height"))  # optional in the wild
        if all(declared) and tuple(declared) != size:
            report.problem(SIZE_MISMATCH, where, f"declares {declared[0]}x{declared[1]}, {path} is {size[0]}x{size[1]}")
            continue
        images[image_id] = (path, *size)

    boxes: dict[int, list[tuple[float, float, float, float]]] = {i: [] for i in images}
    labels: dict[int, list[int]] = {i: [] for i in images}
    known_ids = {e.get("id") for e in data["images"] if isinstance(e, dict)}
    for k, ann in enumerate(data.get("annotations") or []):
        if not isinstance(ann, dict):
            report.problem(LABEL_FORMAT, f"{json_path} annotation #{k}", "not a JSON object")
            continue
        where = f"{json_path} annotation #{k} (id={ann.get('id')})"
        image_id = ann.get("image_id")
        if image_id not in known_ids:
            report.problem(LABEL_FORMAT, where, f"refers to unknown image_id {image_id}")
            continue
        if image_id not in images:
            continue  # its image was unusable and already reported
        if ann.get("category_id") not in label_of:
            report.problem(CLASS_RANGE, where, f"unknown category_id {ann.get('category_id')}")
            continue
        if ann.get("iscrowd"):
            report.note(CROWD, where, "iscrowd region left out")
            continue
        bbox = ann.get("bbox")
        try:
            x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            report.problem(LABEL_FORMAT, where, f"bbox must be 4 numbers [x, y, w, h], got {bbox!r}")
            continue
        _, width, height = images[image_id]
        box = clean_box((x, y, x + w, y + h), width, height, where, report, tol)
        if box is not None:
            boxes[image_id].append(box)
            labels[image_id].append(label_of[ann["category_id"]])

    records = [make_record(p, w, h, boxes[i], labels[i], image_id=i) for i, (p, w, h) in images.items()]
    report.finish()
    return SplitIndex(records=records, names=names, report=report, root=root, meta={"format": "coco"})


def to_coco_json(dataset: Indexed, path: str | Path, *, names: Sequence[str] | None = None) -> Path:
    """Write ``dataset``'s ground truth as COCO JSON (original image frame, category id = label + 1).

    ``file_name`` is relative to the JSON file's directory when possible, so the file can
    be read back with :func:`read_coco` without an ``image_root``.
    """
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for rec in dataset.records:
        try:
            file_name = Path(os.path.relpath(rec.path.resolve(), path.parent)).as_posix()
        except ValueError:  # different drive on Windows
            file_name = rec.path.resolve().as_posix()
        images.append({"id": rec.image_id, "file_name": file_name, "width": rec.width, "height": rec.height})
        for (x1, y1, x2, y2), label in zip(rec.boxes.tolist(), rec.labels.tolist(), strict=True):
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": rec.image_id,
                    "category_id": label + 1,
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(names or dataset.names)]
    data = {"info": {"description": "exported by detprune"}, "images": images, "annotations": annotations,
            "categories": categories}
    return atomic_write_text(path, json.dumps(data))
