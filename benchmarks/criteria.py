"""Importance criteria on BCCD: every criterion at 20 / 50 / 70 % local pruning, before and after one fine-tune.

    uv run python benchmarks/criteria.py                  # full run (resumable: re-run the same command after a kill)
    uv run python benchmarks/criteria.py --cost           # coupling scores, yolov8n, 64 images at 320 px vs the 60 s goal
    uv run python benchmarks/criteria.py --quick --baseline ~/.cache/detprune/baselines/old8/bccd-yolov8n-416.safetensors

The DCODP paper's protocol: starting from the trained BCCD yolov8n baseline (``benchmarks/baselines.py``,
``--baseline``), every criterion prunes ``--ratios`` of the prunable channels of **every coupling group**
(``detprune.prune(schedule="local")``), so at one ratio all criteria give nearly the same architecture (params
and MACs within ~1 %: a few channel classes span more positions than others) and differ in *which* channels go. Per (criterion, ratio):

1. score the channels of the baseline. Data-driven criteria (coupling, chip, hrank, taylor, wrg,
   attribution) all get the same ``--calib`` images of BCCD ``train`` (seeded draw, no augmentation,
   decoded once and held in memory, so image decoding is not timed); taylor / wrg use the detection loss,
   attribution the class logits under the ground-truth spatial mask (``use_labels=True``: its default
   ``tau`` threshold selects nothing on a weak model). Scoring is timed on its own (wall and process CPU
   seconds of ``Criterion.prepare`` + ``group_scores``; tracing the coupling graph is shared by all criteria
   and timed apart as ``graph s``). Scores do not depend on the ratio, so each criterion is scored once
   and the pruning at every ratio uses those scores (``detprune.prune`` with a precomputed-score criterion);
2. prune a deep copy of the baseline, score mAP50 / mAP50-95 on BCCD ``test`` ("before");
3. fine-tune ``--ft-epochs`` on ``train`` with one recipe and seed for every row (SGD ``--ft-lr``, a few
   warm-up iterations, cosine to 10 %, no EMA, flips + HSV jitter, mosaic ``--ft-mosaic``), score again
   ("after"); record params, MACs (batch 1 at ``--img-size``), torch CPU latency (batch 1,
   ``--latency-threads`` threads, median of ``--latency-runs``) and the load average.

The unpruned baseline is scored too, and fine-tuned with the same recipe: the reference for "after".
Rows are appended to ``<stem>.json`` after each one and a re-run skips rows already there (it refuses
to mix settings or baselines: ``--fresh`` starts over); ``<stem>.md`` (table, goal check) and
``<stem>.png`` (mAP50 vs MACs before / after fine-tuning, one line per criterion) are rewritten every row.
``--cost`` times coupling scores for the whole model (graph + scoring) over ``--cost-images`` at
``--cost-size`` px and records it in the same files. ``--quick``: 2 criteria x 1 ratio, 16 test /
8 calibration / 16 fine-tuning images, 1 epoch, 256 px -> ``criteria_quick.*`` (a pipeline check).
BCCD is read from ``../shared/data/bccd`` (``--data``).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# Spin-waiting OpenMP threads are ~5x slower on this shared 2-core box (see benchmarks/baselines.py);
# must be set before torch initialises OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402

import detprune  # noqa: E402
from detprune.cache import cache_root  # noqa: E402
from detprune.criteria import CRITERIA as REGISTRY  # noqa: E402
from detprune.criteria import Criterion, get_criterion  # noqa: E402
from criteria_results import CONFIG_KEYS, ORDER, add_row, done, fmt, load_results, save_results  # noqa: E402
from reproduce import command_line, tilde  # noqa: E402  (benchmarks/reproduce.py)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_BCCD = REPO.parent / "shared" / "data" / "bccd"
NAMES = ["RBC", "WBC", "Platelets"]
QUICK_CRITERIA = ("attribution", "l1")


def cache_dir() -> Path:
    return cache_root("baselines")


def default_criteria() -> list[str]:
    return [c for c in ORDER if c in REGISTRY] + sorted(set(REGISTRY) - set(ORDER))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, default=cache_dir() / "bccd-yolov8n-416.safetensors",
                    help="trained baseline (detprune.save file); default %(default)s")
    ap.add_argument("--data", type=Path, default=DEFAULT_BCCD, help="BCCD VOC root (default %(default)s)")
    ap.add_argument("--criteria", default=None, help=f"comma-separated (default: all registered: {','.join(default_criteria())})")
    ap.add_argument("--ratios", default="0.2,0.5,0.7", help="local pruning ratios per group (default %(default)s)")
    ap.add_argument("--img-size", type=int, default=416)
    ap.add_argument("--calib", type=int, default=64, help="calibration images from train, same for all criteria")
    ap.add_argument("--calib-batch", type=int, default=8)
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--ft-lr", type=float, default=0.002)
    ap.add_argument("--ft-images", type=int, default=None, help="fine-tune on the first N train images (default all)")
    ap.add_argument("--ft-mosaic", type=float, default=0.0, help="mosaic probability while fine-tuning")
    ap.add_argument("--ft-warmup-iters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8, help="fine-tuning and evaluation batch")
    ap.add_argument("--test-images", type=int, default=None, help="score on the first N test images (default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for scoring, fine-tuning, evaluation")
    ap.add_argument("--latency-threads", type=int, default=1)
    ap.add_argument("--latency-runs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=0, help="fine-tuning DataLoader workers")
    ap.add_argument("--margin", type=float, default=0.05,
                    help="'clear margin' over random before fine-tuning, in mAP50 (default %(default)s = 5 points)")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument("--stem", default=None, help="output file stem (default criteria, criteria_quick with --quick)")
    ap.add_argument("--fresh", action="store_true", help="discard the rows already in <stem>.json")
    ap.add_argument("--cost", action="store_true", help="only the cost check: coupling scores over --cost-images")
    ap.add_argument("--latency", action="store_true",
                    help="only the side-by-side latency pass: the l1-pruned architecture at each ratio vs unpruned")
    ap.add_argument("--cost-images", type=int, default=64)
    ap.add_argument("--cost-size", type=int, default=320)
    ap.add_argument("--quick", action="store_true",
                    help="pipeline check (~1 min): 2 criteria x 1 ratio, 16 test / 8 calib / 16 fine-tune images, "
                         "1 epoch, 256 px")
    args = ap.parse_args(argv)
    if args.quick:
        args.criteria = args.criteria or ",".join(QUICK_CRITERIA)
        if args.ratios == ap.get_default("ratios"):
            args.ratios = "0.5"
        args.img_size = min(args.img_size, 256)
        args.test_images = min(args.test_images or 16, 16)
        args.calib, args.ft_images = min(args.calib, 8), min(args.ft_images or 16, 16)
        args.ft_epochs, args.latency_runs = min(args.ft_epochs, 1), min(args.latency_runs, 10)
        args.cost_images, args.cost_size = min(args.cost_images, 8), min(args.cost_size, 256)
    args.criteria = [c.strip() for c in (args.criteria or ",".join(default_criteria())).split(",") if c.strip()]
    unknown = [c for c in args.criteria if c not in REGISTRY]
    if unknown:
        ap.error(f"unknown criteria {unknown}; registered: {', '.join(sorted(REGISTRY))}")
    args.ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
    if not args.ratios or any(not 0 < r < 1 for r in args.ratios):
        ap.error("--ratios must be in (0, 1)")
    args.stem = args.stem or ("criteria_quick" if args.quick else "criteria")
    args.baseline = args.baseline.expanduser()
    return args


def log(msg: str, t0: float) -> None:
    print(f"[{(time.perf_counter() - t0) / 60:6.1f} min] {msg}", flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def nan_to_none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ------------------------------------------------------------------------------------------ data


def datasets(args: argparse.Namespace, img_size: int | None = None):
    """(calibration batches in memory, fine-tuning dataset, test dataset)."""
    from detprune.detection.data import build_dataset, collate_fn

    if not (args.data / "ImageSets" / "Main").is_dir():
        sys.exit(f"BCCD not found at {args.data} (see ../shared/README.md); pass --data <VOC root>")
    kw = {"img_size": img_size or args.img_size, "names": NAMES, "seed": 0}
    train = build_dataset(args.data, "train", **kw)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed)).tolist()
    calib_ds = Subset(train, order[:min(args.calib, len(train))])
    # held in memory: every criterion sees the very same tensors and decoding is not part of its time
    calib = list(DataLoader(calib_ds, batch_size=args.calib_batch, shuffle=False, collate_fn=collate_fn))
    ft = build_dataset(args.data, "train", augment=True, mosaic=args.ft_mosaic, **kw)
    if args.ft_images:
        ft = Subset(ft, range(min(args.ft_images, len(ft))))
    test = build_dataset(args.data, "test", **kw)
    if args.test_images:
        test = Subset(test, range(min(args.test_images, len(test))))
    return calib, ft, test


def eval_loader(ds, args: argparse.Namespace) -> DataLoader:
    from detprune.detection.data import collate_fn

    return DataLoader(ds, batch_size=args.batch, shuffle=False, collate_fn=collate_fn, num_workers=0)


# ------------------------------------------------------------------------------------ measuring


def score_test(model: torch.nn.Module, test_loader: DataLoader) -> dict[str, float | None]:
    from detprune.detection.evaluate import evaluate
    from detprune.detection.models import BuiltinAdapter

    m = evaluate(BuiltinAdapter(model), test_loader, progress=False, names=NAMES)
    return {"map50": nan_to_none(m.map50), "map": nan_to_none(m.map)}


def finetune(model: torch.nn.Module, ft_ds, args: argparse.Namespace) -> float:
    """The one fine-tuning recipe of every row; returns its wall seconds."""
    from detprune.detection.data import collate_fn
    from detprune.detection.models import BuiltinAdapter
    from detprune.detection.train import TrainConfig, fit

    g = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(ft_ds, batch_size=args.batch, shuffle=True, generator=g, collate_fn=collate_fn,
                        num_workers=args.workers, drop_last=len(ft_ds) > args.batch)
    iters = len(loader)
    cfg = TrainConfig(lr=args.ft_lr, weight_decay=5e-4 * args.batch / 64,
                      warmup_epochs=min(args.ft_warmup_iters / iters, 0.3 * args.ft_epochs), warmup_start_factor=0.1,
                      final_lr_ratio=0.1, ema=False, seed=args.seed, device="cpu", progress=False,
                      val_interval=10 ** 6)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="detprune-criteria-") as tmp:
        fit(BuiltinAdapter(model), loader, args.ft_epochs, cfg=cfg, run_dir=tmp)
    model.eval()
    return time.perf_counter() - t


def size_and_speed(model: torch.nn.Module, args: argparse.Namespace) -> dict[str, Any]:
    from detprune.deploy import count_macs, count_params, measure_latency

    x = torch.zeros(1, 3, args.img_size, args.img_size)
    model.eval()
    lat = measure_latency(model, x, "torch", warmup=5, runs=args.latency_runs, threads=args.latency_threads)
    return {"params": count_params(model), "macs": count_macs(model, x), "latency_ms": round(lat.median_ms, 2),
            "load": round(os.getloadavg()[0], 1)}


# ------------------------------------------------------------------------------------- criteria


class Precomputed(Criterion):
    """Scores computed beforehand (one array per group index), so ``detprune.prune`` only does the surgery.

    The coupling graph of the same model is traced the same way every time, so group indices and sizes
    match; a mismatch raises rather than prune the wrong channels.
    """

    def __init__(self, name: str, scores: dict[int, np.ndarray]) -> None:
        super().__init__()
        self.name, self.scores = name, scores

    def member_scores(self, member):  # pragma: no cover - group_scores is overridden
        return None

    def group_scores(self, group) -> np.ndarray:
        s = self.scores.get(group.index)
        if s is None or len(s) != group.size:
            raise RuntimeError(f"precomputed {self.name} scores do not match group {group.index} "
                               f"(size {group.size}, got {None if s is None else len(s)})")
        return s


def criterion_kwargs(name: str, model: torch.nn.Module) -> dict[str, Any]:
    """Constructor options: quiet collection, the detection loss for gradient criteria, labels for attribution."""
    from detprune.detection.models import BuiltinAdapter

    cls = REGISTRY[name]
    if not getattr(cls, "needs_data", False):
        return {}
    kw: dict[str, Any] = {"progress": False}
    if getattr(cls, "needs_grad", False):
        kw["adapter"] = BuiltinAdapter(model)
    if name == "attribution":
        kw["use_labels"] = True
    return kw


def compute_scores(name: str, base: torch.nn.Module, calib: list, img_size: int
                   ) -> tuple[dict[int, np.ndarray], dict[str, float]]:
    """Score every group of (a copy of) ``base`` with criterion ``name``; graph and scoring timed apart."""
    model = copy.deepcopy(base).eval()
    x = torch.zeros(1, 3, img_size, img_size)
    w0, c0 = time.perf_counter(), time.process_time()
    found = detprune.groups(model, x)
    w1, c1 = time.perf_counter(), time.process_time()
    crit = get_criterion(name, **criterion_kwargs(name, model))
    crit.prepare(model, found, data=calib if crit.needs_data else None, example_inputs=x)
    scores = {g.index: np.asarray(crit.group_scores(g), dtype=np.float64) for g in found}
    w2, c2 = time.perf_counter(), time.process_time()
    zero = sum(int((s[~g.pinned] == 0).all()) for g, s in zip(found, scores.values()) if g.prunable)
    timing = {"graph_s": round(w1 - w0, 3), "graph_cpu_s": round(c1 - c0, 3), "crit_s": round(w2 - w1, 3),
              "crit_cpu_s": round(c2 - c1, 3), "groups": sum(1 for g in found if g.prunable),
              "all_zero_groups": zero}
    return scores, timing


# ------------------------------------------------------------------------------------------ runs


def run_cost(args: argparse.Namespace, base: torch.nn.Module, data: dict, t0: float, argv: list[str]) -> None:
    """Coupling scores for the whole model (graph + statistics + scores) over ``--cost-images``."""
    calib, _, _ = datasets(argparse.Namespace(**{**vars(args), "calib": args.cost_images}), img_size=args.cost_size)
    model = copy.deepcopy(base).eval()
    w = time.perf_counter()
    with torch.no_grad():
        for images, _ in calib:
            model(images)
    forward_s = time.perf_counter() - w
    log(f"cost: {sum(len(b[0]) for b in calib)} images at {args.cost_size} px, forward alone {forward_s:.1f} s", t0)
    _, timing = compute_scores("coupling", base, calib, args.cost_size)
    total, total_cpu = timing["graph_s"] + timing["crit_s"], timing["graph_cpu_s"] + timing["crit_cpu_s"]
    data["cost"] = {"images": sum(len(b[0]) for b in calib), "size": args.cost_size, "threads": torch.get_num_threads(),
                    "load": round(os.getloadavg()[0], 1), "forward_s": round(forward_s, 2), **timing,
                    "total_s": round(total, 2), "total_cpu_s": round(total_cpu, 2),
                    "command": command_line(argv), "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    save_results(data, args)
    log(f"cost: graph {timing['graph_s']:.1f} s + coupling {timing['crit_s']:.1f} s = {total:.1f} s wall "
        f"({total_cpu:.1f} s CPU), goal < 60 s: {'met' if total < 60 else 'NOT met'}", t0)


def run_latency(args: argparse.Namespace, base: torch.nn.Module, data: dict, t0: float, argv: list[str]) -> None:
    """Latency per ratio, timed side by side: the per-row latencies are single sequential measurements on a
    shared machine, so they are noisy. At one ratio all criteria give (nearly) the same architecture, so the
    l1-pruned copy stands for all of them; unpruned and pruned copies are timed in interleaved rounds, one
    thread, process CPU clock, minimum per model (see ``detprune.deploy.side_by_side``)."""
    from detprune.deploy import count_macs
    from detprune.deploy.side_by_side import compare

    x = torch.zeros(1, 3, args.img_size, args.img_size)
    models = [copy.deepcopy(base).eval()]
    for ratio in args.ratios:
        m = copy.deepcopy(base).eval()
        detprune.prune(m, x, criterion="l1", ratio=ratio, measure=False)
        models.append(m)
    ms = [compare(models, x, "torch", threads=1, rounds=7, calls=3) for _ in range(3)]
    best = np.min(np.stack(ms), axis=0)
    data["latency"] = {"ratios": [0.0, *args.ratios], "ms": [round(float(v), 2) for v in best],
                       "macs": [count_macs(m, x) for m in models], "img_size": args.img_size,
                       "load": round(os.getloadavg()[0], 1), "command": command_line(argv),
                       "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    save_results(data, args)
    log("latency side by side: " + ", ".join(f"{r:.0%} {v:.1f} ms" for r, v in zip(data["latency"]["ratios"], best)), t0)


def run_row(name: str, ratio: float, base: torch.nn.Module, scores: dict | None, timing: dict,
            args: argparse.Namespace, ft_ds, test_loader, base_score: dict) -> dict:
    start = time.perf_counter()
    model = copy.deepcopy(base).eval()
    x = torch.zeros(1, 3, args.img_size, args.img_size)
    prune_s = 0.0
    if scores is not None:
        w = time.perf_counter()
        detprune.prune(model, x, criterion=Precomputed(name, scores), ratio=ratio, measure=False)
        prune_s = time.perf_counter() - w
        before = score_test(model, test_loader)
    else:
        before = dict(base_score)
    ft_s = finetune(model, ft_ds, args)
    after = score_test(model, test_loader)
    return {"criterion": name, "ratio": ratio, **size_and_speed(model, args),
            "map50": before["map50"], "map": before["map"], "map50_ft": after["map50"], "map_ft": after["map"],
            **timing, "prune_s": round(prune_s, 2), "ft_s": round(ft_s, 1),
            "row_s": round(time.perf_counter() - start, 1), "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M")}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if not args.baseline.is_file():
        sys.exit(f"no baseline at {args.baseline}; make one with\n  uv run python benchmarks/baselines.py "
                 f"--dataset bccd --model yolov8n --img-size 416\nor pass --baseline PATH")
    base = detprune.load(args.baseline).eval()
    config = {
        "baseline": tilde(args.baseline), "baseline_sha256": sha256(args.baseline),
        **{k: getattr(args, k) for k in CONFIG_KEYS if hasattr(args, k)},
        "threads": args.threads, "command": command_line("criteria.py", sys.argv[1:] if argv is None else argv),
    }
    if args.cost or args.latency:  # the table's command stays the one that made the rows; these keep their own
        config.pop("command")
    path = args.results_dir / f"{args.stem}.json"
    data = load_results(path, config, args.fresh)
    log(f"baseline {config['baseline']} ({config['baseline_sha256'][:12]}); results {path}", t0)
    if args.cost:
        run_cost(args, base, data, t0, sys.argv[1:] if argv is None else argv)
        return
    if args.latency:
        run_latency(args, base, data, t0, sys.argv[1:] if argv is None else argv)
        return

    calib, ft_ds, test_ds = datasets(args)
    data["config"].update(test_count=len(test_ds), ft_count=len(ft_ds), calib_count=sum(len(b[0]) for b in calib))
    test_loader = eval_loader(test_ds, args)
    base_score = score_test(base, test_loader)
    log(f"baseline test mAP50 {fmt(base_score['map50'])} mAP50-95 {fmt(base_score['map'])}; "
        f"{len(calib)} calibration batches, {len(ft_ds)} fine-tuning, {len(test_ds)} test images", t0)
    todo = [("unpruned", 0.0)] + [(c, r) for c in args.criteria for r in args.ratios]
    left = [(c, r) for c, r in todo if not done(data, c, r)]
    if len(left) < len(todo):
        log(f"resuming: {len(todo) - len(left)} of {len(todo)} rows already in {path.name}", t0)
    save_results(data, args)
    if not done(data, "unpruned", 0.0):
        row = run_row("unpruned", 0.0, base, None, {"crit_s": None, "crit_cpu_s": None}, args, ft_ds, test_loader,
                      base_score)
        add_row(data, row)
        save_results(data, args)
        log(f"unpruned: mAP50 {fmt(row['map50'])} -> fine-tuned {fmt(row['map50_ft'])} ({row['row_s']:.0f} s)", t0)
    n_done = 1
    for name in args.criteria:
        ratios = [r for r in args.ratios if not done(data, name, r)]
        if not ratios:
            continue
        try:
            scores, timing = compute_scores(name, base, calib, args.img_size)
        except Exception as e:  # record, go on with the other criteria; the next run retries it
            traceback.print_exc()
            data["errors"] = [x for x in data["errors"] if x["criterion"] != name] + [
                {"criterion": name, "ratio": r, "error": f"{type(e).__name__}: {e}"} for r in ratios]
            save_results(data, args)
            log(f"{name}: scoring FAILED ({type(e).__name__}: {e})", t0)
            continue
        log(f"{name}: scored in {timing['crit_s']:.1f} s wall ({timing['crit_cpu_s']:.1f} s CPU), "
            f"graph {timing['graph_s']:.1f} s", t0)
        for ratio in ratios:
            try:
                row = run_row(name, ratio, base, scores, timing, args, ft_ds, test_loader, base_score)
            except Exception as e:
                traceback.print_exc()
                data["errors"] = [x for x in data["errors"] if not (x["criterion"] == name and x["ratio"] == ratio)]
                data["errors"].append({"criterion": name, "ratio": ratio, "error": f"{type(e).__name__}: {e}"})
                save_results(data, args)
                log(f"{name} @ {ratio:.0%}: FAILED ({type(e).__name__}: {e})", t0)
                continue
            add_row(data, row)
            save_results(data, args)
            n_done = sum(1 for c, r in todo if done(data, c, r))
            log(f"{name} @ {ratio:.0%} [{n_done}/{len(todo)}]: MACs {row['macs'] / 1e9:.3f} G, mAP50 "
                f"{fmt(row['map50'])} -> {fmt(row['map50_ft'])}, mAP50-95 {fmt(row['map'])} -> {fmt(row['map_ft'])}, "
                f"{row['latency_ms']:.0f} ms ({row['row_s']:.0f} s: fine-tune {row['ft_s']:.0f} s)", t0)
    print((args.results_dir / f"{args.stem}.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
