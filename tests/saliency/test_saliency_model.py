"""The narrow VGG16 saliency network: shape, exact channel pruning, save/load, training, wrg at 60 %."""

from __future__ import annotations

import copy

import pytest
import torch

import detprune
from detprune.api import count_params
from detprune.graph.verify import check_equivalence, randomize_norm_stats
from detprune.io import load, save
from detprune.saliency import (
    SaliencyAdapter,
    build_saliency_model,
    collate,
    evaluate_saliency,
    saliency_loss_fn,
    saliency_train_config,
    train_saliency,
)
from detprune.saliency.prune import prune_to_param_fraction, removed_fraction
from detprune.saliency.synthetic import render_sample


pytestmark = pytest.mark.usefixtures("one_thread")


def _batches(n: int = 8, size: int = 32, batch: int = 4) -> list:
    samples = []
    for i in range(n):
        img, mask = render_sample(0, i, size)
        x = torch.from_numpy(img).permute(2, 0, 1).float() / 255
        samples.append((x, {"mask": torch.from_numpy(mask > 0).float()[None], "image_id": i}))
    return [collate(samples[i : i + batch]) for i in range(0, n, batch)]


def test_forward_shape_any_size():
    torch.manual_seed(0)
    model = build_saliency_model(width=0.25).eval()
    for h, w in ((32, 32), (40, 56)):  # 40 and 56 are not multiples of 16: skips are matched by interpolation
        assert model(torch.rand(2, 3, h, w)).shape == (2, 1, h, w)
    assert model.spec == {"name": "vgg16", "width": 0.25}
    with pytest.raises(ValueError):
        build_saliency_model("resnet50")


def test_groups_prune_exactly():
    torch.manual_seed(0)
    model = randomize_norm_stats(build_saliency_model(width=0.25))
    groups = detprune.groups(model, torch.rand(1, 3, 32, 32))
    prunable = [g for g in groups if g.prunable]
    assert len(prunable) >= 15 and not any(g.inexact for g in prunable)
    err, removed = check_equivalence(model, torch.rand(2, 3, 32, 32), 0.5, groups=groups)
    assert removed > 0 and err < 1e-5


def test_saved_pruned_model_rebuilds_from_spec(tmp_path):
    torch.manual_seed(0)
    model = build_saliency_model(width=0.25).eval()
    detprune.prune(model, torch.rand(1, 3, 32, 32), criterion="l1", ratio=0.4, measure=False)
    path = save(model, tmp_path / "sal.safetensors")
    again = load(path).eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(again(x), model(x)) and count_params(again) == count_params(model)


def test_training_steps_reduce_loss():
    torch.manual_seed(0)
    adapter = SaliencyAdapter(build_saliency_model(width=0.25))
    images, targets = _batches(4)[0]
    opt = torch.optim.AdamW(adapter.model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = sum(adapter.loss(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    probs = adapter.predict(images)
    assert probs.shape == (4, 1, 32, 32) and 0 <= probs.min() and probs.max() <= 1


def test_fit_run_folder_and_metrics(tmp_path):
    torch.manual_seed(0)
    batches = _batches(8)
    cfg = saliency_train_config(progress=False, metric="map")  # a detector metric is replaced by "sm"
    model, result = train_saliency(build_saliency_model(width=0.25), batches, 1, val_data=batches, cfg=cfg,
                                   run_dir=tmp_path / "run", save_to=tmp_path / "model.safetensors")
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "best.pt").is_file()
    assert (tmp_path / "run" / "results.csv").is_file() and (tmp_path / "model.safetensors").is_file()
    assert {"loss", "bce", "iou", "sm", "mae"} <= set(result.history[0])
    metrics = evaluate_saliency(tmp_path / "model.safetensors", batches)
    assert metrics.images == 8 and 0 <= metrics.sm <= 1


def test_param_fraction_bisection():
    torch.manual_seed(0)
    model = build_saliency_model(width=0.25)
    x = torch.rand(1, 3, 32, 32)
    assert removed_fraction(model, x, 0.0) == 0.0
    assert 0 < removed_fraction(model, x, 0.3) < removed_fraction(model, x, 0.6)
    report = prune_to_param_fraction(copy.deepcopy(model), x, 0.5, "l1", tol=0.01)
    assert report.params_after / report.params_before == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="out of reach"):
        prune_to_param_fraction(model, x, 0.99, "l1", max_ratio=0.3)


def test_wrg_prunes_60_percent_end_to_end():
    torch.manual_seed(0)
    model = build_saliency_model(width=0.25)
    data = _batches(8)
    x = torch.rand(1, 3, 32, 32)
    report = prune_to_param_fraction(model, x, 0.6, "wrg", data=data, loss_fn=saliency_loss_fn, progress=False)
    assert report.criterion == "wrg"
    assert 1 - report.params_after / report.params_before == pytest.approx(0.6, abs=0.015)
    assert count_params(model) == report.params_after
    images, targets = data[0]
    loss = saliency_loss_fn(model, (images, targets))  # the pruned model still trains
    loss.backward()
    assert torch.isfinite(loss)


def test_prune_saliency_from_a_dataset_directory(tmp_path):
    from detprune.saliency import prune_saliency
    from detprune.saliency.synthetic import synthetic_saliency

    torch.manual_seed(0)
    root = synthetic_saliency(8, "train", size=32, cache_dir=tmp_path)
    saved = save(build_saliency_model(width=0.25), tmp_path / "base.safetensors")
    model, report = prune_saliency(saved, root, "wrg", 0.6, batch_size=4, max_batches=2, progress=False,
                                   save_to=tmp_path / "pruned.safetensors")
    assert report.criterion == "wrg" and count_params(model) == report.params_after
    assert count_params(load(tmp_path / "pruned.safetensors")) == report.params_after
