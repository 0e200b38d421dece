"""Reader for the YOLO (Ultralytics) dataset format.

``data.yaml`` names the dataset root (``path``, relative to the yaml file), the splits
(``train``/``val``/``test``: an image directory, a ``.txt`` list of images, or a list of
those) and ``names`` (a list, or a dict ``{index: name}``). Each image ``.../images/x.jpg``
has a label file ``.../labels/x.txt`` with one ``class cx cy w h`` line per box,
normalised to [0, 1]. A missing label file means "no objects" (reported as a note).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .images import is_image_file
from .records import BOX_TOLERANCE, ImageRecord, SplitIndex, checked_image_size, clean_box, make_record
from .report import CLASS_RANGE, LABEL_FORMAT, MISSING_LABELS, DataError, DataReport


def load_data_yaml(data_yaml: Path) -> tuple[dict[str, Any], Path]:
    """The parsed ``data.yaml`` and the dataset root its relative paths refer to."""
    try:
        cfg = yaml.safe_load(Path(data_yaml).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{data_yaml}: cannot read dataset config ({exc})") from exc
    if not isinstance(cfg, dict):
        raise DataError(f"{data_yaml}: expected a mapping with path/train/val/names")
    root = Path(cfg.get("path") or ".")
    if not root.is_absolute():
        root = Path(data_yaml).resolve().parent / root
    return cfg, root.resolve()


def yolo_names(cfg: dict[str, Any], data_yaml: Path) -> list[str]:
    """Class names from ``names`` (list, or dict keyed 0..n-1)."""
    names = cfg.get("names")
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise DataError(f"{data_yaml}: 'names' keys must be class indices 0..n-1, got {list(names)}") from None
        if keys != list(range(len(keys))):
            raise DataError(f"{data_yaml}: 'names' keys must be 0..{len(keys) - 1}, got {keys}")
        return [str(names[k] if k in names else names[str(k)]) for k in keys]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise DataError(f"{data_yaml}: 'names' must be a non-empty list or dict")


def split_images(cfg: dict[str, Any], root: Path, split: str, data_yaml: Path) -> list[Path]:
    """Sorted image paths of ``split``; a missing or empty split is a configuration error."""
    if not cfg.get(split):
        raise DataError(f"{data_yaml}: split '{split}' is not defined")
    entries = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
    images: list[Path] = []
    for entry in entries:
        source = Path(entry) if Path(entry).is_absolute() else root / entry
        if source.is_dir():
            images += [p for p in source.rglob("*") if p.is_file() and is_image_file(p)]
        elif source.is_file() and source.suffix == ".txt":  # a list of image paths
            for line in source.read_text().splitlines():
                if line.strip():
                    p = Path(line.strip())
                    images.append(p if p.is_absolute() else (source.parent / p).resolve())
        else:
            raise DataError(f"{data_yaml}: split '{split}' source {source} does not exist")
    if not images:
        where = ", ".join(str(root / e) for e in entries)
        raise DataError(f"{data_yaml}: split '{split}' is empty: no images in {where}")
    return sorted(set(images))


def label_path(image: Path) -> Path:
    """``.../images/.../x.jpg`` -> ``.../labels/.../x.txt`` (last ``images`` component)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_label_file(
    path: Path, width: int, height: int, num_classes: int, report: DataReport, tol: float
) -> tuple[list[tuple[float, float, float, float]], list[int]]:
    """Clean boxes (xyxy pixels) and labels of one label file; bad lines are reported."""
    boxes: list[tuple[float, float, float, float]] = []
    labels: list[int] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 5:
            report.problem(LABEL_FORMAT, where, f"expected 5 fields 'class cx cy w h', got {len(fields)}")
            continue
        try:
            cls_f, cx, cy, w, h = (float(v) for v in fields)
        except ValueError:
            report.problem(LABEL_FORMAT, where, f"non-numeric field in {line.strip()!r}")
            continue
        if not cls_f.is_integer() or not 0 <= cls_f < num_classes:
            report.problem(CLASS_RANGE, where, f"class id {fields[0]} not in [0, {num_classes - 1}]")
            continue
        xyxy = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        box = clean_box(xyxy, width, height, where, report, tol)
        if box is not None:
            boxes.append(box)
            labels.append(int(cls_f))
    return boxes, labels


def read_yolo(
    data_yaml: str | Path, split: str, *, strict: bool = False, tol: float = BOX_TOLERANCE
) -> SplitIndex:
    """Index ``split`` of a YOLO dataset; image ids are positions in the sorted usable list."""
    data_yaml = Path(data_yaml)
    cfg, root = load_data_yaml(data_yaml)
    names = yolo_names(cfg, data_yaml)
    report = DataReport(source=f"{data_yaml} [{split}]", strict=strict)
    records: list[ImageRecord] = []
    for image in split_images(cfg, root, split, data_yaml):
        size = checked_image_size(image, report)
        if size is None:
            continue
        labels_file = label_path(image)
        if labels_file.is_file():
            try:
                boxes, labels = parse_label_file(labels_file, *size, len(names), report, tol)
            except (OSError, UnicodeDecodeError) as exc:
                report.problem(LABEL_FORMAT, str(labels_file), f"unreadable label file ({exc})")
                continue
        else:
            report.note(MISSING_LABELS, str(image), f"no label file {labels_file}: image has no objects")
            boxes, labels = [], []
        records.append(make_record(image, *size, boxes, labels, image_id=len(records)))
    report.finish()
    return SplitIndex(records=records, names=names, report=report, root=root, meta={"format": "yolo"})
