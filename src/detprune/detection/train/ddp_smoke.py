"""DDP smoke run: fine-tune the toy detector on generated tensors under ``torchrun``.

    python -m torch.distributed.run --nproc_per_node=2 --standalone \\
        -m detprune.detection.train.ddp_smoke --run-dir /tmp/ddp

Each rank writes ``rank<R>.json`` with a SHA-256 of its final model state, so a test can check
that all ranks ended bit-identical and that rank 0's ``last.pt`` holds those weights. Works in a
single process too (then it is a plain ``fit``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from detprune.detection.train.config import TrainConfig
from detprune.detection.train.loop import fit
from detprune.detection.train.seed import seed_everything
from detprune.detection.train.toy import ToyAdapter, ToyDetector, toy_loader


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names and raw bytes of a state dict, in key order."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    seed_everything(1234 + rank)  # deliberately different inits: DDP must broadcast rank 0's weights
    model: nn.Module = ToyDetector(num_classes=3, dropout=0.1)
    adapter = ToyAdapter(model)
    loader = toy_loader(args.samples, args.size, args.batch_size, shuffle=True)

    def val_fn(a: ToyAdapter) -> dict[str, float]:
        images = torch.stack([loader.dataset[i][0] for i in range(4)])
        return {"map": float(torch.cat([p["scores"] for p in a.predict(images)]).mean())}

    cfg = TrainConfig(lr=0.05, warmup_epochs=0.5, progress=False, seed=0)
    result = fit(adapter, loader, args.epochs, val_fn, cfg=cfg, run_dir=args.run_dir, resume=args.resume)
    report = {
        "rank": rank,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "iters_per_epoch": result.iters_per_epoch,
        "state_sha256": state_hash(adapter.model.state_dict()),
        "spec": model.spec,
    }
    args.run_dir.mkdir(parents=True, exist_ok=True)
    (args.run_dir / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
