"""Pipeline helpers: criterion keyword routing, threads, models and adapters."""

from __future__ import annotations

import pytest
import torch

from detprune.criteria import CRITERIA
from detprune.pipeline import criteria as crit
from detprune.pipeline.models import check_model_spec, example_input, load_model, make_adapter, model_kind
from detprune.pipeline.threads import resolve_threads


def test_criterion_kwargs_only_offers_what_a_criterion_takes() -> None:
    adapter = object()
    assert crit.criterion_kwargs("l1", adapter, 3, {}) == {}
    assert crit.criterion_kwargs("random", adapter, 3, {"seed": 4}) == {"seed": 4}
    data_driven = [n for n in sorted(CRITERIA) if crit.needs_data(n)]
    if not data_driven:
        pytest.skip("no data-driven criterion registered")
    kw = crit.criterion_kwargs(data_driven[0], adapter, 3, {})
    assert kw["max_batches"] == 3 and kw["adapter"] is adapter


def test_threads() -> None:
    assert 1 <= resolve_threads("auto") <= (__import__("os").cpu_count() or 1)
    assert resolve_threads(3) == 3
    with pytest.raises(ValueError):
        resolve_threads(0)


def test_adapter_factory_builtin_and_torchvision() -> None:
    from detprune.detection.adapters import TorchvisionAdapter
    from detprune.detection.models import BuiltinAdapter

    m = load_model("yolov8n", names=["a", "b"])
    assert isinstance(make_adapter(m), BuiltinAdapter) and m.names == ["a", "b"] and m.num_classes == 2
    tv = load_model("torchvision:ssdlite320_mobilenet_v3_large", num_classes=3)
    assert model_kind(tv) == "torchvision" and isinstance(make_adapter(tv), TorchvisionAdapter)
    assert isinstance(example_input(tv, 64), list)


def test_ultralytics_eval_adapter_predicts() -> None:
    pytest.importorskip("ultralytics")
    # seeded: with some random weights the raw boxes all clip to the image and class-wise NMS leaves 3 (< max_det)
    torch.manual_seed(0)
    m = load_model("ultralytics:yolov8n.yaml", num_classes=3, names=["a", "b", "c"])
    adapter = make_adapter(m)
    assert adapter.num_classes == 3 and m.names == {0: "a", 1: "b", 2: "c"}
    preds = adapter.predict(torch.rand(2, 3, 64, 80), conf_thres=0.0, max_det=5)
    assert len(preds) == 2 and preds[0]["boxes"].shape == (5, 4) and int(preds[0]["labels"].max()) < 3
    assert float(preds[0]["boxes"][:, 2].max()) <= 80 and float(preds[0]["boxes"][:, 3].max()) <= 64


@pytest.mark.parametrize("spec, words", [("nope", "unknown model"), ("x.safetensors", "does not exist"),
                                         ("weird:thing", "unknown model source")])
def test_check_model_spec(spec: str, words: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=words):
        check_model_spec(spec)


def test_ultralytics_training_without_the_adapter_module_is_unsupported(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path) -> None:
    pytest.importorskip("ultralytics")
    from detprune.pipeline import steps
    from detprune.pipeline.models import UnsupportedError
    from detprune.pipeline.recipe import TrainSpec

    monkeypatch.setattr(steps, "ultralytics_adapter_module", lambda: None)
    model = load_model("ultralytics:yolov8n.yaml", num_classes=6)
    with pytest.raises(UnsupportedError, match="not supported yet"):
        steps.train(model, "synthetic:8", TrainSpec(epochs=1), img_size=64, run_dir=tmp_path)


def test_saliency_report_note_says_how_latency_was_measured() -> None:
    """Saliency runs are timed by pipeline.steps.bench too (minimum over interleaved side-by-side rounds),
    not "the median batch-1 time" the note used to say."""
    from detprune.pipeline.saliency_report import _explanation

    text = _explanation({"saliency_eval": {"images": 8, "split": "test"}, "img_size": 64})
    assert "median" not in text and "fastest batch-1 time on this machine, all models timed side by side" in text
