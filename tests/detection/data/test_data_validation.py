"""Every kind of bad data: strict raises naming file and line, lenient skips and counts."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from detprune.detection.data import DataError, DataWarning, build_dataset, read_yolo

from datatest_helpers import write_image

pytestmark = pytest.mark.filterwarnings("ignore::detprune.detection.data.DataWarning")

GOOD = "0 0.5 0.5 0.25 0.25\n"

# (label text, problem kind, line number, message fragment)
BAD_LINES = [
    (GOOD + "1 0.5 0.5 0.2\n", "label_format", 2, "expected 5 fields"),
    (GOOD + "1 0.5 0.5 0.2 0.2 7\n", "label_format", 2, "expected 5 fields"),
    (GOOD + "one 0.5 0.5 0.2 0.2\n", "label_format", 2, "non-numeric"),
    ("3 0.5 0.5 0.2 0.2\n" + GOOD, "class_range", 1, "class id 3 not in [0, 2]"),
    ("-1 0.5 0.5 0.2 0.2\n" + GOOD, "class_range", 1, "class id -1"),
    ("1.5 0.5 0.5 0.2 0.2\n" + GOOD, "class_range", 1, "class id 1.5"),
    (GOOD + "\n" + "2 1.3 0.5 0.2 0.2\n", "out_of_bounds", 3, "outside the 64x48 image"),
    (GOOD + "2 0.5 0.5 0.0 0.2\n", "zero_area", 2, "zero-area box"),
    (GOOD + "2 0.5 0.5 nan 0.2\n", "label_format", 2, "non-finite"),
]


@pytest.mark.parametrize(("text", "kind", "line", "fragment"), BAD_LINES)
def test_bad_label_line(make_yolo, text: str, kind: str, line: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"img": text, "other": GOOD})
    label = data_yaml.parent / "labels" / "train" / "img.txt"
    with pytest.raises(DataError, match=rf"{label}:{line}: .*{_re(fragment)}"):
        read_yolo(data_yaml, "train", strict=True)

    with pytest.warns(DataWarning, match=rf"img\.txt:{line}: "):
        index = read_yolo(data_yaml, "train")
    assert index.report.counts == {kind: 1}
    assert [len(r.labels) for r in index.records] == [1, 1]  # the bad box is gone, the good ones stay
    assert index.records[0].labels.tolist() == [0]


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_tiny_overshoot_is_clipped_not_dropped(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"img": "1 0.1 0.5 0.2000005 0.2\n2 0.5 0.5 1.004 0.5\n"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # notes never warn
        index = read_yolo(data_yaml, "train", strict=True)  # nor raise in strict mode
    boxes = index.records[0].boxes
    assert index.report.counts == {"clipped": 2}
    assert boxes[:, 0].min() == 0 and boxes[:, 2].max() == 64
    assert boxes[1].tolist() == pytest.approx([0, 12, 64, 36])


def test_missing_label_file_is_a_note_and_an_empty_image(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"img": GOOD, "unlabelled": None})
    index = read_yolo(data_yaml, "train", strict=True)
    assert [len(r.labels) for r in index.records] == [1, 0]
    assert index.report.counts == {"missing_labels": 1}
    assert "unlabelled.jpg: no label file" in index.report.messages[0]
    assert index.report.num_errors == 0


def test_truncated_and_garbage_images_skipped_at_index_time(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD, "truncated": GOOD, "garbage": GOOD})
    images = data_yaml.parent / "images" / "train"
    data = (images / "truncated.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (images / "garbage.jpg").write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(DataError, match=r"garbage\.jpg: unreadable image"):
        read_yolo(data_yaml, "train", strict=True)
    index = read_yolo(data_yaml, "train")
    assert [r.path.name for r in index.records] == ["a.jpg"]
    assert index.report.counts == {"bad_image": 2}
    assert any("truncated.jpg: unreadable image (truncated JPEG" in m for m in index.report.messages)


def test_truncated_png_detected(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD})
    png = write_image(data_yaml.parent / "images" / "train" / "b.png", fmt="PNG")
    png.write_bytes(png.read_bytes()[:-200])
    index = read_yolo(data_yaml, "train")
    assert [r.path.name for r in index.records] == ["a.jpg"] and index.report.counts["bad_image"] == 1


def test_decode_failure_at_load_time_is_replaced_in_lenient_mode(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD, "b": "1 0.5 0.5 0.5 0.5\n", "c": "2 0.5 0.5 0.5 0.5\n"})
    ds = build_dataset(data_yaml, "train", img_size=64)
    strict_ds = build_dataset(data_yaml, "train", img_size=64, strict=True)
    (data_yaml.parent / "images" / "train" / "b.jpg").write_bytes(b"\xff\xd8 corrupted after indexing")

    with pytest.warns(DataWarning, match=r"b\.jpg: cannot decode .*using the next sample"):
        image, target = ds[1]
    assert image.shape == (3, 64, 64)
    assert target["image_id"] == ds.records[2].image_id and target["labels"].tolist() == [2]
    assert ds.report.counts["bad_image"] == 1
    image, target = ds[1]  # known bad: skipped without a second report
    assert ds.report.counts["bad_image"] == 1 and target["labels"].tolist() == [2]
    assert torch.equal(ds[0][1]["labels"], torch.tensor([0]))

    with pytest.raises(DataError, match=r"b\.jpg: cannot decode"):
        strict_ds[1]


def test_image_resized_after_indexing_is_not_used(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD, "b": GOOD})
    ds = build_dataset(data_yaml, "train", img_size=64)
    write_image(data_yaml.parent / "images" / "train" / "a.jpg", 32, 32)  # boxes would be wrong now
    _, target = ds[0]
    assert target["image_id"] == 1 and ds.report.counts["bad_image"] == 1


def test_empty_split_names_the_directory(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD})
    (data_yaml.parent / "images" / "val").mkdir()
    data_yaml.write_text(data_yaml.read_text() + "val: images/val\n")
    with pytest.raises(DataError, match=r"split 'val' is empty: no images in .*images/val"):
        read_yolo(data_yaml, "val")
    data_yaml.write_text(data_yaml.read_text().replace("val: images/val", "val: images/nowhere"))
    with pytest.raises(DataError, match=r"split 'val' source .*images/nowhere does not exist"):
        build_dataset(data_yaml, "val")


def test_all_images_bad_is_an_error_not_an_empty_dataset(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"a": GOOD})
    (data_yaml.parent / "images" / "train" / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no usable images"):
        build_dataset(data_yaml, "train")


def test_unknown_spec_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        build_dataset(tmp_path / "nothing", "train")
    with pytest.raises(DataError, match="cannot tell the format"):
        build_dataset(tmp_path, "train")
    with pytest.raises(DataError, match="synthetic:N"):
        build_dataset("synthetic:lots", "train")


def test_many_problems_warn_a_bounded_number_of_times(make_yolo) -> None:  # type: ignore[no-untyped-def]
    data_yaml = make_yolo({"img": GOOD + "7 0.5 0.5 0.2 0.2\n" * 30})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        index = read_yolo(data_yaml, "train")
    texts = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert index.report.counts == {"class_range": 30} and len(index.report.messages) == 30
    assert len(texts) == 21  # 20 individual warnings + the summary
    assert "30 skipped" in texts[-1] and "10 more problems were only logged" in texts[-1]
    assert "img.txt:31:" in index.report.messages[-1]


def test_index_bounds(make_yolo) -> None:  # type: ignore[no-untyped-def]
    ds = build_dataset(make_yolo({"a": GOOD, "b": GOOD}), "train", img_size=32)
    assert ds[-1][1]["image_id"] == 1
    assert len(list(ds)) == 2  # plain iteration stops
    with pytest.raises(IndexError):
        ds[2]
