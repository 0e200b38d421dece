"""Class-subset specialisation: the kept classes' logits are exactly the original ones, per family."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import detprune
from detprune.detection.adapters import build_torchvision
from detprune.detection.models import BuiltinAdapter, build_model
from detprune.specialise import ClassMap, ClassSubset, specialise, specialise_and_prune

KEEP = [3, 1]  # a subset, deliberately out of order


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to float reassociation: a narrower conv may pick another kernel (seen with SSDLite's 1x1)."""
    scale = float(a.abs().max()) if a.numel() else 1.0
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov8n"])
def test_builtin(name) -> None:
    torch.manual_seed(0)
    model = build_model(name, 5, width=0.25 if name == "yolov3-tiny" else None).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    original = copy.deepcopy(model)
    cmap = specialise(model, KEEP)
    assert cmap.names == ("3", "1") and model.num_classes == 2 and model.spec["num_classes"] == 2
    with torch.no_grad():
        out = model(x)
    for a, b in zip(original.class_logits(ref), model.class_logits(out)):
        same(a[:, :, KEEP], b)
    if name == "yolov3-tiny":  # box and objectness channels of every anchor are kept too
        for a, b in zip(original._split(ref), model._split(out)):
            same(a[:, :, :5], b[:, :, :5])
    else:
        for a, b in zip(ref, out):
            same(a[:, : 4 * model.reg_max], b[:, : 4 * model.reg_max])
    preds = BuiltinAdapter(model).predict(x, conf_thres=0.0)  # decoding follows the new class count
    assert int(preds[0]["labels"].max()) <= 1


def _capture(module: nn.Module) -> dict:
    store: dict = {}
    module.register_forward_hook(lambda m, a, o: store.__setitem__("out", o))
    return store


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_fpn", "retinanet_resnet50_fpn",
                                  "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large"])
def test_torchvision(name) -> None:
    torch.manual_seed(0)
    kwargs = {"size": 160} if name.startswith("ssd") else {"min_size": 128, "max_size": 128}
    model = build_torchvision(name, 5, **kwargs).eval()
    images = [torch.rand(3, 128, 128)]
    original = copy.deepcopy(model)
    specialise(model, KEEP)
    assert model.spec["num_classes"] == 2
    if name.startswith("fasterrcnn"):
        ref, new = _capture(original.roi_heads.box_predictor), _capture(model.roi_heads.box_predictor)
    else:
        ref, new = _capture(original.head.classification_head), _capture(model.head.classification_head)
    with torch.no_grad():
        original(images)
        detections = model(images)
    if name.startswith("fasterrcnn"):
        keep = [0] + [c + 1 for c in KEEP]  # background stays first
        (a_cls, a_box), (b_cls, b_box) = ref["out"], new["out"]
        same(a_cls[:, keep], b_cls)
        with pytest.raises(AssertionError):
            same(a_cls[:, keep[::-1]], b_cls)
        same(a_box.view(len(a_box), -1, 4)[:, keep], b_box.view(len(b_box), -1, 4))
    else:
        keep = [0] + [c + 1 for c in KEEP] if name.startswith("ssd") else KEEP
        same(ref["out"][..., keep], new["out"])
        with pytest.raises(AssertionError):  # the check can tell classes apart
            same(ref["out"][..., keep[::-1]], new["out"])
    offset = 1 if name.startswith(("fasterrcnn", "ssd")) else 0
    labels = detections[0]["labels"]
    assert labels.numel() == 0 or int(labels.max()) < 2 + offset


def test_ultralytics() -> None:
    pytest.importorskip("ultralytics")
    from detprune.zoo import load_model

    torch.manual_seed(0)
    model = load_model("ultralytics:yolov8n.yaml").eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[0]
    with pytest.warns(UserWarning, match="narrower"):  # 80-class branch width cannot be rebuilt for 2
        specialise(model, KEEP)
    head = model.model[-1]
    assert head.nc == 2 and head.no == 2 + 4 * head.reg_max and model.yaml["nc"] == 2
    assert model.names == {0: "3", 1: "1"}
    with torch.no_grad():
        out = model(x)[0]
    same(ref[:, [4 + c for c in KEEP]], out[:, 4:])
    same(ref[:, :4], out[:, :4])


def test_relabel_and_subset() -> None:
    class Data(torch.utils.data.Dataset):
        names = ["RBC", "WBC", "Platelets"]

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i):
            labels = [torch.tensor([0, 1, 2, 1]), torch.tensor([0, 0]), torch.tensor([2])][i]
            return torch.zeros(3, 8, 8), {"boxes": torch.arange(len(labels) * 4.0).view(-1, 4), "labels": labels}

    ds = ClassSubset(Data(), ["Platelets", "WBC"])
    assert ds.names == ["Platelets", "WBC"] and ds.num_classes == 2 and len(ds) == 3
    _, t = ds[0]
    assert t["labels"].tolist() == [1, 0, 1] and t["boxes"][:, 0].tolist() == [4.0, 8.0, 12.0]
    assert ds[1][1]["labels"].numel() == 0
    assert len(ClassSubset(Data(), ["WBC"], drop_empty=True)) == 1
    with pytest.raises(ValueError):
        ClassMap.build(["Monocyte"], Data.names)
    with pytest.raises(ValueError):
        ClassMap.build([1, 1], Data.names)


def test_specialise_then_prune_then_save(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("yolov3-tiny", 3, width=0.25, names=["RBC", "WBC", "Platelets"]).eval()
    x = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = specialise_and_prune(model, ["WBC"], x, criterion="l1", ratio=0.5, schedule="global")
    assert rep.classes.classes == (1,) and model.names == ["WBC"]
    assert rep.prune.params_after < rep.prune.params_before
    assert all(p.out_channels == 3 * 6 for p in model.prediction_convs())  # class channels stay pinned
    path = detprune.save(model, tmp_path / "wbc.safetensors")
    back = detprune.load(path).eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), back(x)))
    assert back.num_classes == 1
