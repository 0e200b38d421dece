"""Registry: names, defaults, and the rebuildable ``spec``."""

from __future__ import annotations

import json

import pytest

from detprune.detection.models import YOLOv3Tiny, YOLOv8, available_models, build_model


def shapes(m) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("yolov3-tiny", {"width": 0.25}),
        (
            "yolov3-tiny",
            {"anchors": [[4, 5], [8, 9], [12, 13], [20, 20], [30, 40], [60, 50]], "names": ["a", "b", "c"]},
        ),
        ("yolov8n", {}),
        ("yolov8s", {"width": 0.125, "depth": 0.5, "names": ["a", "b", "c"]}),
        ("yolov8n", {"reg_max": 8}),
    ],
)
def test_spec_rebuilds_same_architecture(name: str, kw: dict) -> None:
    m = build_model(name, 3, **kw)
    spec = json.loads(json.dumps(m.spec))  # serialisable as is
    rebuilt = build_model(**spec)
    assert shapes(rebuilt) == shapes(m)
    assert rebuilt.spec == m.spec and rebuilt.names == m.names and rebuilt.num_classes == 3
    if "anchors" in kw:
        assert rebuilt.anchors.equal(m.anchors)


def test_names_defaults_and_types() -> None:
    assert {"yolov3-tiny", "yolov8n", "yolov8s"} <= set(available_models())
    tiny, n, s = (
        build_model("yolov3-tiny", 2),
        build_model("yolov8n", 2, names=["cat", "dog"]),
        build_model("yolov8s", 2),
    )
    assert isinstance(tiny, YOLOv3Tiny) and isinstance(n, YOLOv8) and isinstance(s, YOLOv8)
    assert tiny.names == ["0", "1"] and n.names == ["cat", "dog"]
    assert n.spec == {"name": "yolov8n", "num_classes": 2, "width": 0.25, "depth": 0.33, "names": ["cat", "dog"]}
    assert (s.width, s.depth) == (0.5, 0.33) and tiny.spec["width"] == 1.0
    assert build_model("yolov8n", 2, width=0.5).stem.conv.out_channels == s.stem.conv.out_channels


def test_unknown_name() -> None:
    with pytest.raises(KeyError, match="available"):
        build_model("yolov9z", 3)


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov8n"])
@pytest.mark.parametrize("nc", [0, -3, 2.5])
def test_bad_num_classes_is_named(name: str, nc) -> None:
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        build_model(name, nc)
