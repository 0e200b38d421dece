"""YOLO reader on the real COCO128 set, and the dataset / collate contract on it."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from detprune.detection.data import DataError, build_dataset, collate_fn, read_yolo, unletterbox_boxes
from detprune.detection.data.yolo import label_path


@pytest.fixture(scope="module")
def coco128(shared_data: Path) -> Path:
    return shared_data / "coco128" / "data.yaml"


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco128_counts_match_label_files(coco128: Path, split: str) -> None:
    image_dir = coco128.parent / "images" / f"{split}2017"
    images = sorted(image_dir.glob("*.jpg"))
    expected_boxes = 0
    missing = 0
    for image in images:
        label = coco128.parent / "labels" / f"{split}2017" / f"{image.stem}.txt"
        if label.is_file():
            expected_boxes += sum(1 for line in label.read_text().splitlines() if line.strip())
        else:
            missing += 1

    index = read_yolo(coco128, split)

    assert len(index.records) == len(images) == 128
    assert sum(len(r.labels) for r in index.records) == expected_boxes
    assert index.report.num_errors == 0
    assert index.report.counts["missing_labels"] == missing
    assert len(index.names) == 80 and index.names[0] == "person" and index.names[79] == "toothbrush"
    assert [r.image_id for r in index.records] == list(range(128))


def test_coco128_boxes_inside_images_and_sizes_real(coco128: Path) -> None:
    index = read_yolo(coco128, "train")
    sizes_checked = 0
    for rec in index.records:
        b = rec.boxes
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= rec.width).all() and (b[:, 3] <= rec.height).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert ((rec.labels >= 0) & (rec.labels < 80)).all()
        if sizes_checked < 5:
            with Image.open(rec.path) as im:
                assert im.size == (rec.width, rec.height)
            sizes_checked += 1


def test_coco128_train_has_images_without_labels(coco128: Path) -> None:
    """COCO128 train2017 really lacks two label files: they must be kept as empty images."""
    index = read_yolo(coco128, "train")
    empty = {r.path.stem for r in index.records if not label_path(r.path).is_file()}
    assert empty == {"000000000250", "000000000508"}
    assert all(len(r.labels) == 0 for r in index.records if r.path.stem in empty)


def test_first_label_line_decoded_exactly(coco128: Path) -> None:
    index = read_yolo(coco128, "val")
    rec = index.records[0]
    cls, cx, cy, w, h = (float(v) for v in label_path(rec.path).read_text().split()[:5])
    expected = torch.tensor(
        [(cx - w / 2) * rec.width, (cy - h / 2) * rec.height, (cx + w / 2) * rec.width, (cy + h / 2) * rec.height]
    ).clamp(min=0)
    assert rec.labels[0] == int(cls)
    assert torch.allclose(torch.from_numpy(rec.boxes[0]), expected.float(), atol=1e-3)


def test_dataset_items_and_collate(coco128: Path) -> None:
    ds = build_dataset(coco128, "val", img_size=320)
    assert ds.num_classes == 80 and len(ds) == 128 and len(ds.image_paths) == 128
    batch = [ds[i] for i in range(3)]
    images, targets = collate_fn(batch)
    assert images.shape == (3, 3, 320, 320) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    for i, t in enumerate(targets):
        rec = ds.records[i]
        assert t["image_id"] == rec.image_id
        assert t["labels"].dtype == torch.int64 and t["boxes"].dtype == torch.float32
        assert t["boxes"].shape == (len(rec.labels), 4)
        assert (t["boxes"] >= 0).all() and (t["boxes"] <= 320).all()
        back = unletterbox_boxes(t["boxes"], t["scale"], t["pad"], t["orig_size"])
        assert torch.allclose(back, torch.from_numpy(rec.boxes), atol=0.05)
        assert t["orig_size"] == (rec.height, rec.width)


def test_missing_split_is_a_clear_error(coco128: Path) -> None:
    with pytest.raises(DataError, match="split 'test' is not defined"):
        read_yolo(coco128, "test")


def test_names_as_list_and_dict(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"x": "1 0.5 0.5 0.5 0.5\n"}, names=["cat", "dog"])
    assert read_yolo(data_yaml, "train").names == ["cat", "dog"]
    data_yaml.write_text(data_yaml.read_text().replace("- cat\n- dog", "{0: cat, 1: dog}").replace("names:\n", "names: "))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean dataset warns about nothing
        index = read_yolo(data_yaml, "train")
    assert index.names == ["cat", "dog"]
    assert index.records[0].labels.tolist() == [1]


def test_names_with_non_index_keys_name_the_file(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"x": "0 0.5 0.5 0.5 0.5\n"})
    data_yaml.write_text(data_yaml.read_text().split("names:")[0] + "names: {a: cat, b: dog}\n")
    with pytest.raises(DataError, match=r"data.yaml: 'names' keys must be class indices 0..n-1, got \['a', 'b'\]"):
        read_yolo(data_yaml, "train")
