"""Atomic, weights_only-safe checkpoints."""

from pathlib import Path

import pytest
import torch
from torch import nn

from detprune.detection.train import atomic_save, load_checkpoint, load_weights
from detprune.detection.train import checkpoint as ckpt_mod
from detprune.detection.train.checkpoint import check_safe


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def crashing_save(obj, f, *a, **k):  # writes garbage then dies, like a kill mid-write
        f.write(b"partial garbage")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(ckpt_mod.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # temp file cleaned up


def test_replace_is_the_commit_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.os, "replace", failing_replace)
    with pytest.raises(OSError):
        atomic_save({"epoch": 2}, path)
    assert load_checkpoint(path)["epoch"] == 1


def test_unsafe_content_rejected_before_writing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Linear"):
        atomic_save({"model": nn.Linear(2, 2)}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(TypeError):
        check_safe({"p": Path("a")})
    check_safe({"a": [1, 2.0, "s", None, (True, torch.zeros(1))], "b": {"c": torch.ones(2)}})


def test_load_weights_prefers_ema(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    raw = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    ema = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    atomic_save({"model": raw, "ema": {"module": ema, "updates": 1}}, tmp_path / "c.pt")
    load_weights(model, tmp_path / "c.pt")
    assert torch.equal(model.weight, torch.ones(2, 2))
    load_weights(model, tmp_path / "c.pt", ema=False)
    assert torch.equal(model.weight, torch.zeros(2, 2))
