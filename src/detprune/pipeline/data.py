"""Datasets and loaders for the pipeline, from the CLI's data spec strings.

A spec is a ``data.yaml`` (or a folder holding one), a COCO ``.json``, a VOC root, or
``synthetic`` / ``synthetic:N`` (see :func:`detprune.detection.data.build_dataset`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader, Dataset, Subset

from detprune.atomic import atomic_write_text
from detprune.detection.data import SYNTHETIC_NAMES, build_dataset, collate_fn
from detprune.specialise.labels import ClassMap, ClassSubset

_SYNTHETIC = re.compile(r"synthetic(:\d+)?")


def is_synthetic(spec: str) -> bool:
    """``synthetic`` or ``synthetic:N``: the generated data (orchard scenes, or tiny salient objects for saliency)."""
    return bool(_SYNTHETIC.fullmatch(spec))


def check_data_spec(spec: str) -> None:
    """Raise with a one-line reason when ``spec`` cannot name a dataset (cheap: no reading)."""
    if spec.startswith("synthetic"):
        if not is_synthetic(spec) or spec.endswith(":0"):
            raise ValueError(f"bad synthetic spec {spec!r}: expected 'synthetic' or 'synthetic:N' with N >= 1")
        return
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec} does not exist (expected a data.yaml, a COCO .json, a VOC root or synthetic[:N])")


@dataclass
class Split:
    """One split ready for a loader, with the class names of the dataset."""

    dataset: Dataset
    names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


def load_split(spec: str, split: str, img_size: int, *, augment: bool = False, mosaic: float = 0.0,
               max_images: int | None = None, seed: int = 0, classes: Sequence[str] | None = None) -> Split:
    """``classes``: keep only these classes' boxes, renumbered 0..k-1 (a specialised model's data)."""
    ds = build_dataset(spec, split, img_size=img_size, augment=augment, mosaic=mosaic, seed=seed)
    if classes:
        ds = ClassSubset(ds, class_map(classes, list(ds.names)).classes)
    names = list(ds.names)
    if max_images is not None and max_images < len(ds):
        ds = Subset(ds, range(max_images))  # the first images: the same subset on every run
    return Split(ds, names, f"{spec} [{split}]")


def class_map(classes: Sequence[str], names: Sequence[str] | None) -> ClassMap:
    """``--classes`` values (class names, or indices where no class has that name) -> a :class:`ClassMap`."""
    keys: list[int | str] = [c if (names and c in names) or not c.isdigit() else int(c) for c in map(str, classes)]
    return ClassMap.build(keys, names)


def make_loader(split: Split, batch: int, *, shuffle: bool = False, workers: int = 0, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(split.dataset, batch_size=batch, shuffle=shuffle, collate_fn=collate_fn, generator=g,
                      num_workers=workers, persistent_workers=workers > 0)


def class_names(spec: str) -> list[str]:
    """Class names of a dataset (reads the training split index; synthetic needs no reading)."""
    if is_synthetic(spec):
        return list(SYNTHETIC_NAMES)
    from detprune.detection.data import read_split

    for split in ("train", "val"):
        try:
            return list(read_split(spec, split).names)
        except Exception:  # noqa: BLE001 - try the next split, report the last error below
            continue
    return list(read_split(spec, "train").names)


def ultralytics_data_yaml(spec: str, out_dir: Path) -> Path:
    """A data.yaml Ultralytics can read: absolute ``path`` (Ultralytics resolves relative roots
    against its own datasets folder, not the yaml's). Only YOLO-format data is possible."""
    from detprune.detection.data import synthetic_data_yaml
    from detprune.detection.data.yolo import load_data_yaml

    if is_synthetic(spec):
        n = int(spec.partition(":")[2] or 2000)
        source = synthetic_data_yaml(n, ("train", "val"))
    else:
        path = Path(spec)
        source = path / "data.yaml" if path.is_dir() and (path / "data.yaml").is_file() else path
        if source.suffix not in (".yaml", ".yml"):
            from detprune.pipeline.models import UnsupportedError

            raise UnsupportedError(f"Ultralytics training needs a YOLO data.yaml; {spec} is not one")
    cfg, root = load_data_yaml(source)
    cfg = {**cfg, "path": str(root)}
    if isinstance(cfg.get("names"), list):
        cfg["names"] = dict(enumerate(cfg["names"]))
    out = out_dir / "data.yaml"
    atomic_write_text(out, yaml.safe_dump(cfg, sort_keys=False))
    return out
