"""One-class specialisation: which criterion keeps the kept class best at the same MACs?

    uv run python benchmarks/specialise.py --quick                      # pipeline check, minutes
    uv run python benchmarks/specialise.py --dataset bccd --classes WBC Platelets --model yolov8n --img-size 416
    uv run python benchmarks/specialise.py --dataset synthetic --classes mango --model yolov8n --img-size 320

The setting of the attribution-pruning paper (Shi et al. 2020, mango detection): a detector trained
on several classes is needed for one. Per kept class:

1. the trained baseline (``benchmarks/baselines.py`` output, or ``--baseline``) is specialised with
   :func:`detprune.specialise.specialise` (class logits sliced, labels renumbered) and scored on the
   relabelled test split: the "unpruned" row;
2. for every criterion (``attribution`` restricted to the kept class by construction, ``coupling``
   (DCODP), ``l1``, ``random``) and every MACs target, a copy is pruned to exactly that target
   (``detprune.prune(target="macs=M")``, ``--schedule``), scored, fine-tuned ``--finetune-epochs`` on the
   relabelled training split, and scored again. Data-driven criteria calibrate on
   ``--calib-batches`` batches of the relabelled training split. With ``--steps N`` the cut is
   iterative (:func:`detprune.schedule.iterative_prune`, geometric MACs schedule): N prune steps,
   ``--step-epochs`` of fine-tuning after each of the first N - 1 and ``--finetune-epochs`` after the
   last; every step re-scores the channels of the model fine-tuned so far. The unpruned reference
   is fine-tuned for the same total number of epochs (once per class, seed and setting: it is cached
   beside the baselines in ``~/.cache/detprune/baselines``).

Scores: mAP50 (COCO-style AP at IoU 0.5) and F1 at IoU 0.5 / score 0.25, the paper's metric.
Outputs: ``specialise.md`` / ``specialise.json`` / ``specialise.png`` (mAP50 and F1 vs MACs) in
``--out`` (``specialise_quick.*`` for ``--quick``, whose numbers only show that the pipeline runs).
BCCD is read from ``../shared/data/bccd``; the script exits with a clear message when it is absent.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

import detprune
from detprune.cache import cache_root
from detprune.deploy import count_macs
from detprune.detection.data import build_dataset, collate_fn
from detprune.detection.evaluate import evaluate
from detprune.detection.models import BuiltinAdapter, build_model
from detprune.detection.train import TrainConfig, fit, seed_everything
from detprune.pipeline.steps import distill_loss
from detprune.schedule import iterative_prune, sequential_prune
from detprune.specialise import ClassSubset, specialise
from reproduce import command_line  # benchmarks/reproduce.py

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO.parent / "shared" / "data" / "bccd"
CRITERIA = ("attribution", "coupling", "l1", "random")
# named attribution settings, usable in --criteria beside the plain criteria
VARIANTS = {"attribution_labels": ("attribution", {"use_labels": True, "reduction": "mean_abs"}),
            "attribution_detected": ("attribution", {"use_labels": True, "detected_only": True,
                                                     "reduction": "mean_abs"}),
            "attribution_labels_l1": ("attribution", {"use_labels": True, "reduction": "mean_abs",
                                                      "weight_exponent": 1.0}),
            # the authors' code: box (and objectness) outputs of the masked cells in T as well
            "attribution_boxes": ("attribution", {"with_boxes": True}),
            "attribution_labels_boxes": ("attribution", {"use_labels": True, "reduction": "mean_abs",
                                                         "with_boxes": True})}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("bccd", "synthetic"), default="bccd")
    ap.add_argument("--classes", nargs="+", default=None, help="kept classes, one run each (default: WBC Platelets "
                                                               "for BCCD, mango for synthetic)")
    ap.add_argument("--model", default="yolov8n")
    ap.add_argument("--width", type=float, default=None)
    ap.add_argument("--img-size", type=int, default=416)
    ap.add_argument("--baseline", type=Path, default=None, help="trained baseline (.safetensors, detprune.save)")
    ap.add_argument("--train-baseline-epochs", type=int, default=0,
                    help="train a baseline here when none is found (0: exit and say how to make one)")
    ap.add_argument("--criteria", nargs="+", default=list(CRITERIA),
                    help=f"criteria and named variants ({', '.join(VARIANTS)})")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0],
                    help="repeat every run per seed (calibration batches, fine-tune order and augmentation, random)")
    ap.add_argument("--macs", nargs="+", type=float, default=[0.5, 0.3])
    ap.add_argument("--schedule", default="global", choices=("local", "global", "layerwise"))
    ap.add_argument("--ratios", type=Path, default=None,
                    help="per-layer ratios (YAML) for --schedule layerwise, scaled by one factor to reach --macs")
    ap.add_argument("--calib-batches", type=int, default=8)
    ap.add_argument("--attribution", default="{}", help='attribution options as JSON, e.g. \'{"use_labels": true}\'')
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1, help="prune in N steps with fine-tuning between (iterative)")
    ap.add_argument("--sequential", action="store_true",
                    help="cut the groups one after another in forward order, re-scoring on the model pruned so far "
                         "(the attribution paper's layer-by-layer pruning; local schedule, one fine-tune at the end)")
    ap.add_argument("--sequential-stages", type=int, default=None,
                    help="with --sequential: runs of consecutive groups scored together (default: one per group)")
    ap.add_argument("--step-epochs", type=int, default=1, help="fine-tune epochs after each step but the last")
    ap.add_argument("--distill", default="none", choices=("none", "mse", "bce"),
                    help="fine-tune pruned models with distillation from the fine-tuned unpruned reference "
                         "(bce: soft class targets + MSE on box logits; mse: all channels)")
    ap.add_argument("--distill-weight", type=float, default=1.0)
    ap.add_argument("--teacher", default="reference", choices=("reference", "unpruned"),
                    help="the teacher of --distill: the fine-tuned unpruned reference, or the one-class model "
                         "before pruning and fine-tuning (what `detprune prune --distill` uses)")
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--train-images", type=int, default=None, help="subset of the training split")
    ap.add_argument("--test-images", type=int, default=None)
    ap.add_argument("--synthetic-count", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--quick", action="store_true", help="tiny everything: shows the pipeline runs, not results")
    args = ap.parse_args()
    if (args.schedule == "layerwise") != (args.ratios is not None):
        ap.error("--schedule layerwise and --ratios FILE go together")
    if args.schedule == "layerwise" and (args.sequential or args.steps > 1):
        ap.error("--schedule layerwise is a one-shot cut: no --sequential or --steps")
    if args.sequential and (args.schedule != "local" or args.steps > 1):
        ap.error("--sequential cuts every group by the same ratio in one pass: it needs --schedule local and --steps 1")
    if args.quick:
        args.width = args.width or 0.125
        args.img_size, args.macs, args.calib_batches, args.finetune_epochs = 160, [0.5], 2, 1
        args.train_images, args.test_images, args.synthetic_count = 48, 24, 64
        args.train_baseline_epochs = args.train_baseline_epochs or 4
    return args


def data(args: argparse.Namespace):
    if args.dataset == "bccd":
        if not (BCCD / "ImageSets" / "Main").is_dir():
            sys.exit(f"BCCD not found at {BCCD} (see ../shared/README.md)")
        spec, names = BCCD, ["RBC", "WBC", "Platelets"]
    else:
        spec, names = f"synthetic:{args.synthetic_count}", None
    kw = {"img_size": args.img_size, "names": names, "seed": 0}
    train_aug = build_dataset(spec, "train", augment=True, **kw)
    train = build_dataset(spec, "train", **kw)
    test = build_dataset(spec, "test", **kw)
    if args.train_images:
        idx = range(min(args.train_images, len(train)))
        train_aug, train = Subset(train_aug, idx), Subset(train, idx)
        train_aug.names = train.names = train.dataset.names  # type: ignore[attr-defined]
        train.records = train.dataset.records  # type: ignore[attr-defined]
    if args.test_images:
        test = _subset(test, args.test_images)
    return train_aug, train, test


def _subset(ds, n: int):
    sub = Subset(ds, range(min(n, len(ds))))
    sub.names = ds.names  # type: ignore[attr-defined]
    return sub


def loader(ds, args: argparse.Namespace, shuffle: bool = False) -> DataLoader:
    g = torch.Generator().manual_seed(getattr(args, "seed", 0))
    return DataLoader(ds, batch_size=args.batch, shuffle=shuffle, generator=g, collate_fn=collate_fn)


def score(model, ds, args) -> dict[str, float]:
    m = evaluate(BuiltinAdapter(model), loader(ds, args), progress=False, names=ds.names, score_thres=0.25,
                 iou_thres=0.6)
    nan = float("nan")
    return {"map50": m.map50 if m.map50 == m.map50 else nan, "f1": m.f1}


def finetune(model, ds, epochs: int, args, lr: float | None = None, teacher=None) -> None:
    cfg = TrainConfig(lr=lr or args.lr, warmup_epochs=min(1.0, epochs / 3), ema=False, progress=False,
                      val_interval=10_000)
    distill = None
    if teacher is not None and args.distill != "none":
        distill = distill_loss(model, teacher, args.distill_weight, log=lambda _: None, kind=args.distill)
    with tempfile.TemporaryDirectory(prefix="detprune-spec-") as tmp:
        fit(BuiltinAdapter(model), loader(ds, args, shuffle=True), epochs, cfg=cfg, run_dir=tmp, distill=distill)
    model.eval()


def baseline(args: argparse.Namespace, names: list[str], train_aug) -> torch.nn.Module:
    cache = cache_root("baselines")
    width = "" if args.width is None else f"-w{args.width:g}"
    path = args.baseline or cache / f"{args.dataset}-{args.model}{width}-{args.img_size}.safetensors"
    own = path.with_name(f"{path.stem}-specialise-e{args.train_baseline_epochs}.safetensors")  # trained here
    for p in (path, own):
        if p.is_file() and not args.quick:
            print(f"baseline {p}", flush=True)
            return detprune.load(p).eval()
    if not args.train_baseline_epochs:
        sys.exit(f"no baseline at {path}; make one with\n  uv run python benchmarks/baselines.py --dataset "
                 f"{args.dataset} --model {args.model} --img-size {args.img_size}\nor pass --train-baseline-epochs N")
    print(f"no baseline at {path}: training one here for {args.train_baseline_epochs} epochs", flush=True)
    seed_everything(0)
    model = build_model(args.model, num_classes=len(names), width=args.width, names=names)
    finetune(model, train_aug, args.train_baseline_epochs, args, lr=0.01)
    if not args.quick:
        detprune.save(model, own)
        print(f"saved the baseline trained here to {own}", flush=True)
    return model.eval()


def reference_path(cls: str, epochs: int, args: argparse.Namespace) -> Path:
    """Where the reference for this class, seed and settings is cached (see :func:`fine_tuned_reference`)."""
    key = (f"{args.dataset}-{args.model}-w{args.width}-{args.img_size}-{cls}-seed{args.seed}-e{epochs}-lr{args.lr:g}"
           f"-b{args.batch}-n{args.train_images}-s{args.synthetic_count if args.dataset == 'synthetic' else 0}")
    if args.baseline is not None:  # another baseline gives another reference (the default's keeps its old name)
        key += f"-from-{args.baseline.stem}"
    return cache_root("baselines", f"reference-{key}.safetensors")


def fine_tuned_reference(spec_model, cls: str, train_aug_c, args: argparse.Namespace) -> torch.nn.Module:
    """The unpruned one-class model fine-tuned with this seed for as many epochs as the pruned ones.

    Cached under ~/.cache/detprune/baselines (keyed by every setting that changes it; the
    fine-tune is deterministic per seed): it is the same in every run of a class and seed and
    costs minutes, so a sweep over MACs or criteria trains it once.
    """
    epochs = args.finetune_epochs + (args.steps - 1) * args.step_epochs
    path = reference_path(cls, epochs, args)
    if path.is_file() and not args.quick:
        print(f"reference {path}", flush=True)
        return detprune.load(path).eval()
    reference = copy.deepcopy(spec_model)
    seed_everything(args.seed)
    finetune(reference, train_aug_c, epochs, args)
    if not args.quick:
        detprune.save(reference, path)
    return reference


def criterion_kwargs(name: str, calib: DataLoader, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(criterion to call, its options) for a --criteria name."""
    name, extra = VARIANTS.get(name, (name, json.loads(args.attribution) if name == "attribution" else {}))
    if name in ("l1", "random"):
        return name, {"seed": args.seed} if name == "random" else {}
    return name, {"data": calib, "max_batches": args.calib_batches, "progress": False, **extra}


def prune_and_tune(model, crit: str, target: float, x, calib: DataLoader, train_aug_c, test_c,
                   args: argparse.Namespace, teacher=None) -> tuple[dict[str, float], dict[str, float], bool]:
    """Prune ``model`` to ``target`` of its MACs (one cut, or ``--steps`` iterative ones) and fine-tune
    (distilling from ``teacher`` with ``--distill``); returns the scores right after the last cut,
    after fine-tuning, and whether the target was met."""
    crit, kw = criterion_kwargs(crit, calib, args)
    seed_everything(args.seed)
    if args.sequential:
        goal = target * count_macs(model, x)
        report = sequential_prune(model, x, crit, target=f"macs={goal:.0f}", stages=args.sequential_stages, **kw)
        pruned = score(model, test_c, args)
        finetune(model, train_aug_c, args.finetune_epochs, args, teacher=teacher)
        return pruned, score(model, test_c, args), report.target.met
    if args.steps <= 1:
        goal = target * count_macs(model, x)
        report = detprune.prune(model, x, crit, target=f"macs={goal:.0f}", schedule=args.schedule, ratios=args.ratios,
                                measure=False, **kw)
        pruned = score(model, test_c, args)
        finetune(model, train_aug_c, args.finetune_epochs, args, teacher=teacher)
        return pruned, score(model, test_c, args), report.target.met
    macs0, seen = count_macs(model, x), {}

    def tune(m, step: int) -> None:
        if step == args.steps:
            seen["pruned"] = score(m, test_c, args)
        finetune(m, train_aug_c, args.finetune_epochs if step == args.steps else args.step_epochs, args,
                 teacher=teacher)

    iterative_prune(model, x, steps=args.steps, target=f"macs={target}", schedule="geometric", finetune=tune,
                    criterion=crit, alloc_schedule=args.schedule, **kw)
    return seen["pruned"], score(model, test_c, args), count_macs(model, x) <= target * macs0 * 1.005


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({r["kept"] for r in rows})
    fig, axes = plt.subplots(2, len(keys), figsize=(4 * len(keys), 6), squeeze=False)
    for j, key in enumerate(keys):
        sub = [r for r in rows if r["kept"] == key]
        for i, metric in enumerate(("map50", "f1")):
            ax = axes[i][j]
            for crit in sorted({r["criterion"] for r in sub}):
                runs = [r for r in sub if r["criterion"] == crit]
                # one point per MACs target, the mean over seeds; every seed as a faint dot
                targets = sorted({round(r["macs_pct"]) for r in runs})
                means = [statistics.fmean(r[f"{metric}_ft"] for r in runs if round(r["macs_pct"]) == t) for t in targets]
                if crit == "unpruned":
                    ax.scatter(targets, means, marker="*", s=120, color="black", label=crit)
                else:
                    line = ax.plot(targets, means, "o-", label=crit)[0]
                    ax.scatter([r["macs_pct"] for r in runs], [r[f"{metric}_ft"] for r in runs], s=8,
                               color=line.get_color(), alpha=0.4)
            ax.set_xlabel("MACs % of the baseline")
            ax.set_ylabel(f"{metric} (fine-tuned)")
            ax.set_title(key, fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(rows: list[dict], args: argparse.Namespace, minutes: float) -> str:
    lines = ["# One-class specialisation: criteria at the same MACs", "",
             f"Command: `{command_line('specialise.py', sys.argv[1:])}`  ",
             f"{args.model} (width {args.width or 'default'}), {args.img_size} px, schedule {args.schedule}, "
             + (f"{args.steps} iterative steps with {args.step_epochs} fine-tune epochs after each but the last, "
                if args.steps > 1 else "")
             + (f"layer by layer ({args.sequential_stages or 'one stage per group'}; each stage re-scored on the "
                "model pruned so far), " if args.sequential else "")
             + f"{args.finetune_epochs} fine-tune epochs"
             + (f" distilling ({args.distill}, weight {args.distill_weight:g}) from the "
                + ("fine-tuned unpruned model" if args.teacher == "reference" else "unpruned model before fine-tuning")
                if args.distill != "none" else "")
             + f", {args.calib_batches} calibration batches of {args.batch}. "
             f"Wall time {minutes:.1f} min." + (" **--quick: a pipeline check, the numbers mean nothing.**"
                                                if args.quick else ""), "",
             "| kept class | seed | criterion | MACs % | mAP50 pruned | mAP50 fine-tuned | F1 pruned | F1 fine-tuned |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['kept']} | {r.get('seed', 0)} | {r['criterion']} | {r['macs_pct']:.1f} | {r['map50']:.4f} "
                     f"| {r['map50_ft']:.4f} | {r['f1']:.4f} | {r['f1_ft']:.4f} |")
    return "\n".join(lines + [""] + goal_check(rows)) + "\n"


def budget(row: dict) -> int:
    """The MACs target of a row in percent (rows of older runs lack it: their MACs rounded to 5 %)."""
    return int(row["target_pct"]) if "target_pct" in row else 5 * round(row["macs_pct"] / 5)


def f1_changes(rows: list[dict], key: str) -> dict[int, dict[str, list[float]]]:
    """Per MACs target <= 20 % and criterion, the F1 change in points against the same seed's
    fine-tuned reference."""
    refs = {r.get("seed", 0): r["f1_ft"] for r in rows if r["kept"] == key and r["criterion"] == "unpruned"}
    out: dict[int, dict[str, list[float]]] = {}
    for r in rows:
        if r["kept"] == key and r["criterion"] != "unpruned" and budget(r) <= 20 and r.get("seed", 0) in refs:
            out.setdefault(budget(r), {}).setdefault(r["criterion"], []).append(
                100 * (r["f1_ft"] - refs[r.get("seed", 0)]))
    return out


def goal_check(rows: list[dict]) -> list[str]:
    """The paper's headline as a check: >= 80% fewer MACs, <= 2.5 points F1 lost against the unpruned
    model fine-tuned on the same class, attribution ahead of l1 at that budget (means over seeds),
    one line per kept class and MACs target."""
    out = ["## Goal check (>= 80% fewer MACs, <= 2.5 F1 points lost vs the unpruned model fine-tuned on the class)", "",
           "F1 change in points per MACs target <= 20 %, mean over seeds (± standard deviation, n seeds):", ""]
    for key in sorted({r["kept"] for r in rows}):
        by_target = f1_changes(rows, key)
        if not by_target:
            out.append(f"- {key}: no run at <= 20% MACs")
        for target, ch in sorted(by_target.items(), reverse=True):
            mean = {c: statistics.fmean(v) for c, v in ch.items()}
            sd = {c: statistics.stdev(v) if len(v) > 1 else float("nan") for c, v in ch.items()}
            parts = [f"{c} {mean[c]:+.1f} ± {sd[c]:.1f} (n={len(ch[c])})" for c in sorted(ch)]
            attrs = [c for c in mean if c.startswith("attribution")]
            best_attr = max(attrs, key=mean.get) if attrs else None
            head = f"- {key}, {target} % MACs: {', '.join(parts)}; best {max(mean, key=mean.get)}."
            if best_attr is None:
                out.append(f"{head} No attribution row at this target: the goal is not judged.")
                continue
            met = mean[best_attr] >= -2.5
            ahead = ("yes" if mean[best_attr] > mean["l1"] else "no") if "l1" in mean else \
                "not judged (no l1 row at this target)"
            out.append(f"{head} Attribution ({best_attr}) within 2.5 points: {'yes' if met else 'no'}; ahead of l1: "
                       f"{ahead}.")
    return out


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    train_aug, train, test = data(args)
    names = list(train.names)
    kept = args.classes or (["WBC", "Platelets"] if args.dataset == "bccd" else ["mango"])
    base = baseline(args, names, train_aug)
    x = torch.rand(1, 3, args.img_size, args.img_size)
    macs_full = count_macs(base, x)
    stem = "specialise_quick" if args.quick else "specialise"
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def save() -> None:
        (args.out / f"{stem}.json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1, default=str))
        (args.out / f"{stem}.md").write_text(markdown(rows, args, (time.time() - started) / 60))
        plot(rows, args.out / f"{stem}.png")

    one_class: dict[str, tuple] = {}  # class -> (specialised model, its cmap, its score): seed-independent
    for seed, cls in ((seed, cls) for seed in args.seeds for cls in kept):
        args.seed = seed
        key = f"{args.dataset}: {cls}"
        if cls not in one_class:
            model = copy.deepcopy(base)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # save/load width warning: not relevant here
                cmap = specialise(model, [cls], names)
            one_class[cls] = (model, cmap, score(model, ClassSubset(test, cmap.classes), args))
        spec_model, cmap, s = one_class[cls]
        test_c = ClassSubset(test, cmap.classes)
        train_c, train_aug_c = ClassSubset(train, cmap.classes), ClassSubset(train_aug, cmap.classes)
        calib = loader(train_c, args, shuffle=True)
        # the reference of the paper's claim: the unpruned model fine-tuned on the kept class just as long
        reference = fine_tuned_reference(spec_model, cls, train_aug_c, args)
        t = score(reference, test_c, args)
        rows.append({"kept": key, "seed": seed, "criterion": "unpruned",
                     "macs_pct": 100 * count_macs(spec_model, x) / macs_full,
                     "map50": s["map50"], "f1": s["f1"], "map50_ft": t["map50"], "f1_ft": t["f1"]})
        print(f"[{(time.time() - started) / 60:5.1f} min] {key} seed {seed} unpruned {s} fine-tuned {t}", flush=True)
        teacher = None
        if args.distill != "none":  # a copy: the teacher is frozen, the one-class model is pruned again
            teacher = (reference if args.teacher == "reference" else copy.deepcopy(spec_model)).eval()
        del reference
        for crit in args.criteria:
            for target in args.macs:
                model = copy.deepcopy(spec_model)
                pruned, tuned, met = prune_and_tune(model, crit, target, x, calib, train_aug_c, test_c, args,
                                                    teacher=teacher)
                row = {"kept": key, "seed": seed, "criterion": crit, "target_pct": round(100 * target),
                       "macs_pct": 100 * count_macs(model, x) / macs_full,
                       "map50": pruned["map50"], "f1": pruned["f1"], "map50_ft": tuned["map50"], "f1_ft": tuned["f1"],
                       "target_met": met}
                rows.append(row)
                print(f"[{(time.time() - started) / 60:5.1f} min] {key} {crit} {row}", flush=True)
                save()
    print((args.out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
