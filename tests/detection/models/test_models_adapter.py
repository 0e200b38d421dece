"""BuiltinAdapter: DetectorAdapter contract, padding to the stride, mode handling, class accessors."""

from __future__ import annotations

import torch

from detprune.detection.models import BuiltinAdapter, build_model
from detprune.detection.types import DetectorAdapter


def test_contract_and_example_inputs() -> None:
    ad = BuiltinAdapter(build_model("yolov8n", 3, width=0.125))
    contract: DetectorAdapter = ad  # static check of the protocol; attributes checked below
    assert contract.num_classes == 3 and ad.strides == (8, 16, 32)
    images = torch.rand(2, 3, 64, 96)
    assert ad.example_inputs(images) is images
    padded = ad.example_inputs(torch.rand(1, 3, 70, 100))
    assert padded.shape == (1, 3, 96, 128)
    assert torch.allclose(padded[..., 70:, :], torch.tensor(114 / 255))


def test_predict_frame_mode_and_max_det() -> None:
    for name in ("yolov3-tiny", "yolov8n"):
        ad = BuiltinAdapter(build_model(name, 2, width=0.125))
        ad.model.train()
        preds = ad.predict(torch.rand(2, 3, 70, 100), conf_thres=0.0, max_det=7)
        assert ad.model.training  # mode restored
        assert len(preds) == 2
        for p in preds:
            assert p["boxes"].shape == (7, 4) and p["scores"].shape == (7,) and p["labels"].dtype == torch.int64
            assert (p["boxes"][:, 0::2] <= 100).all() and (p["boxes"][:, 1::2] <= 70).all()
            assert (p["boxes"] >= 0).all() and (p["scores"][:-1] >= p["scores"][1:]).all()


def test_loss_on_unpadded_images() -> None:
    ad = BuiltinAdapter(build_model("yolov3-tiny", 2, width=0.125), box_gain=1.0)
    target = dict(boxes=torch.tensor([[10.0, 10.0, 60.0, 50.0]]), labels=torch.tensor([1]), image_id=0)
    losses = ad.loss(torch.rand(1, 3, 70, 100), [target])
    assert ad.criterion.box_gain == 1.0 and all(torch.isfinite(v) for v in losses.values())


def test_class_accessors_delegate() -> None:
    for name, anchors, obj in (("yolov3-tiny", 3, True), ("yolov8n", 1, False)):
        ad = BuiltinAdapter(build_model(name, 4, width=0.125))
        raw = ad.model(ad.example_inputs(torch.rand(1, 3, 64, 64)))
        logits = ad.class_logits(raw)
        assert len(logits) == len(ad.strides)
        for t, r, s in zip(logits, raw, ad.strides, strict=True):
            assert t.shape == (1, anchors, 4, 64 // s, 64 // s)
            assert t.untyped_storage().data_ptr() == r.untyped_storage().data_ptr()  # a view, no copy
        assert (ad.objectness(raw) is not None) == obj
        assert all(((c >= 0) & (c <= 1)).all() for c in ad.class_scores(raw))
