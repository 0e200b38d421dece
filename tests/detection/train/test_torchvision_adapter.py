"""TorchvisionAdapter: label offsets, prediction mapping, builders and their specs."""

import contextlib

import pytest
import torch

from detprune.detection.adapters import TORCHVISION_DETECTORS, TorchvisionAdapter, build_torchvision
from detprune.detection.types import Target

SMALL = {
    "fasterrcnn_mobilenet_v3_large_fpn": {"min_size": 64, "max_size": 64},
    "fasterrcnn_resnet50_fpn": {"min_size": 64, "max_size": 64},
    "retinanet_resnet50_fpn": {"min_size": 64, "max_size": 64},
    "fcos_resnet50_fpn": {"min_size": 64, "max_size": 64},
    "ssdlite320_mobilenet_v3_large": {"size": 64},
    "ssd300_vgg16": {},  # VGG's extra layers need 300 px: built, not run
}
OFFSETS = {name: 1 if name.startswith(("fasterrcnn", "ssd")) else 0 for name in SMALL}


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch() -> tuple[torch.Tensor, list[Target]]:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64)
    targets = [
        Target(boxes=torch.tensor([[4.0, 4.0, 40.0, 30.0]]), labels=torch.tensor([0]), image_id=0),
        Target(
            boxes=torch.tensor([[10.0, 12.0, 60.0, 50.0], [5.0, 5.0, 5.0, 9.0]]),
            labels=torch.tensor([2, 1]),
            image_id=1,
        ),
    ]
    return images, targets


def test_registry_covers_required_models() -> None:
    assert set(TORCHVISION_DETECTORS) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_build_spec_and_train_eval(name: str) -> None:
    torch.manual_seed(0)
    heavy = name == "ssd300_vgg16"
    with torch.device("meta") if heavy else contextlib.nullcontext():  # meta: skip VGG16's costly init
        adapter = TorchvisionAdapter.build(name, 3, **SMALL[name])
        rebuilt = build_torchvision(**adapter.model.spec)
    model = adapter.model
    assert adapter.num_classes == 3 and adapter.label_offset == OFFSETS[name]
    assert model.spec == {"name": name, "num_classes": 3, **SMALL[name]}
    rebuilt.load_state_dict(model.state_dict())  # same architecture
    if heavy:
        return
    images, targets = _batch()
    captured = {}

    def spy(module, args):  # returns None: inputs unchanged
        if len(args) > 1:
            captured["targets"] = args[1]

    model.register_forward_pre_hook(spy)
    losses = adapter.loss(images, targets)
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    tv = captured["targets"]
    off = OFFSETS[name]
    assert tv[0]["labels"].tolist() == [0 + off]
    assert tv[1]["labels"].tolist() == [2 + off]  # degenerate (zero-width) box dropped
    assert tv[1]["boxes"].shape == (1, 4)
    assert model.training
    preds = adapter.predict(images, conf_thres=0.0, max_det=50)
    assert model.training  # mode restored
    for p in preds:
        assert len(p["labels"]) <= 50
        if len(p["labels"]):
            assert 0 <= int(p["labels"].min()) and int(p["labels"].max()) < 3
            assert p["labels"].dtype == torch.int64 and p["boxes"].shape[1] == 4
    assert len(adapter.example_inputs(images)) == 2


@pytest.mark.parametrize(
    "name", ["fasterrcnn_mobilenet_v3_large_fpn", "ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn"]
)
def test_predict_maps_labels_back_and_filters(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = TorchvisionAdapter.build(name, 3, **SMALL[name])
    off = adapter.label_offset
    tv_labels = torch.tensor([0, 1, 2]) + off  # torchvision-convention labels of our classes 0, 1, 2
    seen = {}

    def fake_forward(images, targets=None):
        owner = adapter.model.roi_heads if hasattr(adapter.model, "roi_heads") else adapter.model
        seen.update(score=owner.score_thresh, nms=owner.nms_thresh, det=owner.detections_per_img)
        return [{"boxes": torch.rand(3, 4), "scores": torch.tensor([0.9, 0.05, 0.5]), "labels": tv_labels}]

    monkeypatch.setattr(adapter.model, "forward", fake_forward)
    preds = adapter.predict(torch.rand(1, 3, 64, 64), conf_thres=0.1, iou_thres=0.33, max_det=7)
    assert preds[0]["labels"].tolist() == [0, 2]  # 0-based, low score dropped
    assert preds[0]["scores"].tolist() == pytest.approx([0.9, 0.5])
    assert seen == {"score": 0.1, "nms": 0.33, "det": 7}
    owner = adapter.model.roi_heads if hasattr(adapter.model, "roi_heads") else adapter.model
    assert owner.nms_thresh != 0.33  # restored


def test_empty_targets_and_errors() -> None:
    adapter = TorchvisionAdapter.build("fasterrcnn_mobilenet_v3_large_fpn", 2, min_size=64, max_size=64)
    images, _ = _batch()
    empty = [Target(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64), image_id=i) for i in range(2)]
    losses = adapter.loss(images, empty)
    assert torch.isfinite(sum(losses.values()))
    with pytest.raises(ValueError, match="never downloads"):
        build_torchvision("fasterrcnn_resnet50_fpn", 2, weights="DEFAULT")
    with pytest.raises(ValueError, match="unknown"):
        build_torchvision("yolo", 2)
    with pytest.raises(ValueError, match="foreground"):
        TorchvisionAdapter(adapter.model, num_classes=3)
