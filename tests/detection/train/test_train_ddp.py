"""DDP smoke: two gloo processes under torchrun fine-tune the toy detector on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detprune.detection.train import DistContext, distributed_loader, init_distributed, load_checkpoint
from detprune.detection.train.ddp_smoke import state_hash
from detprune.detection.train.toy import ToyDetector, toy_loader


def test_torchrun_two_gloo_ranks(tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
        "-m", "detprune.detection.train.ddp_smoke", "--run-dir", str(run_dir), "--epochs", "2",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    reports = [json.loads((run_dir / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert [r["iters_per_epoch"] for r in reports] == [2, 2]  # 16 samples / 2 ranks / batch 4: sharded
    assert reports[0]["state_sha256"] == reports[1]["state_sha256"]  # ranks ended bit-identical

    ckpt = load_checkpoint(run_dir / "last.pt")  # weights_only=True
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert state_hash(ckpt["ema"]["module"]) == reports[0]["state_sha256"]  # the model returned is the EMA
    model = ToyDetector(**ckpt["spec"])
    model.load_state_dict(ckpt["model"])
    assert (run_dir / "results.csv").read_text().count("\n") == 3
    assert not list(run_dir.glob(".*.tmp"))


def test_single_process_context_and_loader_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed("cpu")
    assert ctx == DistContext(device=torch.device("cpu")) and ctx.is_main and not ctx.distributed
    loader = toy_loader(n=10, batch_size=3, shuffle=True)
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 2)
    monkeypatch.setattr(dist, "get_rank", lambda *a, **k: 1)
    monkeypatch.setattr(dist, "is_available", lambda: True)
    sharded = distributed_loader(loader, seed=5)
    assert isinstance(sharded.sampler, DistributedSampler)
    assert sharded.sampler.shuffle and sharded.sampler.seed == 5 and sharded.sampler.rank == 1
    assert len(sharded) == 2 and sharded.collate_fn is loader.collate_fn
