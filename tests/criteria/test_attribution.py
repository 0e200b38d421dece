"""Attribution pruning on a toy 2-level detector whose class channels are known."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import detprune
from detprune.criteria import get_criterion
from detprune.criteria.score_maps import default_boxes_fn, default_scores_fn, ultralytics_boxes, ultralytics_scores


class ToyDetector(nn.Module):
    """Two levels (stride 1 and 2); per level a 4-channel tower whose channels 0-1 feed only
    class 0 and channels 2-3 only class 1 through a block-diagonal 1x1 prediction conv."""

    num_classes = 2

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.towers = nn.ModuleList([nn.Conv2d(8, 4, 3, padding=1) for _ in range(2)])
        self.preds = nn.ModuleList([nn.Conv2d(4, 2, 1) for _ in range(2)])
        with torch.no_grad():
            for p in self.preds:
                p.weight.zero_()
                p.weight[0, :2] = torch.tensor([1.0, -0.5]).view(2, 1, 1)
                p.weight[1, 2:] = torch.tensor([0.8, 0.6]).view(2, 1, 1)
                p.bias.zero_()  # probabilities around 0.5: every position passes tau

    def forward(self, x):
        f1 = self.stem(x)
        feats = [f1, self.down(f1)]
        return [p(torch.relu(t(f))) for f, t, p in zip(feats, self.towers, self.preds)]

    def class_logits(self, raw):
        return [r.unsqueeze(1) for r in raw]  # [B, A=1, nc, H, W]


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = ToyDetector().eval()
    x = torch.rand(1, 3, 8, 8)
    return model, x, detprune.groups(model, x), [torch.rand(2, 3, 8, 8) for _ in range(2)]


def _tower_scores(crit, groups) -> list[np.ndarray]:
    return [crit.member_scores(next(m for g in groups for m in g.members if m.label == f"towers.{i}.weight[0]"))
            for i in range(2)]


def test_non_target_channels_score_zero_and_masking_a_class_changes_scores() -> None:
    model, _, groups, data = _setup()
    per_class = {}
    for cls in (0, 1):
        crit = get_criterion("attribution", classes=[cls], progress=False)
        crit.prepare(model, groups, data=data)
        per_class[cls] = _tower_scores(crit, groups)
    for level in range(2):
        s0, s1 = per_class[0][level], per_class[1][level]
        assert np.all(np.abs(s0[2:]) < 1e-12) and np.any(np.abs(s0[:2]) > 1e-6)  # class 1 channels: no attribution
        assert np.all(np.abs(s1[:2]) < 1e-12) and np.any(np.abs(s1[2:]) > 1e-6)
    both = get_criterion("attribution", progress=False)  # all classes
    both.prepare(model, groups, data=data)
    for level, s in enumerate(_tower_scores(both, groups)):
        assert not np.allclose(s, per_class[0][level]) and not np.allclose(s, per_class[1][level])
        assert s == pytest.approx(per_class[0][level] + per_class[1][level], rel=1e-6, abs=1e-9)  # max of disjoint supports


def test_pruning_keeps_the_target_class_channels() -> None:
    model, x, _, data = _setup()
    detprune.prune(model, x, criterion="attribution", ratio=0.5, data=data, classes=[1], progress=False, measure=False)
    for p in model.preds:
        assert p.in_channels == 2
        assert torch.all(p.weight[0] == 0) and torch.all(p.weight[1] != 0)  # only class-1 channels survive


def test_tau_masks_positions() -> None:
    model, _, groups, data = _setup()
    crit = get_criterion("attribution", tau=0.999, progress=False)  # no position passes: T = 0
    with pytest.warns(UserWarning, match="no class score passed the spatial mask"):
        crit.prepare(model, groups, data=data)
    assert all(np.all(s == 0) for s in _tower_scores(crit, groups))
    assert crit.masked == 0
    crit = get_criterion("attribution", tau=0.0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crit.prepare(model, groups, data=data)
    assert crit.masked > 0


def test_mask_from_another_model_gives_the_positions() -> None:
    model, _, groups, data = _setup()
    mute = ToyDetector().eval()  # the model scored: its class logits sit far below tau everywhere
    mute.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in mute.preds:
            p.bias.fill_(-20.0)
    groups = detprune.groups(mute, data[0][:1])
    alone = get_criterion("attribution", tau=0.5, progress=False)
    with pytest.warns(UserWarning, match="no class score passed"):
        alone.prepare(mute, groups, data=data)
    guided = get_criterion("attribution", tau=0.5, mask_from=model, progress=False)  # model's logits pass 0.5 here
    guided.prepare(mute, groups, data=data)
    assert guided.masked > 0 and all(np.any(np.abs(s) > 1e-6) for s in _tower_scores(guided, groups))
    assert not model.training  # prepare() put the mask model in eval mode and left it there

    per_level = ToyDetector.class_logits
    with pytest.raises(ValueError, match="mask_from"):  # a mask model with another class count
        guided.target([torch.zeros(1, 2, 4, 4)], lambda raw: per_level(None, raw), None, (8, 8),
                      mask_raw=[torch.zeros(1, 3, 4, 4)])


def test_ground_truth_boxes_as_spatial_mask() -> None:
    model, _, groups, _ = _setup()
    images = torch.rand(2, 3, 8, 8)
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 3.0, 3.0]]), "labels": torch.tensor([0]), "image_id": i}
               for i in range(2)]
    crit = get_criterion("attribution", use_labels=True, progress=False)
    crit.prepare(model, groups, data=[(images, targets)])
    s = _tower_scores(crit, groups)
    assert all(np.all(v[2:] == 0) for v in s)  # only class 0 is labelled
    mean_abs = get_criterion("attribution", use_labels=True, reduction="mean_abs", progress=False)
    mean_abs.prepare(model, groups, data=[(images, targets)])
    assert all(np.all(v >= 0) and np.any(v > 0) for v in _tower_scores(mean_abs, groups))
    with pytest.raises(ValueError, match="targets"):
        crit.prepare(model, groups, data=[images])


def test_weight_exponent_scales_scores_by_relative_filter_norm() -> None:
    model, _, groups, data = _setup()
    with torch.no_grad():
        model.towers[0].weight[1].mul_(3.0)  # a class-0 channel with three times the weights
    plain = get_criterion("attribution", classes=[0], reduction="mean_abs", progress=False)
    weighted = get_criterion("attribution", classes=[0], reduction="mean_abs", weight_exponent=1.0, progress=False)
    for crit in (plain, weighted):
        crit.prepare(model, groups, data=data)
    member = next(m for g in groups for m in g.members if m.label == "towers.0.weight[0]")
    norms = model.towers[0].weight.detach().abs().flatten(1).sum(1).numpy()
    expected = plain.member_scores(member) * norms / norms.mean()
    assert np.allclose(weighted.member_scores(member), expected)
    assert np.all(weighted.member_scores(member)[2:] == 0)  # class-1 channels stay at zero
    with pytest.raises(ValueError, match="weight_exponent"):
        get_criterion("attribution", weight_exponent=-1.0)


def test_detected_only_keeps_the_labelled_cells_that_fire() -> None:
    # one 4x4 level, class 0; the box covers the top-left 2x2 cells (centres at 1 and 3 px, stride 2)
    logits = torch.full((1, 1, 1, 4, 4), -10.0)
    logits[0, 0, 0, 0, 0] = 3.0  # labelled and detected
    logits[0, 0, 0, 3, 3] = 3.0  # detected, not labelled
    targets = [{"boxes": torch.tensor([[0.0, 0.0, 3.5, 3.5]]), "labels": torch.tensor([0])}]
    labels = get_criterion("attribution", use_labels=True, progress=False)
    detected = get_criterion("attribution", use_labels=True, detected_only=True, progress=False)
    assert labels.target(logits, lambda raw: [raw], targets, (8, 8)).item() == 3.0 - 3 * 10.0
    assert detected.target(logits, lambda raw: [raw], targets, (8, 8)).item() == 3.0
    with pytest.raises(ValueError, match="use_labels"):
        get_criterion("attribution", detected_only=True)


def test_default_scores_fn_and_errors() -> None:
    model = ToyDetector()
    assert default_scores_fn(model) == model.class_logits
    with pytest.raises(ValueError, match="scores_fn"):
        default_scores_fn(nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError):
        get_criterion("attribution", reduction="median")


def test_ultralytics_score_layouts() -> None:
    feats = [torch.rand(2, 8, 4, 4), torch.rand(2, 8, 2, 2)]
    scores = torch.arange(2 * 3 * 20, dtype=torch.float32).view(2, 3, 20)
    out = ultralytics_scores({"boxes": torch.rand(2, 64, 20), "scores": scores, "feats": feats}, nc=3)
    assert [o.shape for o in out] == [(2, 1, 3, 4, 4), (2, 1, 3, 2, 2)]
    assert torch.equal(out[1][0, 0, 2].flatten(), scores[0, 2, 16:])
    nested = ultralytics_scores((torch.rand(2, 7, 20), {"one2many": {"scores": scores, "feats": feats}, "one2one": {}}), 3)
    assert all(torch.equal(a, b) for a, b in zip(nested, out))
    legacy = [torch.rand(2, 64 + 3, 4, 4)]
    assert torch.equal(ultralytics_scores(legacy, 3)[0][:, 0], legacy[0][:, 64:])


class ToyBoxDetector(ToyDetector):
    """ToyDetector plus a fifth tower channel that feeds only a box output (no class)."""

    def __init__(self) -> None:
        super().__init__()
        self.towers = nn.ModuleList([nn.Conv2d(8, 5, 3, padding=1) for _ in range(2)])
        self.boxes = nn.ModuleList([nn.Conv2d(5, 1, 1) for _ in range(2)])
        with torch.no_grad():
            for p, b in zip(self.preds, self.boxes):
                p.weight = nn.Parameter(torch.cat((p.weight, torch.zeros(2, 1, 1, 1)), 1))
                b.weight.zero_()
                b.weight[0, 4] = 1.0

    def forward(self, x):
        f1 = self.stem(x)
        out = []
        for f, t, p, b in zip([f1, self.down(f1)], self.towers, self.preds, self.boxes):
            h = torch.relu(t(f))
            out.append(torch.cat((p(h), b(h)), 1))
        return out

    def class_logits(self, raw):
        return [r[:, :2].unsqueeze(1) for r in raw]

    def box_outputs(self, raw):
        return [r[:, 2:].unsqueeze(1) for r in raw]


def test_with_boxes_scores_the_channels_that_place_the_boxes() -> None:
    torch.manual_seed(0)
    model = ToyBoxDetector().eval()
    data = [torch.rand(2, 3, 8, 8) for _ in range(2)]
    groups = detprune.groups(model, data[0][:1])
    scores = {}
    for with_boxes in (False, True):
        crit = get_criterion("attribution", classes=[0], with_boxes=with_boxes, reduction="mean_abs", progress=False)
        crit.prepare(model, groups, data=data)
        scores[with_boxes] = _tower_scores(crit, groups)
    for level in range(2):
        assert scores[False][level][4] == 0 and scores[True][level][4] > 0  # the box-only channel
        assert np.all(scores[True][level][2:4] == 0)  # class-1 channels: still nothing
    masked_out = get_criterion("attribution", classes=[0], with_boxes=True, tau=0.999, progress=False)
    with pytest.warns(UserWarning, match="no class score passed"):  # boxes count only where a class passes the mask
        masked_out.prepare(model, groups, data=data)
    assert all(np.all(s == 0) for s in _tower_scores(masked_out, groups))
    with pytest.raises(ValueError, match="box outputs"):
        crit.target([torch.zeros(1, 3, 4, 4)], model.class_logits, None, (8, 8),
                    boxes_fn=lambda raw: [torch.zeros(1, 1, 1, 2, 2)])
    with pytest.raises(ValueError, match="box-output layout"):
        default_boxes_fn(ToyDetector())


def test_builtin_and_ultralytics_box_outputs_are_the_decoded_distances() -> None:
    from detprune.detection.models import build_model
    from detprune.detection.models.box_coder import dfl_expectation

    model = build_model("yolov8n", num_classes=2).eval()
    raw = model(torch.rand(1, 3, 64, 64))
    boxes = default_boxes_fn(model)(raw)
    assert [tuple(b.shape) for b in boxes] == [(1, 1, 4, 8, 8), (1, 1, 4, 4, 4), (1, 1, 4, 2, 2)]
    cell = raw[0][0, :64, 3, 5]
    assert torch.allclose(boxes[0][0, 0, :, 3, 5], dfl_expectation(cell, 16))
    tiny = build_model("yolov3-tiny", num_classes=2).eval()
    traw = tiny(torch.rand(1, 3, 64, 64))
    assert torch.equal(default_boxes_fn(tiny)(traw)[0][:, 1], traw[0][:, 7:12])  # anchor 1: tx, ty, tw, th, obj

    feats = [torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2)]
    flat = torch.randn(1, 64, 20)
    out = ultralytics_boxes({"boxes": flat, "scores": torch.rand(1, 3, 20), "feats": feats}, reg_max=16)
    assert [tuple(o.shape) for o in out] == [(1, 1, 4, 4, 4), (1, 1, 4, 2, 2)]
    assert torch.allclose(out[1][0, 0, :, 1, 0], dfl_expectation(flat[0, :, 18], 16))
    legacy = ultralytics_boxes([flat[..., :16].unflatten(-1, (4, 4))], reg_max=16)
    assert torch.allclose(legacy[0], out[0])
