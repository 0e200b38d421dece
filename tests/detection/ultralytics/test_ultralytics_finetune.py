"""A pruned YOLOv8n fine-tuned by Ultralytics' own trainer on COCO128 stays pruned, end to end.

One short training run (1 epoch, half of COCO128 at 160 px) is shared by the tests; the checkpoint
is then loaded with ``ultralytics.YOLO`` in a fresh process and validated, run and exported there.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("ultralytics")

import detprune  # noqa: E402
from detprune.detection.adapters.ultralytics import (  # noqa: E402
    PrunedDetectionTrainer,
    finetune_ultralytics,
    load_ultralytics,
    no_downloads,
)

REPO = Path(__file__).resolve().parents[3]
COCO128 = REPO.parent / "shared" / "data" / "coco128"
IMGSZ, BATCH = 160, 16
TRAIN = {"workers": 0, "fraction": 0.5, "seed": 0, "deterministic": False}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Keep Ultralytics' settings and its network habits out of the repo and off the network."""
    cfg = tmp_path_factory.mktemp("yolo_config")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"YOLO_CONFIG_DIR": str(cfg), "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False"}.items():
            mp.setenv(key, value)  # in effect for subprocesses, and here if Ultralytics is not imported yet
        yield dict(os.environ)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def coco128(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """COCO128's data.yaml with an absolute ``path`` to a symlink mirror of the shared dataset.

    Ultralytics writes ``labels/<split>.cache`` beside the label files, and as root it would write
    into the read-only shared copy; per-file symlinks keep the cache in the mirror.
    """
    if not (COCO128 / "data.yaml").is_file():
        pytest.skip(f"COCO128 not available: {COCO128} is absent (see shared/README.md)")
    shared_before = _tree(COCO128)
    mirror = tmp_path_factory.mktemp("coco128")
    for kind in ("images", "labels"):
        for split in ("train2017", "val2017"):
            (mirror / kind / split).mkdir(parents=True)
            for f in (COCO128 / kind / split).iterdir():
                (mirror / kind / split / f.name).symlink_to(f)
    spec = yaml.safe_load((COCO128 / "data.yaml").read_text())
    spec["path"] = str(mirror)
    (mirror / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    yield mirror / "data.yaml"
    assert _tree(COCO128) == shared_before, "the shared dataset was written to"


@pytest.fixture(scope="module")
def pruned() -> tuple:
    torch.manual_seed(0)
    full = load_ultralytics("yolov8n.yaml")
    model = copy.deepcopy(full)
    detprune.prune(model, torch.rand(1, 3, 224, 224), criterion="l1", ratio=0.4, measure=False)
    return full, model


@pytest.fixture(scope="module")
def finetuned(env, coco128: Path, pruned, tmp_path_factory: pytest.TempPathFactory) -> dict:
    _, model = pruned
    before = {p.name for p in REPO.iterdir()}
    run_dir = tmp_path_factory.mktemp("runs") / "pruned"
    start = time.perf_counter()
    weights = finetune_ultralytics(model, coco128, epochs=1, imgsz=IMGSZ, batch=BATCH, run_dir=run_dir, **TRAIN)
    seconds = time.perf_counter() - start
    assert {p.name for p in REPO.iterdir()} == before, "Ultralytics wrote into the repository"
    return {"weights": weights, "run_dir": run_dir, "seconds": seconds}


def test_load_ultralytics_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_ultralytics("yolov8n.pt")  # an official asset name Ultralytics would fetch
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_ultralytics(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="URLs"):
        load_ultralytics("https://example.com/yolov8n.pt")
    with pytest.raises(ValueError, match="expected a model config"):
        load_ultralytics("yolov8n")
    with pytest.raises(FileNotFoundError):
        load_ultralytics(tmp_path / "missing.yaml")
    with pytest.raises(TypeError, match="only detection"):
        load_ultralytics("yolov8n-seg.yaml")
    model = load_ultralytics("yolov8n.yaml")
    assert model.model[-1].nc == 80 and n_params(model) > 3_000_000


def test_stock_trainer_rebuilds_full_width_ours_does_not(env, coco128: Path, pruned, tmp_path: Path) -> None:
    """The failure this module exists for: ``YOLO.train``'s ``get_model(cfg=yaml, weights=module)``."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    full, model = pruned
    args = {"model": "yolov8n.yaml", "data": str(coco128), "project": str(tmp_path), "name": "t", "plots": False}
    with no_downloads():
        stock = DetectionTrainer(overrides=args).get_model(cfg=model.yaml, weights=model, verbose=False)
        ours = PrunedDetectionTrainer(overrides=args).get_model(cfg=model.yaml, weights=model, verbose=False)
    assert n_params(stock) == n_params(full) != n_params(model)  # silently back to full width
    assert ours is model


def test_finetune_keeps_pruned_architecture(finetuned: dict, pruned) -> None:
    from ultralytics.nn.tasks import load_checkpoint

    full, model = pruned
    weights: Path = finetuned["weights"]
    assert weights.parent == finetuned["run_dir"] / "weights" and weights.name in {"best.pt", "last.pt"}
    saved, ckpt = load_checkpoint(weights)
    assert n_params(saved) == n_params(model) < 0.7 * n_params(full)
    assert ckpt["train_args"]["epochs"] == 1 and ckpt["train_args"]["imgsz"] == IMGSZ
    for name, tensor in saved.state_dict().items():
        assert tensor.shape == model.state_dict()[name].shape, name
    # the weights moved (trained), and the caller's module was left alone
    assert not torch.equal(saved.model[0].conv.weight, model.model[0].conv.weight)
    again = load_ultralytics(weights)  # a local .pt: loads the pruned module, trainable again
    assert n_params(again) == n_params(model) and all(p.requires_grad for p in again.parameters())
    print(f"\nfine-tune: {finetuned['seconds']:.1f}s, params {n_params(full):,} -> {n_params(saved):,}")


FRESH = """
import json, sys
from ultralytics import YOLO
weights, data, image, imgsz, out = sys.argv[1:6]
yolo = YOLO(weights)
assert "detprune" not in sys.modules  # the checkpoint needs nothing from detprune
report = {"params": sum(p.numel() for p in yolo.model.parameters()),
          "first_conv": yolo.model.model[0].conv.out_channels,
          "c2f_c": [m.c for m in yolo.model.modules() if type(m).__name__ == "C2f"]}
from detprune.detection.adapters.ultralytics import no_downloads
with no_downloads():
    metrics = yolo.val(data=data, imgsz=int(imgsz), batch=16, workers=0, plots=False, project=out, name="val")
    results = yolo.predict(image, imgsz=int(imgsz), save=False, verbose=False)
    onnx_file = yolo.export(format="onnx", imgsz=int(imgsz), simplify=False, dynamic=False)
report.update(map50=float(metrics.box.map50), map=float(metrics.box.map), n_results=len(results),
              boxes=len(results[0].boxes), onnx=str(onnx_file))
print("REPORT " + json.dumps(report))
"""


def test_fresh_process_val_predict_export(finetuned: dict, pruned, coco128: Path, env: dict, tmp_path: Path) -> None:
    import onnx
    from onnx import numpy_helper

    _, model = pruned
    image = sorted((COCO128 / "images" / "val2017").glob("*.jpg"))[0]
    proc = subprocess.run([sys.executable, "-c", FRESH, str(finetuned["weights"]), str(coco128), str(image),
                           str(IMGSZ), str(tmp_path)],
                          env={**env, "ULTRALYTICS_SAFE_LOAD": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))[len("REPORT "):])
    print(f"\nfresh process: {report}")
    assert report["params"] == n_params(model)
    first = model.model[0].conv.out_channels
    assert report["first_conv"] == first < 16  # yolov8n's stem has 16
    assert report["c2f_c"] == [m.c for m in model.modules() if type(m).__name__ == "C2f"]
    assert report["n_results"] == 1 and 0.0 <= report["map50"] <= 1.0
    # the ONNX graph carries the pruned widths: the stem conv's weight initializer is (first, 3, 3, 3)
    onnx_path = Path(report["onnx"])
    assert onnx_path.is_file()
    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv_weights = [inits[n.input[1]] for n in graph.node if n.op_type == "Conv" and n.input[1] in inits]
    stems = [w.shape for w in conv_weights if w.ndim == 4 and w.shape[1] == 3]
    assert stems == [(first, 3, 3, 3)]
    fused_convs = sum(w.size for w in conv_weights)
    assert fused_convs < 0.7 * 3_157_200  # nowhere near the full yolov8n


def test_yolo_train_route_with_pruned_trainer(finetuned: dict, pruned, coco128: Path, tmp_path: Path) -> None:
    """``YOLO("pruned.pt").train(trainer=PrunedDetectionTrainer)`` keeps training the pruned module."""
    from ultralytics import YOLO

    _, model = pruned
    yolo = YOLO(str(finetuned["weights"]))
    with no_downloads():
        yolo.train(trainer=PrunedDetectionTrainer, data=str(coco128), epochs=1, imgsz=IMGSZ, batch=BATCH,
                   project=str(tmp_path), name="again", amp=False, plots=False, **{**TRAIN, "fraction": 0.25})
    assert n_params(yolo.trainer.model) == n_params(model)
    assert n_params(yolo.model) == n_params(model)  # the reloaded best.pt of the second run
    assert yolo.model.model[0].conv.out_channels == model.model[0].conv.out_channels

    # a trainer given the checkpoint path builds nothing either (setup_model -> get_model(weights=module))
    args = {"model": str(finetuned["weights"]), "data": str(coco128), "project": str(tmp_path), "name": "path"}
    with no_downloads():
        trainer = PrunedDetectionTrainer(overrides=args)
        trainer.setup_model()
    assert n_params(trainer.model) == n_params(model)
