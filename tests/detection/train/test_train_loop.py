"""fit(): overfitting, exact resume, checkpoints, CSV, EMA hand-off to validation."""

import csv
import importlib.util
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from detprune.detection.train import TrainConfig, fit, load_checkpoint, seed_everything
from detprune.detection.train.toy import ToyAdapter, ToyBoxes, ToyDetector, collate


pytestmark = pytest.mark.usefixtures("one_thread")


def _adapter(seed: int = 0, dropout: float = 0.1) -> ToyAdapter:
    seed_everything(seed)
    return ToyAdapter(ToyDetector(num_classes=3, dropout=dropout))


def _loader(crash_at: int | None = None, generator: bool = False) -> DataLoader:
    """Shuffled toy loader; ``crash_at`` simulates a kill when that many batches were drawn."""
    count = {"n": 0}

    def collate_or_die(batch):
        count["n"] += 1
        if crash_at is not None and count["n"] > crash_at:
            raise KeyboardInterrupt("simulated kill")
        return collate(batch)

    g = torch.Generator().manual_seed(7) if generator else None
    return DataLoader(ToyBoxes(12, 32), batch_size=4, shuffle=True, collate_fn=collate_or_die, generator=g)


def _val(adapter: ToyAdapter) -> dict[str, float]:
    images = torch.stack([ToyBoxes(12, 32)[i][0] for i in range(4)])
    return {"map": float(torch.cat([p["scores"] for p in adapter.predict(images)]).mean())}


CFG = dict(lr=0.05, warmup_epochs=0.5, progress=False, seed=3)


def test_overfit_loss_decreases(tmp_path: Path) -> None:
    adapter = _adapter(dropout=0.0)
    loader = DataLoader(ToyBoxes(4, 32), batch_size=4, collate_fn=collate)
    result = fit(
        adapter, loader, 30, cfg=TrainConfig(lr=0.1, warmup_epochs=1, ema=False, progress=False), run_dir=tmp_path
    )
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1]["cls"] < result.history[0]["cls"]


@pytest.mark.parametrize("generator", [False, True])
def test_resume_after_kill_is_exact(tmp_path: Path, generator: bool) -> None:
    epochs, iters = 3, 3
    straight = _adapter()
    fit(straight, _loader(generator=generator), epochs, _val, cfg=TrainConfig(**CFG), run_dir=tmp_path / "a")

    killed = _adapter()
    with pytest.raises(KeyboardInterrupt):  # dies in the middle of epoch 2
        fit(
            killed,
            _loader(crash_at=iters + 2, generator=generator),
            epochs,
            _val,
            cfg=TrainConfig(**CFG),
            run_dir=tmp_path / "b",
        )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1

    resumed = _adapter(seed=99)  # different init: everything must come from the checkpoint
    result = fit(
        resumed, _loader(generator=generator), epochs, _val, cfg=TrainConfig(**CFG), run_dir=tmp_path / "b", resume=True
    )
    assert [row["epoch"] for row in result.history] == [1, 2, 3]

    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    ca, cb = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    assert ca["optimizer"]["state"].keys() == cb["optimizer"]["state"].keys()
    for k, s in ca["optimizer"]["state"].items():
        assert torch.equal(s["momentum_buffer"], cb["optimizer"]["state"][k]["momentum_buffer"])
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"] == epochs * iters
    assert ca["history"][-1]["loss"] == cb["history"][-1]["loss"]


def test_seeded_runs_reproduce_and_seed_matters(tmp_path: Path) -> None:
    states = []
    for i, seed in enumerate([3, 3, 4]):
        adapter = _adapter()  # same init each time: only cfg.seed (data order, dropout) varies
        fit(adapter, _loader(), 2, cfg=TrainConfig(**{**CFG, "seed": seed}), run_dir=tmp_path / str(i))
        states.append(adapter.model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert any(not torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_checkpoints_csv_and_best(tmp_path: Path) -> None:
    metrics = iter([0.2, 0.5, 0.3])
    seen_models = []

    def val_fn(adapter: ToyAdapter) -> dict[str, float]:
        seen_models.append(adapter.model)
        return {"map": next(metrics), "map50": 0.9}

    adapter = _adapter()
    raw_model = adapter.model
    result = fit(adapter, _loader(), 3, val_fn, cfg=TrainConfig(**CFG, ema_to_model=False), run_dir=tmp_path)

    # validation sees the EMA copy, and the adapter gets its own model back
    assert all(m is not raw_model and not m.training for m in seen_models)
    assert adapter.model is raw_model
    assert result.best_epoch == 2 and result.best_metric == pytest.approx(0.5)

    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    assert last["epoch"] == 3 and best["epoch"] == 2 and best["best_metric"] == pytest.approx(0.5)
    assert set(last) >= {"model", "optimizer", "scheduler", "ema", "epoch", "config", "rng", "history"}
    assert TrainConfig.from_dict(last["config"]) == TrainConfig(**CFG, ema_to_model=False)
    # EMA differs from the raw weights but tracks them
    raw_w, ema_w = last["model"]["head.weight"], last["ema"]["module"]["head.weight"]
    assert not torch.equal(raw_w, ema_w)
    init_w = _adapter().model.state_dict()["head.weight"]
    assert (ema_w - raw_w).norm() < (init_w - raw_w).norm()
    # state dicts only: a freshly built model loads them
    fresh = ToyDetector(**last["spec"])
    fresh.load_state_dict(last["ema"]["module"])

    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == ["epoch", "lr", "box", "cls", "loss", "map", "map50", "seconds"]
    assert float(rows[1]["map"]) == pytest.approx(0.5)
    assert all(float(r["seconds"]) >= 0 and float(r["lr"]) > 0 for r in rows)
    assert float(rows[0]["loss"]) == pytest.approx(float(rows[0]["box"]) + float(rows[0]["cls"]), rel=1e-5)


def test_ema_to_model_and_resume_of_finished_run(tmp_path: Path) -> None:
    adapter = _adapter()
    fit(adapter, _loader(), 2, cfg=TrainConfig(**CFG), run_dir=tmp_path)
    ema_state = load_checkpoint(tmp_path / "last.pt")["ema"]["module"]
    for k, v in adapter.model.state_dict().items():
        assert torch.equal(v, ema_state[k])
    again = _adapter(seed=5)
    result = fit(again, _loader(), 2, cfg=TrainConfig(**CFG), run_dir=tmp_path, resume=True)
    assert len(result.history) == 2  # nothing left to do
    assert torch.equal(again.model.head.weight, adapter.model.head.weight)


def test_bad_metric_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="cfg.metric"):
        fit(_adapter(), _loader(), 1, lambda a: {"ap": 1.0}, cfg=TrainConfig(**CFG), run_dir=tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
def test_tensorboard_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="tensorboard"):
        fit(_adapter(), _loader(), 1, cfg=TrainConfig(**CFG, tensorboard=True), run_dir=tmp_path)


def test_torchvision_ssdlite_overfits(tmp_path: Path) -> None:
    from detprune.detection.adapters import TorchvisionAdapter
    from detprune.detection.types import total_loss

    seed_everything(0)
    adapter = TorchvisionAdapter.build("ssdlite320_mobilenet_v3_large", 3, size=64)
    data = ToyBoxes(2, 64)
    images, targets = collate([data[0], data[1]])
    with torch.no_grad():
        before = total_loss(adapter.loss(images, targets)).item()
    loader = DataLoader(Subset(data, [0, 1] * 12), batch_size=2, collate_fn=collate)  # one batch, 12 steps
    cfg = TrainConfig(lr=0.01, warmup_epochs=0, ema=False, progress=False)
    result = fit(adapter, loader, 1, cfg=cfg, run_dir=tmp_path)
    with torch.no_grad():
        after = total_loss(adapter.loss(images, targets)).item()
    assert after < 0.75 * before
    assert set(result.history[0]) >= {"bbox_regression", "classification", "loss"}
