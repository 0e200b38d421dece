"""Salient object detection: prune 60 % of a VGG16 saliency network's parameters, on this CPU.

    uv run python benchmarks/saliency.py --quick      # pipeline check, a few minutes
    uv run python benchmarks/saliency.py              # the fuller run (~25-40 min on the shared 2-core box)

1. Generate (cached) the synthetic tiny-salient-object set (``detprune.saliency.synthetic``):
   ``--count`` training images, a quarter each for val and test, ``--img-size`` px.
2. Train the narrow VGG16 encoder-decoder (``--width``) from scratch: AdamW, warm-up + cosine, EMA;
   the best validation S-measure picks the weights. Reused from the cache on later runs
   (``--retrain`` to train again).
3. For each criterion (wrg, hrank, l1, random; ``--criteria`` adds e.g. taylor): prune a copy to ``--fraction`` fewer parameters
   (``prune_to_param_fraction``: the local ratio found by bisection), calibration = the first
   ``--calib-batches`` training batches; score it on test right away, then fine-tune every pruned
   model with the same recipe and data order (``--finetune-epochs``) and score it on test.
   A control row fine-tunes the unpruned model for the same epochs (``--no-control`` skips it).
   ``--finetune-seed`` changes the fine-tuning data order (and random's channels) but not the
   baseline, to see how much of a gap between criteria is seed noise.
4. Report the six metrics (MAE, max F, mean/adaptive F, weighted F, S-measure, mean E-measure),
   params, MACs and batch-1 torch latency (``--threads`` threads; all models are timed at the end,
   interleaved over 3 rounds, the lowest median kept: the shared machine's load changes by the minute) in
   ``benchmarks/results/saliency.md`` (``saliency_quick.md`` with ``--quick``) plus a ``.json``.

"1 point" below means 0.01 on the 0-1 scale of a metric (and +0.01 MAE).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/baselines.py: spin-waiting hurts on a busy box

import torch  # noqa: E402

from detprune.api import count_params  # noqa: E402
from detprune.criteria import CRITERIA as CRITERIA_REGISTRY  # noqa: E402
from detprune.deploy import count_macs, measure_latency  # noqa: E402
from detprune.cache import cache_root  # noqa: E402
from detprune.detection.train import seed_everything  # noqa: E402
from detprune.io import load, save  # noqa: E402
from detprune.saliency import (  # noqa: E402
    build_saliency_model,
    evaluate_saliency,
    resolve_loader,
    saliency_loss_fn,
    saliency_train_config,
    train_saliency,
)
from detprune.saliency.prune import prune_to_param_fraction  # noqa: E402
from reproduce import command_line  # noqa: E402  (benchmarks/reproduce.py)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CRITERIA = ("wrg", "hrank", "l1", "random")
METRICS = ("mae", "max_f", "mean_f", "wf", "sm", "em")
HEADERS = {"mae": "MAE ↓", "max_f": "maxF", "mean_f": "meanF (adp.)", "wf": "wF", "sm": "S", "em": "E (mean)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1500, help="synthetic training images (val/test: a quarter each)")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--epochs", type=int, default=12, help="baseline training epochs")
    ap.add_argument("--finetune-epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--finetune-lr", type=float, default=3e-4)
    ap.add_argument("--fraction", type=float, default=0.6, help="fraction of parameters to remove")
    ap.add_argument("--criteria", default=",".join(CRITERIA))
    ap.add_argument("--calib-batches", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--finetune-seed", type=int, default=None, help="default: --seed")
    ap.add_argument("--no-control", action="store_true", help="skip fine-tuning the unpruned model")
    ap.add_argument("--retrain", action="store_true", help="train the baseline even if it is cached")
    ap.add_argument("--out", default=None, help="results file stem (default saliency, saliency_quick with --quick)")
    ap.add_argument("--quick", action="store_true", help="200 images, 48 px, 3 + 1 epochs: a pipeline check")
    args = ap.parse_args(argv)
    args.finetune_seed = args.seed if args.finetune_seed is None else args.finetune_seed
    if args.quick:
        args.count, args.img_size = min(args.count, 200), min(args.img_size, 48)
        args.epochs, args.finetune_epochs = min(args.epochs, 3), min(args.finetune_epochs, 1)
    return args


def cache_dir() -> Path:
    return cache_root("saliency-bench")


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", flush=True)


def measure(model: torch.nn.Module, args: argparse.Namespace, test) -> dict:
    """Test metrics + size of ``model`` (latency is timed later, see :func:`time_all`)."""
    x = torch.rand(1, 3, args.img_size, args.img_size)
    model.eval()
    row = evaluate_saliency(model, test).as_dict()
    row.update(params=count_params(model), macs=count_macs(model, x))
    return row


def time_all(models: dict[str, torch.nn.Module], rows: dict[str, dict], args: argparse.Namespace,
             rounds: int = 3) -> None:
    """Batch-1 latency of every model, interleaved over ``rounds``; the lowest median is kept."""
    x = torch.rand(1, 3, args.img_size, args.img_size)
    for _ in range(rounds):
        for name, model in models.items():
            ms = measure_latency(model.eval(), x, "torch", warmup=10, runs=50, threads=args.threads).median_ms
            rows[name]["latency_ms"] = min(rows[name].get("latency_ms", float("inf")), ms)


def baseline(args: argparse.Namespace, train, val, t0: float) -> tuple[torch.nn.Module, dict]:
    key = f"w{args.width:g}-{args.img_size}px-n{args.count}-e{args.epochs}-lr{args.lr:g}-s{args.seed}"
    path = cache_dir() / f"{key}.safetensors"
    info = path.with_suffix(".json")
    if path.is_file() and info.is_file() and not args.retrain:
        log(f"baseline reused from {path}", t0)
        return load(path), json.loads(info.read_text())
    seed_everything(args.seed)
    model = build_saliency_model("vgg16", args.width)
    cfg = saliency_train_config(lr=args.lr, seed=args.seed, progress=False, val_interval=max(1, args.epochs // 4))
    start = time.perf_counter()
    model, result = train_saliency(model, train, args.epochs, val_data=val, cfg=cfg,
                                   run_dir=cache_dir() / "runs" / key, restore_best=True)
    extra = {"train_s": round(time.perf_counter() - start, 1), "best_epoch": result.best_epoch,
             "history": result.history}
    save(model, path)
    info.write_text(json.dumps(extra))
    log(f"baseline trained in {extra['train_s']} s (best epoch {result.best_epoch})", t0)
    return model, extra


def finetune(model: torch.nn.Module, name: str, args: argparse.Namespace, train, val) -> float:
    cfg = saliency_train_config(lr=args.finetune_lr, warmup_epochs=0.2, seed=args.finetune_seed, progress=False,
                                val_interval=args.finetune_epochs)
    start = time.perf_counter()
    train_saliency(model, train, args.finetune_epochs, val_data=val, cfg=cfg,
                   run_dir=cache_dir() / "runs" / f"finetune-{name}-{os.getpid()}")
    return round(time.perf_counter() - start, 1)


def fmt(v: float, key: str) -> str:
    return f"{v:.4f}" if key == "mae" else f"{v:.3f}"


def table(rows: list[dict], keys: tuple[str, ...], cost: bool) -> list[str]:
    head = ["model"] + [HEADERS[k] for k in keys] + (["params", "MACs", "latency ms", "worst Δ (pts)"] if cost else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"]] + [fmt(r[k], k) for k in keys]
        if cost:
            cells += [f"{r['params'] / 1e6:.3f} M", f"{r['macs'] / 1e6:.1f} M", f"{r['latency_ms']:.2f}",
                      "" if r.get("worst_drop") is None else f"{r['worst_drop']:+.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def worst_drop(row: dict, ref: dict) -> float:
    """Largest loss vs ``ref`` in points (positive = worse), over the six metrics."""
    drops = [100 * (ref[k] - row[k]) for k in METRICS if k != "mae"] + [100 * (row["mae"] - ref["mae"])]
    return max(drops)


def wins(rows: dict[str, dict], a: str, b: str) -> int:
    better = lambda k: rows[a][k] < rows[b][k] if k == "mae" else rows[a][k] > rows[b][k]  # noqa: E731
    return sum(better(k) for k in METRICS)


def report(args: argparse.Namespace, argv: list[str], base: dict, base_info: dict, control: dict | None,
           pruned: dict[str, dict], raw: dict[str, dict], wall: float) -> str:
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [{"name": "unpruned", **base}]
    if control is not None:
        rows.append({"name": f"unpruned + {args.finetune_epochs} ep fine-tune", **control})
    rows += [{"name": f"{c} -{args.fraction:.0%} params + fine-tune", **r} for c, r in pruned.items()]
    for r in rows[1:]:
        r["worst_drop"] = worst_drop(r, base)
    lines = [
        f"# Saliency pruning benchmark{' (quick)' if args.quick else ''}",
        "",
        f"Command: `{command_line('saliency.py', argv)}`  ",
        f"Date: {dt.date.today().isoformat()}; torch {torch.__version__}, {args.threads} thread(s), load average "
        f"{load_avg:.1f} on a shared 2-core CPU; wall time {wall / 60:.1f} min.  ",
        f"Data: synthetic tiny salient objects (0.2-10 % of the image), {args.count} train / "
        f"{max(args.count // 4, 8)} val / {max(args.count // 4, 8)} test images at {args.img_size} px.  ",
        f"Model: VGG16 encoder-decoder, width {args.width:g}; trained {args.epochs} epochs "
        f"({base_info.get('train_s', '?')} s, best val S at epoch {base_info.get('best_epoch')}); "
        f"pruned copies fine-tuned {args.finetune_epochs} epochs at lr {args.finetune_lr:g} "
        f"(same recipe and data order, seed {args.finetune_seed}).",
        "",
        "Test metrics; MAE lower is better, the rest higher. *worst Δ*: largest loss against the unpruned "
        "model over the six metrics, in points (0.01); negative = better on every metric. Latency: batch 1, "
        f"{args.img_size} px, torch, lowest of 3 interleaved medians of 50 runs.",
        "",
        *table(rows, METRICS, cost=True),
        "",
        "Right after pruning, before fine-tuning (what the criterion alone keeps):",
        "",
        *table([{"name": c, **r} for c, r in raw.items()], METRICS, cost=False),
        "",
    ]
    if "wrg" in pruned:
        verdict = []
        for other in ("l1", "random", "hrank", "taylor"):
            if other in pruned:
                verdict.append(f"wrg better than {other} on {wins(pruned, 'wrg', other)}/6 metrics after "
                               f"fine-tuning ({wins(raw, 'wrg', other)}/6 before)")
        goal = pruned["wrg"]["worst_drop"] if "worst_drop" in pruned["wrg"] else worst_drop(pruned["wrg"], base)
        lines += [f"Goal (paper): 60 % fewer parameters with no metric more than 1 point below unpruned, and wrg ahead "
                  f"of l1 and random on most metrics. Here: wrg's worst loss is {goal:+.2f} points "
                  f"({'met' if goal <= 1 else 'not met'}); " + "; ".join(verdict) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = f"synthetic:{args.count}"
    train = resolve_loader(data, "train", size=args.img_size, batch_size=args.batch, seed=args.seed)
    val = resolve_loader(data, "val", size=args.img_size, batch_size=32)
    test = resolve_loader(data, "test", size=args.img_size, batch_size=32)
    calib = resolve_loader(data, "train", size=args.img_size, batch_size=args.batch, shuffle=False, augment=False)
    log(f"data ready: {len(train.dataset)} / {len(val.dataset)} / {len(test.dataset)} images", t0)

    model, base_info = baseline(args, train, val, t0)
    base = measure(model, args, test)
    log(f"unpruned: {json.dumps({k: round(base[k], 4) for k in METRICS})}", t0)

    models: dict[str, torch.nn.Module] = {"unpruned": model}
    raw: dict[str, dict] = {}
    pruned: dict[str, dict] = {}
    example = torch.rand(1, 3, args.img_size, args.img_size)
    for crit in args.criteria.split(","):
        m = copy.deepcopy(model)
        kwargs: dict = {"data": calib, "max_batches": args.calib_batches, "progress": False} \
            if CRITERIA_REGISTRY[crit].needs_data else {}
        if crit in ("wrg", "taylor"):
            kwargs["loss_fn"] = saliency_loss_fn
        if crit == "random":
            kwargs["seed"] = args.finetune_seed
        start = time.perf_counter()
        rep = prune_to_param_fraction(m, example, args.fraction, crit, **kwargs)
        prune_s = round(time.perf_counter() - start, 1)
        raw[crit] = evaluate_saliency(m, test).as_dict()
        log(f"{crit}: ratio {rep.ratio:.3f}, params {rep.params_before:,} -> {rep.params_after:,} "
            f"({prune_s} s); before fine-tune S={raw[crit]['sm']:.3f} maxF={raw[crit]['max_f']:.3f}", t0)
        ft_s = finetune(m, crit, args, train, val)
        pruned[crit] = {**measure(m, args, test), "local_ratio": rep.ratio, "prune_s": prune_s, "finetune_s": ft_s}
        models[crit] = m
        log(f"{crit} fine-tuned ({ft_s} s): {json.dumps({k: round(pruned[crit][k], 4) for k in METRICS})}", t0)

    control = None
    if not args.no_control:
        ctrl = copy.deepcopy(model)
        ft_s = finetune(ctrl, "unpruned", args, train, val)
        control = {**measure(ctrl, args, test), "finetune_s": ft_s}
        models["control"] = ctrl
        log(f"control fine-tuned ({ft_s} s): {json.dumps({k: round(control[k], 4) for k in METRICS})}", t0)
    time_all(models, {"unpruned": base, **pruned, **({"control": control} if control else {})}, args)
    log("latency measured", t0)

    wall = time.perf_counter() - t0
    stem = args.out or ("saliency_quick" if args.quick else "saliency")
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = report(args, argv, base, base_info, control, pruned, raw, wall)
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"command": command_line(argv), "args": vars(args), "unpruned": base, "control": control,
         "pruned": pruned, "before_finetune": raw, "baseline_history": base_info.get("history"),
         "wall_s": round(wall, 1)}, indent=1, default=float))
    print(text)


if __name__ == "__main__":
    main()
