"""One entry point from a dataset spec string to a :class:`DetectionDataset`.

The CLI, training and benchmarks only pass strings around (``--data coco128/data.yaml``,
``--data synthetic:500``), so format detection lives here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .coco import read_coco
from .dataset import DetectionDataset
from .records import SplitIndex
from .report import DataError
from .synthetic import DEFAULT_COUNT, synthetic_data_yaml
from .voc import is_voc_root, read_voc
from .yolo import read_yolo


def read_split(
    spec: str | Path,
    split: str = "train",
    *,
    strict: bool = False,
    names: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> SplitIndex:
    """Index one split of the dataset named by ``spec`` (see :func:`build_dataset`)."""
    text = str(spec)
    if text == "synthetic" or text.startswith("synthetic:"):
        count_text = text.partition(":")[2] or str(DEFAULT_COUNT)
        if not count_text.isdigit() or int(count_text) < 1:
            raise DataError(f"bad synthetic spec {text!r}: expected 'synthetic' or 'synthetic:N' with N >= 1")
        data_yaml = synthetic_data_yaml(int(count_text), [split], seed=seed, cache_dir=cache_dir)
        return read_yolo(data_yaml, split, strict=strict)
    path = Path(spec)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    if path.is_file() and path.suffix in {".yaml", ".yml"}:
        return read_yolo(path, split, strict=strict)
    if path.is_file() and path.suffix == ".json":
        return read_coco(path, strict=strict)  # one JSON file is one split: ``split`` is not used
    if path.is_dir() and (path / "data.yaml").is_file():
        return read_yolo(path / "data.yaml", split, strict=strict)
    if path.is_dir() and is_voc_root(path):
        return read_voc(path, split, names=names, strict=strict)
    raise DataError(
        f"cannot tell the format of {path}: expected a data.yaml, a COCO .json file, "
        "a VOC root (ImageSets/Main + Annotations) or 'synthetic[:N]'"
    )


def build_dataset(
    spec: str | Path,
    split: str = "train",
    img_size: int = 640,
    augment: bool = False,
    strict: bool = False,
    *,
    names: Sequence[str] | None = None,
    mosaic: float = 0.0,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> DetectionDataset:
    """Dataset of ``split`` from a ``data.yaml`` (or a dir holding one), a COCO JSON file,
    a VOC root, or ``synthetic`` / ``synthetic:N`` (N training images, N/4 val and test,
    generated once into the cache; ``seed`` picks the scenes).

    ``names`` fixes VOC class names (default: sorted names found in the annotations).
    ``mosaic`` is the probability of a 4-image mosaic when ``augment`` is on.
    """
    index = read_split(spec, split, strict=strict, names=names, cache_dir=cache_dir, seed=seed)
    return DetectionDataset(index, img_size=img_size, augment=augment, mosaic=mosaic)
