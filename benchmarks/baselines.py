"""Train the built-in detectors from scratch on this CPU: the baselines the pruning benchmarks start from.

    uv run python benchmarks/baselines.py --quick                                   # pipeline check, ~1-2 min
    uv run python benchmarks/baselines.py --dataset bccd --model yolov8n --epochs 60 --img-size 416
    uv run python benchmarks/baselines.py --dataset bccd --model yolov3-tiny --epochs 40 --img-size 416
    uv run python benchmarks/baselines.py --dataset synthetic --model yolov8n --epochs 30 --img-size 320

Per run: train on ``train`` (augmentations: mosaic, HSV jitter, flip; mosaic switched off for the
last ``--close-mosaic`` epochs), SGD + warm-up + cosine, EMA, validation mAP50 on ``val`` every
``--val-interval`` epochs picks the best EMA weights, which are then scored on ``test``: mAP50,
mAP50-95 (COCO, faster-coco-eval), F1 at IoU 0.5 / score 0.25, params, MACs (batch 1 at
``--img-size``), torch batch-1 median latency and seconds per training epoch.

Outputs:

* the baseline model, ``detprune.save`` format: ``--out`` (default
  ``$DETPRUNE_CACHE/baselines/<dataset>-<model>-<img>.safetensors``, ``DETPRUNE_CACHE`` defaulting to
  ``~/.cache/detprune``), with a ``.json`` next to it (metrics, learning curve, command);
* the resumable training run (``last.pt``/``best.pt``/``results.csv``) in ``<out dir>/runs/<name>/``
  (``--resume`` continues it after a kill);
* a row in ``benchmarks/results/baselines.csv`` (one row per dataset/model/img-size/width, replaced
  when re-run), the learning curves in ``baselines_curves.csv`` / ``baselines_curves.png``, and
  ``baselines.md`` regenerated from them.

BCCD is read from ``../shared/data/bccd`` (``--data`` to override); the script exits with a clear
message when it is absent. The synthetic set is generated into ``$DETPRUNE_CACHE/synthetic``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from reproduce import tilde  # benchmarks/reproduce.py

# Measured on the shared 2-core machine (load average ~6): with OpenMP's default spin-waiting, 2 torch
# threads ran a yolov8n batch-8 forward+backward ~5x slower than 1 thread (~15 s vs ~3 s); passive
# waiting makes 2 threads as fast as 1. Must be set before torch initialises OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BCCD = REPO.parent / "shared" / "data" / "bccd"
RESULTS = REPO / "benchmarks" / "results"
KEY = ("dataset", "model", "width", "img_size")
COLUMNS = [
    "dataset", "model", "width", "depth", "img_size", "epochs", "epochs_done", "batch", "lr", "best_epoch",
    "val_map50", "test_map50", "test_map", "test_f1", "test_precision", "test_recall", "test_ap50_per_class",
    "params_m", "macs_g", "latency_ms", "latency_threads", "load", "s_per_epoch", "train_min", "checkpoint",
    "command", "note", "date",
]


def cache_dir() -> Path:
    from detprune.cache import cache_root

    return cache_root("baselines")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["bccd", "synthetic"], default="bccd")
    ap.add_argument("--data", type=Path, default=None, help=f"BCCD VOC root (default {DEFAULT_BCCD})")
    ap.add_argument("--synthetic-count", type=int, default=1000, help="synthetic training images (val/test: 1/4)")
    ap.add_argument("--model", default="yolov8n", help="built-in model name (yolov8n, yolov3-tiny, ...)")
    ap.add_argument("--width", type=float, default=None, help="width multiplier (default: the model's)")
    ap.add_argument("--depth", type=float, default=None, help="depth multiplier (default: the model's)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--img-size", type=int, default=416)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--weight-decay", type=float, default=None,
                    help="default 5e-4 * batch / 64 (Ultralytics' decay per 64 images, no accumulation here)")
    ap.add_argument("--warmup-epochs", type=float, default=None, help="default max(3 epochs, 100 iterations)")
    ap.add_argument("--ema-tau", type=float, default=None, help="EMA ramp in updates; default total_iters / 5")
    ap.add_argument("--mosaic", type=float, default=1.0, help="mosaic probability while it is on")
    ap.add_argument("--close-mosaic", type=int, default=None, help="last epochs without mosaic; default 15%%")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-interval", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="baseline .safetensors path")
    ap.add_argument("--results-dir", type=Path, default=None, help=f"default {RESULTS} ({'/tmp/...'} with --quick)")
    ap.add_argument("--resume", action="store_true", help="continue the run in <out dir>/runs/<name>")
    ap.add_argument("--eval-only", action="store_true", help="skip training: score the run's best.pt")
    ap.add_argument("--note", default="", help="free text shown under the results table")
    ap.add_argument("--progress", action="store_true", help="per-iteration progress bars")
    ap.add_argument("--quick", action="store_true",
                    help="tiny pipeline check: 16 train / 8 val / 8 test images, 2 epochs, 256 px, results in /tmp")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.img_size, args.val_interval = min(args.epochs, 2), min(args.img_size, 256), 1
        args.synthetic_count = min(args.synthetic_count, 32)
    return args


def run_name(args: argparse.Namespace) -> str:
    width = "" if args.width is None else f"-w{args.width:g}"
    return f"{args.dataset}-{args.model}{width}-{args.img_size}" + ("-quick" if args.quick else "")


def command_line(args: argparse.Namespace) -> str:
    """The one command that recreates this baseline (flags that differ from the defaults kept)."""
    parts = ["uv run python benchmarks/baselines.py", f"--dataset {args.dataset}", f"--model {args.model}"]
    if args.width is not None:
        parts.append(f"--width {args.width:g}")
    if args.depth is not None:
        parts.append(f"--depth {args.depth:g}")
    parts += [f"--epochs {args.epochs}", f"--img-size {args.img_size}"]
    defaults = parse_args([])
    for flag in ("batch", "lr", "weight_decay", "warmup_epochs", "ema_tau", "mosaic", "close_mosaic",
                 "val_interval", "seed", "synthetic_count"):
        if flag == "synthetic_count" and args.dataset != "synthetic":
            continue
        value = getattr(args, flag)
        if value != getattr(defaults, flag):
            parts.append(f"--{flag.replace('_', '-')} {value:g}" if isinstance(value, float) else
                         f"--{flag.replace('_', '-')} {value}")
    if args.quick:
        parts.append("--quick")
    if args.out is not None:  # else the command would overwrite the default baseline
        parts.append(f"--out {tilde(args.out)}")
    if args.results_dir is not None:  # else the record would land in the shared baselines table
        parts.append(f"--results-dir {args.results_dir}")
    return " ".join(parts)


class EpochLoader:
    """A DataLoader that switches mosaic off for the last ``close`` epochs (workers are re-forked each
    epoch, so they see the new setting). Exposes ``generator`` so ``fit`` saves/restores data order."""

    def __init__(self, loader: DataLoader, dataset, mosaic: float, close: int, epochs: int, start: int) -> None:
        self.loader, self.dataset, self.mosaic = loader, dataset, mosaic
        self.close, self.epochs, self.epoch = close, epochs, start
        self.generator = loader.generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.dataset.mosaic = 0.0 if self.epoch >= self.epochs - self.close else self.mosaic
        self.epoch += 1
        return iter(self.loader)


def datasets(args: argparse.Namespace):
    from detprune.detection.data import build_dataset

    if args.dataset == "bccd":
        root = args.data or DEFAULT_BCCD
        if not (root / "ImageSets" / "Main").is_dir():
            sys.exit(f"BCCD not found at {root} (see ../shared/README.md); pass --data <VOC root>")
        spec, names = root, ["RBC", "WBC", "Platelets"]
    else:
        spec, names = f"synthetic:{args.synthetic_count}", None
    kw = {"img_size": args.img_size, "names": names, "seed": 0}
    train = build_dataset(spec, "train", augment=True, mosaic=args.mosaic, **kw)
    val = build_dataset(spec, "val", **kw)
    test = build_dataset(spec, "test", **kw)
    return train, val, test


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    import detprune
    from detprune.deploy import count_macs, count_params, measure_latency
    from detprune.detection.data import collate_fn
    from detprune.detection.evaluate import evaluate
    from detprune.detection.models import BuiltinAdapter, build_model
    from detprune.detection.train import TrainConfig, fit, load_checkpoint, load_weights, seed_everything

    name = run_name(args)
    base = Path("/tmp/detprune_baselines_quick") if args.quick else cache_dir()
    out = args.out or base / f"{name}.safetensors"
    run_dir = out.parent / "runs" / out.stem
    results = args.results_dir or (base / "results" if args.quick else RESULTS)
    cmd = command_line(args)
    print(f"run {name}\n  command: {cmd}\n  run dir: {run_dir}\n  baseline: {out}", flush=True)

    train_ds, val_ds, test_ds = datasets(args)
    if args.quick:
        train_ds_used = Subset(train_ds, range(min(16, len(train_ds))))
        val_ds, test_ds = Subset(val_ds, range(min(8, len(val_ds)))), Subset(test_ds, range(min(8, len(test_ds))))
    else:
        train_ds_used = train_ds
    names = train_ds.names
    print(f"  data: train {len(train_ds_used)}, val {len(val_ds)}, test {len(test_ds)} images; classes {names}",
          flush=True)

    seed_everything(args.seed)
    model = build_model(args.model, num_classes=len(names), width=args.width, depth=args.depth, names=names)
    adapter = BuiltinAdapter(model)

    g = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(train_ds_used, batch_size=args.batch, shuffle=True, generator=g, collate_fn=collate_fn,
                        num_workers=args.workers, drop_last=len(train_ds_used) > args.batch)
    iters = len(loader)
    close = args.close_mosaic if args.close_mosaic is not None else round(0.15 * args.epochs)
    start = 0
    if args.resume and (run_dir / "last.pt").exists():
        start = int(load_checkpoint(run_dir / "last.pt")["epoch"])
    epoch_loader = EpochLoader(loader, train_ds, args.mosaic, close, args.epochs, start)

    def eval_loader(ds):
        return DataLoader(ds, batch_size=8, shuffle=False, collate_fn=collate_fn, num_workers=0)

    val_loader, test_loader = eval_loader(val_ds), eval_loader(test_ds)

    def val_fn(a) -> dict[str, float]:
        t0 = time.perf_counter()
        m = evaluate(a, val_loader, progress=False, names=names)
        print(f"  val: mAP50 {m.map50:.4f} mAP50-95 {m.map:.4f} F1 {m.f1:.3f} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        return {"map50": m.map50, "map": m.map, "f1": m.f1}

    warmup = args.warmup_epochs
    if warmup is None:  # Ultralytics: max(3 epochs, 100 iterations), here at most 30% of a short run
        warmup = min(max(3.0, 100 / iters), 0.3 * args.epochs)
    cfg = TrainConfig(
        lr=args.lr,
        weight_decay=args.weight_decay if args.weight_decay is not None else 5e-4 * args.batch / 64,
        warmup_epochs=warmup,
        ema_tau=args.ema_tau if args.ema_tau is not None else max(1.0, args.epochs * iters / 5),
        val_interval=args.val_interval,
        metric="map50",
        seed=args.seed,
        device="cpu",
        progress=args.progress,
    )
    if not args.eval_only:
        result = fit(adapter, epoch_loader, args.epochs, val_fn, cfg=cfg, run_dir=run_dir, resume=args.resume)
        history, best_epoch = result.history, result.best_epoch
    else:
        ckpt = load_checkpoint(run_dir / "last.pt")
        history, best_epoch = ckpt["history"], ckpt["best_epoch"]
    train_min = sum(h["seconds"] for h in history) / 60  # all epochs, across resumes, validation included

    best_path = run_dir / "best.pt"
    model = build_model(args.model, num_classes=len(names), width=args.width, depth=args.depth, names=names)
    load_weights(model, best_path if best_path.exists() else run_dir / "last.pt", ema=True)
    model.eval()
    adapter = BuiltinAdapter(model)
    detprune.save(model, out)

    print("scoring the best EMA weights on test ...", flush=True)
    m = evaluate(adapter, test_loader, progress=False, names=names, score_thres=0.25)
    x = torch.zeros(1, 3, args.img_size, args.img_size)
    lat = measure_latency(model, x, runtime="torch", warmup=10, runs=50, threads=args.threads)
    load = os.getloadavg()[0]  # the latency of a shared machine is only meaningful next to its load
    plain = [h["seconds"] for h in history if "map50" not in h] or [h["seconds"] for h in history]
    val_map50 = max((h["map50"] for h in history if "map50" in h), default=float("nan"))
    row = {
        "dataset": args.dataset, "model": args.model, "width": model.spec["width"], "depth": model.spec["depth"],
        "img_size": args.img_size, "epochs": args.epochs, "epochs_done": len(history), "batch": args.batch,
        "lr": args.lr, "best_epoch": best_epoch, "val_map50": round(val_map50, 4),
        "test_map50": round(m.map50, 4), "test_map": round(m.map, 4), "test_f1": round(m.f1, 4),
        "test_precision": round(m.precision, 4), "test_recall": round(m.recall, 4),
        "test_ap50_per_class": " ".join(f"{c.name}={c.ap50:.3f}" for c in m.per_class),
        "params_m": round(count_params(model) / 1e6, 3), "macs_g": round(count_macs(model, x) / 1e9, 3),
        "latency_ms": round(lat.median_ms, 1), "latency_threads": lat.threads, "load": round(load, 1),
        "s_per_epoch": round(statistics.median(plain), 1), "train_min": round(train_min, 1),
        "checkpoint": tilde(out), "command": cmd, "note": args.note,
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    curve = [{"run": name, "epoch": h["epoch"], "loss": round(h.get("loss", float("nan")), 4),
              "val_map50": round(h["map50"], 4), "val_map": round(h["map"], 4)} for h in history if "map50" in h]
    print(json.dumps(row, indent=1), flush=True)
    out.with_suffix(".json").write_text(json.dumps(
        {"row": row, "history": history, "test": m.as_dict() if hasattr(m, "as_dict") else str(m)},
        indent=1, default=str))
    write_results(results, row, name, curve)
    print(f"baseline saved to {out}; results in {results}", flush=True)


def write_results(results: Path, row: dict, name: str, curve: list[dict]) -> None:
    """Upsert ``row`` into baselines.csv, the curve into baselines_curves.csv, regenerate md + png."""
    results.mkdir(parents=True, exist_ok=True)
    table = results / "baselines.csv"
    rows = list(csv.DictReader(table.open())) if table.exists() else []
    rows = [r for r in rows if tuple(str(r[k]) for k in KEY) != tuple(str(row[k]) for k in KEY)] + [row]
    with table.open("w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    curves_path = results / "baselines_curves.csv"
    curves = list(csv.DictReader(curves_path.open())) if curves_path.exists() else []
    curves = [c for c in curves if c["run"] != name] + curve
    with curves_path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["run", "epoch", "loss", "val_map50", "val_map"])
        w.writeheader()
        w.writerows(curves)
    write_markdown(results / "baselines.md", rows, curves)
    plot_curves(results / "baselines_curves.png", curves)


def write_markdown(path: Path, rows: list[dict], curves: list[dict]) -> None:
    lines = [
        "# Baselines: built-in detectors trained from scratch on a 2-core CPU",
        "",
        "Generated by `benchmarks/baselines.py` (do not edit by hand). Recreate a baseline with its command:",
        "",
    ]
    lines += [f"    {r['command']}" for r in rows]
    lines += [
        "",
        "Best EMA weights by val mAP50, scored on `test`. mAP: COCO-style (faster-coco-eval); F1/P/R at IoU 0.5, "
        "score 0.25. MACs: batch 1 at the training size. Latency: torch eager, batch 1, median of 50 runs "
        "(threads, and the 1-min load average of the 2-core machine while measuring: other jobs shared it, so "
        "latency is inflated, roughly by load/2; compare models only at similar load). s/epoch: median wall time of a "
        "training epoch without validation, measured while other jobs shared the CPU.",
        "",
        "| dataset | model | width | img | epochs (done) | best ep | val mAP50 | test mAP50 | test mAP50-95 "
        "| test F1 | P | R | params (M) | MACs (G) | latency (ms) | s/epoch | train (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {float(r['width']):g} | {r['img_size']} | {r['epochs']} "
            f"({r['epochs_done']}) | {r['best_epoch']} | {float(r['val_map50']):.3f} | **{float(r['test_map50']):.3f}** "
            f"| {float(r['test_map']):.3f} | {float(r['test_f1']):.3f} | {float(r['test_precision']):.3f} "
            f"| {float(r['test_recall']):.3f} | {float(r['params_m']):.2f} | {float(r['macs_g']):.2f} "
            f"| {float(r['latency_ms']):.1f} ({r['latency_threads']} thr, load {r.get('load') or '?'}) | {float(r['s_per_epoch']):.0f} "
            f"| {float(r['train_min']):.0f} |"
        )
    lines += ["", "Test AP50 per class:", ""]
    lines += [f"- {r['dataset']} {r['model']} w{float(r['width']):g} {r['img_size']}: {r['test_ap50_per_class']}"
              for r in rows]
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {r['dataset']} {r['model']} {r['img_size']}: {r['note']}" for r in notes]
    lines += ["", "Checkpoints (`detprune.load(path)`):", ""]
    lines += [f"- `{r['checkpoint']}`" for r in rows]
    lines += ["", "## Learning curves (val mAP50 of the EMA weights per evaluation)", ""]
    for run in dict.fromkeys(c["run"] for c in curves):
        pts = [c for c in curves if c["run"] == run]
        lines.append(f"- {run}: " + ", ".join(f"ep{c['epoch']} {float(c['val_map50']):.3f}" for c in pts))
    lines += ["", "![learning curves](baselines_curves.png)", ""]
    path.write_text("\n".join(lines))


def plot_curves(path: Path, curves: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for run in dict.fromkeys(c["run"] for c in curves):
        pts = [c for c in curves if c["run"] == run]
        ax.plot([int(c["epoch"]) for c in pts], [float(c["val_map50"]) for c in pts], marker="o", label=run)
    ax.axhline(0.8, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val mAP50 (EMA)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
