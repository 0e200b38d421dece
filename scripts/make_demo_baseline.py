"""Produce the demo's shipped baseline: ``src/detprune/pipeline/assets/demo_baseline.safetensors``.

Trains the built-in YOLOv8-style detector at width 0.125 (``detprune.pipeline.baseline``) from
scratch on the built-in synthetic orchard scenes (no download), keeps the best EMA weights by
validation mAP50-95, and writes them in float16 (< 2 MB) with a JSON provenance file next to it.

    uv run python scripts/make_demo_baseline.py                 # the shipped recipe (~1 h on 2 busy cores)
    uv run python scripts/make_demo_baseline.py --epochs 1 --count 64 --out /tmp/b.safetensors  # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import detprune
from detprune.detection.data import build_dataset, collate_fn
from detprune.detection.evaluate import evaluate
from detprune.detection.models import BuiltinAdapter, build_model
from detprune.detection.train import TrainConfig, fit, seed_everything
from detprune.pipeline.baseline import BASELINE_IMG_SIZE, BASELINE_MODEL, BASELINE_PATH, DATA_SEED
from detprune.pipeline.threads import auto_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="synthetic training images")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--val-images", type=int, default=100)
    ap.add_argument("--val-interval", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=BASELINE_PATH)
    args = ap.parse_args()

    threads = auto_threads()
    torch.set_num_threads(threads)
    spec = f"synthetic:{args.count}"
    train = build_dataset(spec, "train", img_size=BASELINE_IMG_SIZE, augment=True, mosaic=0.5, seed=DATA_SEED)
    val = build_dataset(spec, "val", img_size=BASELINE_IMG_SIZE, seed=DATA_SEED)
    val = torch.utils.data.Subset(val, range(min(args.val_images, len(val))))
    seed_everything(args.seed)
    model = build_model(num_classes=len(train.names), names=train.names, **BASELINE_MODEL)
    adapter = BuiltinAdapter(model)
    g = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, collate_fn=collate_fn, generator=g,
                        num_workers=1, persistent_workers=True)
    val_loader = DataLoader(val, batch_size=32, collate_fn=collate_fn)

    def val_fn(a: BuiltinAdapter) -> dict[str, float]:
        m = evaluate(a, val_loader, progress=False)
        return {"map": m.map, "map50": m.map50, "f1": m.f1}

    cfg = TrainConfig(optimizer="adamw", lr=args.lr, weight_decay=5e-4, warmup_epochs=1.0, ema_tau=500.0,
                      val_interval=args.val_interval, seed=args.seed, metric="map")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="detprune-baseline-") as run_dir:
        result = fit(adapter, loader, args.epochs, val_fn, cfg=cfg, run_dir=run_dir)
        best = torch.load(Path(run_dir) / "best.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(best["ema"]["module"] if best.get("ema") else best["model"])
    final = val_fn(adapter)
    detprune.save(model.half(), args.out)
    info = {
        "model": {**BASELINE_MODEL, "num_classes": len(train.names), "names": train.names},
        "img_size": BASELINE_IMG_SIZE, "data": spec, "data_seed": DATA_SEED, "epochs": args.epochs,
        "batch": args.batch, "optimizer": "adamw", "lr": args.lr, "mosaic": 0.5, "seed": args.seed,
        "best_epoch": result.best_epoch, "val_images": len(val), "val_metrics": final,
        "train_seconds": round(time.time() - t0), "threads": threads, "dtype": "float16",
        "params": detprune.api.count_params(model),
    }
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, args.out.with_suffix(".json"))
    print(json.dumps(info, indent=2))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
