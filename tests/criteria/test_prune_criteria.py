"""Every registered criterion drives ``detprune.prune`` end to end, on test blocks and detectors."""

from __future__ import annotations

import pytest
import torch

import detprune
from detprune.criteria import CRITERIA

from blocks import BLOCKS


def _loss(model, batch):
    out = model(batch if isinstance(batch, torch.Tensor) else batch[0])
    return sum(o.square().mean() for o in (out if isinstance(out, list) else [out]))


def _scores(raw):  # block outputs as class maps [B, A=1, nc, H, W]; 1-D outputs as 1 x L maps
    raw = raw if isinstance(raw, list) else [raw]
    return [r.unsqueeze(1) if r.dim() == 4 else r.reshape(r.shape[0], 1, r.shape[1], 1, -1) for r in raw]


KWARGS = {"taylor": {"loss_fn": _loss}, "wrg": {"loss_fn": _loss}, "attribution": {"scores_fn": _scores, "tau": 0.0}}


@pytest.mark.parametrize("block", ["pan", "chunk_slice", "conv1d_bn1d_linear"])
@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_prune_with_every_criterion(name: str, block: str) -> None:
    ctor, shape = BLOCKS[block]
    torch.manual_seed(0)
    model = ctor().eval()
    x = torch.rand(*shape)
    data = [torch.rand(*shape) for _ in range(2)]
    report = detprune.prune(model, x, criterion=name, ratio=0.5, data=data, measure=False,
                            **({"progress": False} if CRITERIA[name].needs_data else {}), **KWARGS.get(name, {}))
    assert report.params_after < report.params_before
    with torch.no_grad():
        model(x)  # still runs


def test_builtin_yolo_with_adapter() -> None:
    from detprune.detection.models import BuiltinAdapter, build_model

    torch.manual_seed(0)
    model = build_model("yolov3-tiny", num_classes=2, width=0.125)
    adapter = BuiltinAdapter(model)
    images = torch.rand(2, 3, 64, 64)
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 40.0, 30.0]]), "labels": torch.tensor([1]), "image_id": i}
               for i in range(2)]
    before = sum(p.numel() for p in model.parameters())
    for name, kw in [("attribution", {"use_labels": True}), ("taylor", {}), ("wrg", {})]:
        report = detprune.prune(model, adapter.example_inputs(images), criterion=name, ratio=0.2,
                                data=[(images, targets)], adapter=adapter, progress=False, measure=False, **kw)
        assert report.params_after < report.params_before
    assert sum(p.numel() for p in model.parameters()) < before


def test_ultralytics_attribution_default_scores() -> None:
    tasks = pytest.importorskip("ultralytics.nn.tasks")
    torch.manual_seed(0)
    model = tasks.DetectionModel("yolov8n.yaml", verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    report = detprune.prune(model, x, criterion="attribution", ratio=0.3, data=[torch.rand(2, 3, 64, 64)],
                            tau=0.0, classes=[0, 5], progress=False, measure=False)
    assert report.params_after < report.params_before
