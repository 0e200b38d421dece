"""COCO JSON reader and exporter: round trips from the real sets, id remapping, defects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from detprune.detection.data import DataError, DataWarning, build_dataset, read_coco, read_voc, to_coco_json

from datatest_helpers import write_image

pytestmark = pytest.mark.filterwarnings("ignore::detprune.detection.data.DataWarning")


def _assert_same_records(a, b) -> None:  # type: ignore[no-untyped-def]
    assert len(a.records) == len(b.records) > 0
    for ra, rb in zip(a.records, b.records, strict=True):
        assert ra.path.resolve() == rb.path.resolve()
        assert (ra.width, ra.height, ra.image_id) == (rb.width, rb.height, rb.image_id)
        np.testing.assert_array_equal(ra.labels, rb.labels)
        np.testing.assert_allclose(ra.boxes, rb.boxes, atol=1e-4)


def test_round_trip_from_voc(shared_data: Path, tmp_path: Path) -> None:
    source = read_voc(shared_data / "bccd", "val")
    json_path = to_coco_json(source, tmp_path / "ann" / "val.json")
    back = read_coco(json_path)
    assert back.names == source.names == ["Platelets", "RBC", "WBC"]
    _assert_same_records(source, back)
    assert back.report.num_errors == 0


def test_round_trip_from_yolo_dataset_and_pycocotools_accepts_it(shared_data: Path, tmp_path: Path) -> None:
    ds = build_dataset(shared_data / "coco128" / "data.yaml", "val", img_size=256)
    json_path = to_coco_json(ds, tmp_path / "coco128_val.json")
    _assert_same_records(ds, read_coco(json_path))
    gt = COCO(str(json_path))
    n_boxes = sum(len(r.labels) for r in ds.records)
    assert len(gt.getAnnIds()) == n_boxes and len(gt.getImgIds()) == 128 and len(gt.getCatIds()) == 80
    # the dataset built from the JSON yields the same samples
    ds2 = build_dataset(json_path, "val", img_size=256)
    for i in (0, 5):
        (im1, t1), (im2, t2) = ds[i], ds2[i]
        assert torch.equal(im1, im2) and torch.equal(t1["labels"], t2["labels"])
        assert torch.allclose(t1["boxes"], t2["boxes"], atol=1e-4) and t1["image_id"] == t2["image_id"]


def _coco_file(tmp_path: Path, annotations: list[dict], images: list[dict] | None = None) -> Path:  # type: ignore[type-arg]
    write_image(tmp_path / "imgs" / "a.jpg", 64, 48)
    write_image(tmp_path / "imgs" / "b.jpg", 64, 48, seed=1)
    data = {
        "images": images
        or [
            {"id": 10, "file_name": "imgs/a.jpg", "width": 64, "height": 48},
            {"id": 20, "file_name": "imgs/b.jpg", "width": 64, "height": 48},
        ],
        "annotations": annotations,
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 12, "name": "bird"}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_category_ids_remapped_in_id_order(tmp_path: Path) -> None:
    anns = [
        {"id": 1, "image_id": 10, "category_id": 12, "bbox": [1, 2, 10, 20], "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [5, 5, 4, 4], "iscrowd": 0},
        {"id": 3, "image_id": 20, "category_id": 7, "bbox": [0, 0, 64, 48]},
    ]
    index = read_coco(_coco_file(tmp_path, anns))
    assert index.names == ["cat", "dog", "bird"]
    a, b = index.records
    assert (a.image_id, b.image_id) == (10, 20)
    assert a.labels.tolist() == [2, 0] and b.labels.tolist() == [1]
    assert a.boxes.tolist() == [[1, 2, 11, 22], [5, 5, 9, 9]]


def test_coco_defects_name_the_annotation(tmp_path: Path) -> None:
    anns = [
        {"id": 1, "image_id": 10, "category_id": 99, "bbox": [1, 2, 10, 20]},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [5, 5, 4]},
        {"id": 3, "image_id": 77, "category_id": 3, "bbox": [5, 5, 4, 4]},
        {"id": 4, "image_id": 20, "category_id": 3, "bbox": [50, 5, 40, 4]},
        {"id": 5, "image_id": 20, "category_id": 3, "bbox": [5, 5, 0, 4]},
        {"id": 6, "image_id": 20, "category_id": 3, "bbox": [0, 0, 30, 30], "iscrowd": 1},
        {"id": 7, "image_id": 20, "category_id": 3, "bbox": [2, 2, 8, 8]},
    ]
    path = _coco_file(tmp_path, anns)
    with pytest.warns(DataWarning, match=r"annotation #0 \(id=1\): unknown category_id 99"):
        index = read_coco(path)
    assert index.report.counts == {
        "class_range": 1, "label_format": 2, "out_of_bounds": 1, "zero_area": 1, "crowd": 1
    }
    assert [len(r.labels) for r in index.records] == [0, 1]
    assert any(r"annotation #2 (id=3): refers to unknown image_id 77" in m for m in index.report.messages)
    with pytest.raises(DataError, match=r"ann\.json annotation #0 \(id=1\): unknown category_id 99"):
        read_coco(path, strict=True)


def test_coco_bad_image_entries(tmp_path: Path) -> None:
    images = [
        {"id": 10, "file_name": "imgs/a.jpg", "width": 64, "height": 48},
        {"id": 20, "file_name": "imgs/b.jpg", "width": 640, "height": 480},
        {"id": 30, "file_name": "imgs/missing.jpg", "width": 64, "height": 48},
    ]
    index = read_coco(_coco_file(tmp_path, [], images))
    assert [r.image_id for r in index.records] == [10]
    assert index.report.counts == {"size_mismatch": 1, "bad_image": 1}
    with pytest.raises(DataError, match="image #1: declares 640x480"):
        read_coco(_coco_file(tmp_path, [], images), strict=True)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    with pytest.raises(DataError, match=r"empty\.json: split is empty"):
        read_coco(empty)
