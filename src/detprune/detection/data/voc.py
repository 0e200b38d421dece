"""Reader for the Pascal VOC format.

Layout: ``root/ImageSets/Main/{split}.txt`` (one image id per line),
``root/Annotations/{id}.xml`` and ``root/JPEGImages/{id}.jpg``. Coordinates are used as
written (no 1-based shift), matching the common VOC -> YOLO conversions.

Class names come from ``names`` or, when not given, from every XML under
``Annotations/`` in sorted order, so all splits of one root agree on label ids.
``difficult`` objects are kept as ordinary boxes (counted as notes): dropping them would
make a detector that finds them look worse, and BCCD, the VOC set used here, has none.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .images import IMAGE_SUFFIXES
from .records import BOX_TOLERANCE, ImageRecord, SplitIndex, checked_image_size, clean_box, make_record
from .report import (
    BAD_IMAGE,
    CLASS_RANGE,
    DIFFICULT,
    LABEL_FORMAT,
    MISSING_FILE,
    SIZE_MISMATCH,
    DataError,
    DataReport,
    DataWarning,
)

_COORDS = ("xmin", "ymin", "xmax", "ymax")
_RARE, _RARE_AGAINST = 2, 50  # at most this many objects, against at least 50x as many in another class


def is_voc_root(path: Path) -> bool:
    return (path / "ImageSets" / "Main").is_dir() and (path / "Annotations").is_dir()


def voc_names(root: Path) -> list[str]:
    """Sorted class names found in all annotation files of ``root``.

    A name that only a couple of objects use while another class has hundreds is most likely a
    misspelling (``Platelet`` beside ``Platelets``), which would silently become a class of its
    own: it is reported with the files that use it, and kept (it may be a genuinely rare class).
    """
    counts: Counter[str] = Counter()
    where: dict[str, list[str]] = {}
    for xml_file in sorted((root / "Annotations").glob("*.xml")):
        try:
            tree = ET.parse(xml_file)
        except ET.ParseError:
            continue  # reported when the split containing it is read
        for o in tree.iter("object"):
            name = (o.findtext("name") or "").strip()
            counts[name] += 1
            where.setdefault(name, []).append(xml_file.name)
    counts.pop("", None)
    if not counts:
        raise DataError(f"{root / 'Annotations'}: no object names found to derive classes from")
    most = max(counts.values())
    for name, n in sorted(counts.items()):
        if n <= _RARE and most >= _RARE_AGAINST * n:
            warnings.warn(f"{root / 'Annotations'}: class {name!r} is used by only {n} object(s) "
                          f"({', '.join(where[name][:3])}) against {most} for the largest class; "
                          "if it is a misspelt name, fix those files (it is kept as a class of its own)",
                          DataWarning, stacklevel=2)
    return sorted(counts)


def split_ids(root: Path, split: str) -> list[str]:
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise DataError(f"VOC split '{split}': split file {split_file} does not exist")
    ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"VOC split '{split}' is empty: {split_file} lists no image ids")
    return ids


def _image_path(root: Path, image_id: str, xml_root: ET.Element) -> Path:
    filename = (xml_root.findtext("filename") or "").strip()
    candidates = [root / "JPEGImages" / filename] if filename else []
    candidates += [root / "JPEGImages" / f"{image_id}{s}" for s in sorted(IMAGE_SUFFIXES)]
    return next((p for p in candidates if p.is_file()), root / "JPEGImages" / f"{image_id}.jpg")


def _declared_size(xml_root: ET.Element) -> tuple[int, int] | None:
    """The ``<size>`` of the XML, or ``None`` where absent or zero (common in VOC exports)."""
    try:
        size = (int(float(xml_root.findtext("size/width"))), int(float(xml_root.findtext("size/height"))))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return size if min(size) > 0 else None


def _parse_objects(
    xml_file: Path, xml_root: ET.Element, width: int, height: int, names: list[str], report: DataReport, tol: float
) -> tuple[list[tuple[float, float, float, float]], list[int]]:
    index = {n: i for i, n in enumerate(names)}
    boxes: list[tuple[float, float, float, float]] = []
    labels: list[int] = []
    for k, obj in enumerate(xml_root.iter("object")):
        where = f"{xml_file} object #{k}"
        name = (obj.findtext("name") or "").strip()
        if name not in index:
            report.problem(CLASS_RANGE, where, f"unknown class {name!r} (known: {names})")
            continue
        try:
            xyxy = [float(obj.find("bndbox").findtext(c)) for c in _COORDS]  # type: ignore[union-attr,arg-type]
        except (AttributeError, TypeError, ValueError):
            report.problem(LABEL_FORMAT, where, "missing or non-numeric bndbox coordinate")
            continue
        box = clean_box(xyxy, width, height, where, report, tol)
        if box is None:
            continue
        if (obj.findtext("difficult") or "0").strip() == "1":
            report.note(DIFFICULT, where, "difficult object kept as an ordinary box")
        boxes.append(box)
        labels.append(index[name])
    return boxes, labels


def read_voc(
    root: str | Path,
    split: str,
    *,
    names: Sequence[str] | None = None,
    strict: bool = False,
    tol: float = BOX_TOLERANCE,
) -> SplitIndex:
    """Index ``split`` of a VOC dataset; image ids are positions in the split file order."""
    root = Path(root).resolve()
    ids = split_ids(root, split)
    class_names = list(names) if names else voc_names(root)
    report = DataReport(source=f"{root} [{split}]", strict=strict)
    records: list[ImageRecord] = []
    for image_id in ids:
        xml_file = root / "Annotations" / f"{image_id}.xml"
        if not xml_file.is_file():
            report.problem(MISSING_FILE, str(xml_file), f"annotation of image id {image_id!r} is missing")
            continue
        try:
            xml_root = ET.parse(xml_file).getroot()
        except ET.ParseError as exc:
            report.problem(LABEL_FORMAT, str(xml_file), f"malformed XML ({exc})")
            continue
        image = _image_path(root, image_id, xml_root)
        if not image.is_file():
            report.problem(BAD_IMAGE, str(image), f"image of id {image_id!r} is missing")
            continue
        size = checked_image_size(image, report)
        if size is None:
            continue
        declared = _declared_size(xml_root)
        if declared is not None and declared != size:
            report.problem(
                SIZE_MISMATCH, str(xml_file), f"declares {declared[0]}x{declared[1]}, image is {size[0]}x{size[1]}"
            )
            continue
        boxes, labels = _parse_objects(xml_file, xml_root, *size, class_names, report, tol)
        records.append(make_record(image, *size, boxes, labels, image_id=len(records)))
    report.finish()
    return SplitIndex(records=records, names=class_names, report=report, root=root, meta={"format": "voc"})
