"""VOC reader on the real BCCD set, plus VOC-specific defects in a tmp dir."""

from __future__ import annotations

import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from detprune.detection.data import DataError, DataWarning, build_dataset, read_voc

from datatest_helpers import write_image

pytestmark = pytest.mark.filterwarnings("ignore::detprune.detection.data.DataWarning")


@pytest.fixture(scope="module")
def bccd(shared_data: Path) -> Path:
    return shared_data / "bccd"


def _objects_in(xml_files: list[Path]) -> int:
    return sum(len(ET.parse(f).getroot().findall("object")) for f in xml_files)


@pytest.mark.filterwarnings("ignore::detprune.detection.data.DataWarning")
@pytest.mark.parametrize(("split", "size"), [("train", 205), ("val", 87), ("test", 72)])
def test_bccd_split_sizes_and_classes(bccd: Path, split: str, size: int) -> None:
    ids = (bccd / "ImageSets" / "Main" / f"{split}.txt").read_text().split()
    index = read_voc(bccd, split)
    assert len(index.records) == len(ids) == size
    assert index.names == ["Platelets", "RBC", "WBC"]
    assert [r.path.stem for r in index.records] == ids
    assert all((r.width, r.height) == (640, 480) for r in index.records)
    zero_area = index.report.counts["zero_area"]
    assert sum(len(r.labels) for r in index.records) == _objects_in(
        [bccd / "Annotations" / f"{i}.xml" for i in ids]
    ) - zero_area


def test_bccd_zero_area_boxes_dropped_with_warnings_naming_files(bccd: Path) -> None:
    messages: list[str] = []
    dropped = 0
    for split in ("train", "val", "test"):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            index = read_voc(bccd, split)
        messages += [str(w.message) for w in record if issubclass(w.category, DataWarning)]
        dropped += index.report.counts["zero_area"]
        assert index.report.num_errors == index.report.counts["zero_area"]
        for rec in index.records:
            assert ((rec.boxes[:, 2] > rec.boxes[:, 0]) & (rec.boxes[:, 3] > rec.boxes[:, 1])).all()
    assert dropped == 2
    assert any("BloodImage_00338.xml object #12" in m and "zero-area" in m for m in messages)
    assert any("BloodImage_00343.xml object #3" in m and "zero-area" in m for m in messages)
    assert sum("zero_area=1" in m for m in messages) == 2  # the end-of-loading summaries
    assert _objects_in(sorted((bccd / "Annotations").glob("*.xml"))) == 4155 + 372 + 361


def test_bccd_strict_raises_on_zero_area_box(bccd: Path) -> None:
    split = next(s for s in ("train", "val") if "BloodImage_00338" in (bccd / "ImageSets/Main" / f"{s}.txt").read_text())
    with pytest.raises(DataError, match=r"BloodImage_00338\.xml object #12.*zero-area"):
        read_voc(bccd, split, strict=True)


def test_bccd_dataset_and_given_names(bccd: Path) -> None:
    ds = build_dataset(bccd, "test", img_size=320, names=["WBC", "RBC", "Platelets"])
    assert ds.names == ["WBC", "RBC", "Platelets"] and ds.num_classes == 3
    image, target = ds[0]
    assert image.shape == (3, 320, 320)
    assert target["pad"] == (0, 40)  # 640x480 -> 320x240, centred vertically
    assert len(target["labels"]) == len(ds.records[0].labels) > 0


def _tiny_voc(root: Path, objects_xml: str, ids: tuple[str, ...] = ("img0",), size: tuple[int, int] = (64, 48)) -> Path:
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main" / "train.txt").write_text("".join(f"{i}\n" for i in ids))
    for i in ids:
        write_image(root / "JPEGImages" / f"{i}.jpg", 64, 48)
        (root / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objects_xml}</annotation>"
        )
    return root


def _obj(name: str, box: tuple[object, ...], difficult: int = 0) -> str:
    coords = "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
    return f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>{coords}</bndbox></object>"


def test_voc_defects_lenient_and_strict(tmp_path: Path) -> None:
    objects = _obj("cat", (1, 1, 20, 20)) + _obj("cow", (1, 1, 5, 5)) + _obj("dog", (1, "x", 5, 5)) + _obj(
        "dog", (2, 2, 30, 30), difficult=1
    )
    root = _tiny_voc(tmp_path / "voc", objects)
    with pytest.warns(DataWarning, match=r"img0\.xml object #1: unknown class 'cow'"):
        index = read_voc(root, "train", names=["cat", "dog"])
    assert index.records[0].labels.tolist() == [0, 1]
    assert index.report.counts == {"class_range": 1, "label_format": 1, "difficult": 1}
    with pytest.raises(DataError, match=r"img0\.xml object #1: unknown class 'cow'"):
        read_voc(root, "train", names=["cat", "dog"], strict=True)
    # without names every class found in the annotations is used, sorted
    with pytest.warns(DataWarning, match=r"object #2: missing or non-numeric"):
        assert read_voc(root, "train").names == ["cat", "cow", "dog"]


def test_voc_missing_and_malformed_annotation(tmp_path: Path) -> None:
    root = _tiny_voc(tmp_path / "voc", _obj("cat", (1, 1, 20, 20)), ids=("a", "b", "c"))
    (root / "Annotations" / "b.xml").write_text("<annotation><object>")
    (root / "Annotations" / "c.xml").unlink()
    with pytest.warns(DataWarning):
        index = read_voc(root, "train", names=["cat"])
    assert [r.path.stem for r in index.records] == ["a"]
    assert index.report.counts == {"label_format": 1, "missing_file": 1}
    assert any("b.xml: malformed XML" in m for m in index.report.messages)


def test_voc_size_mismatch_and_empty_split(tmp_path: Path) -> None:
    root = _tiny_voc(tmp_path / "voc", _obj("cat", (1, 1, 20, 20)), size=(640, 480))
    with pytest.raises(DataError, match=r"img0\.xml: declares 640x480, image is 64x48"):
        read_voc(root, "train", strict=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("\n")
    with pytest.raises(DataError, match=r"split 'val' is empty: .*val\.txt"):
        read_voc(root, "val")
    with pytest.raises(DataError, match=r"test\.txt does not exist"):
        read_voc(root, "test")


def test_voc_copy_of_real_annotation_reads_the_same(bccd: Path, tmp_path: Path) -> None:
    """A split file listing one real image id, in a private copy, reads that image's boxes."""
    root = tmp_path / "voc"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    shutil.copytree(bccd / "Annotations", root / "Annotations")
    (root / "JPEGImages").mkdir()
    shutil.copy(bccd / "JPEGImages" / "BloodImage_00000.jpg", root / "JPEGImages")
    (root / "ImageSets" / "Main" / "one.txt").write_text("BloodImage_00000\n")
    rec = read_voc(root, "one").records[0]
    xml = ET.parse(root / "Annotations" / "BloodImage_00000.xml").getroot()
    first = xml.find("object/bndbox")
    assert first is not None
    assert rec.boxes[0].tolist() == [float(first.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[arg-type]


def test_a_name_used_by_one_object_is_reported_as_a_likely_misspelling(tmp_path: Path) -> None:
    many = "".join(_obj("Platelets", (1, 1, 5, 5)) for _ in range(60))
    root = _tiny_voc(tmp_path / "voc", many + _obj("Platelet", (2, 2, 6, 6)))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        index = read_voc(root, "train")
    messages = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert index.names == ["Platelet", "Platelets"]  # kept: it may be a genuinely rare class
    assert any("class 'Platelet' is used by only 1 object(s) (img0.xml) against 60" in m for m in messages), messages
    assert not any("'Platelets' is used" in m for m in messages)


def test_bccd_classes_raise_no_misspelling_warning(bccd: Path) -> None:
    from detprune.detection.data.voc import voc_names

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert voc_names(bccd) == ["Platelets", "RBC", "WBC"]
    assert not [w for w in record if issubclass(w.category, DataWarning)]
