"""Does pruning to the runtime's natural width pay? Cluster pruning vs plain and rounded ratios at matched MACs.

    uv run python benchmarks/latency.py --models yolov3-tiny --runtimes onnxruntime openvino
    uv run python benchmarks/latency.py --models yolov3-tiny yolov8n torchvision:ssdlite320_mobilenet_v3_large
    uv run python benchmarks/latency.py --quick          # yolov3-tiny at 160 px, few measurements

For every model the same MACs target (``--macs``, fraction of the unpruned model) is reached four
ways, all with the L1 criterion:

* ``ratio``   ``detprune.prune(target="macs=M")``: one local ratio for every group, any width;
* ``round8``  the same with ``round_to=8`` (widths multiples of 8);
* ``global``  one global ranking of normalised scores (``schedule="global"``), any width;
* ``cluster`` cluster pruning (Gamanayake et al. 2020) on the runtime being measured: staircases
  of each group's layers measured on that runtime, cluster sizes derived from their steps, greedy
  removal of whole clusters by latency saved per importance lost until the MACs target;
* ``narrower`` (built-in YOLOs only) not pruning: the same architecture built with a smaller width
  multiplier (MACs closest to the target, every width a multiple of 8), a reference for what this
  runtime gives a network that is regular and that narrow by design.

Then the unpruned model and the four variants are timed *side by side* (interleaved rounds, minimum
per variant; see ``detprune.deploy.side_by_side``) ``--repeats`` times on each runtime. The table
reports the median over repeats of the speed-up (unpruned / variant, both from the same repeat),
its range, the MACs-implied speed-up (unpruned MACs / variant MACs) and their ratio ("efficiency":
how much of the theoretical gain the runtime delivers). Weights are random (latency does not depend
on them); torchvision models are timed as backbone + head (their resize transform and NMS do not
change with pruning). Threads default to 1: the machine this was written on is shared, and the
staircase structure (SIMD blocking) does not depend on the thread count.

Outputs in ``--out`` (default ``benchmarks/results``): ``latency.md``, ``latency.json``,
``latency.png`` (speed-ups) and ``latency_staircases_<model>_<runtime>.png`` (measured staircases).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import detprune
from detprune.deploy import count_macs, count_params
from detprune.schedule.cluster_prune import cluster_prune
from detprune.cache import cache_root
from detprune.schedule.lut import LatencyLUT
from detprune.deploy.side_by_side import compare
from reproduce import command_line  # benchmarks/reproduce.py

REPO = Path(__file__).resolve().parents[1]
METHODS = ("ratio", "round8", "global", "cluster", "narrower")


class TorchvisionCore(nn.Module):
    """Backbone + head of a torchvision single-stage detector on a normalised tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feats = self.backbone(x)
        out = self.head(list(feats.values()) if isinstance(feats, dict) else feats)
        return out["bbox_regression"], out["cls_logits"]


def build(name: str, size: int, num_classes: int) -> tuple[nn.Module, Tensor]:
    torch.manual_seed(0)
    if name.startswith("torchvision:"):
        from detprune.detection.adapters import build_torchvision

        model = TorchvisionCore(build_torchvision(name.split(":", 1)[1], num_classes))
    else:
        from detprune.detection.models import build_model

        model = build_model(name, num_classes)
    return model.eval(), torch.rand(1, 3, size, size)


def variants(base: nn.Module, x: Tensor, macs: float, runtime: str, args: argparse.Namespace,
             lut_dir: Path, name: str) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """The pruned variants of ``base`` (cluster pruning targets ``runtime``) and how they were made."""
    out, info = {}, {}
    for method in METHODS:
        model = copy.deepcopy(base)
        t0 = time.time()
        if method == "narrower":
            if name.startswith("torchvision:"):
                continue
            model, width = narrower(name, base, x, macs, args.num_classes)
            info[method] = {"width": width}
        elif method == "cluster":
            lut = lut_dir / f"{name.replace(':', '_')}-{runtime}-t{args.threads}-{args.size}.json"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rep = cluster_prune(model, x, f"macs={macs}", "l1", runtime=runtime, threads=args.threads,
                                    lut=lut, window=args.window, probe_step=args.probe_step,
                                    rounds=args.probe_rounds, calls=args.probe_calls,
                                    cluster=args.cluster, min_cluster=args.min_cluster, mode=args.mode)
            last = rep.steps[-1].estimate_ms if rep.steps else rep.latency_before_ms
            sizes = sorted({c for c, _ in rep.clusters.values()})
            info[method] = {"clusters": {k: list(v) for k, v in rep.clusters.items()},
                            "staircases_found": sum(src == "staircase" for _, src in rep.clusters.values()),
                            "groups": len(rep.clusters), "cluster_sizes": sizes, "steps": len(rep.steps),
                            "measurements": rep.measurements, "warnings": len(caught), "lut": str(rep.lut_path),
                            "estimate_ms": round(last, 2), "measured_ms": round(rep.latency_after_ms, 2),
                            "mode": rep.mode, "compared": {k: round(v, 3) for k, v in rep.compared.items()}}
        else:
            kw = {"ratio": {}, "round8": {"round_to": 8}, "global": {"schedule": "global"}}[method]
            rep = detprune.prune(model, x, "l1", target=f"macs={macs}", measure=False, **kw)
            info[method] = {"knob": rep.target.knob}
        info[method]["seconds"] = round(time.time() - t0, 1)
        out[method] = model.eval()
    return out, info


def narrower(name: str, base: nn.Module, x: Tensor, macs: float, num_classes: int) -> tuple[nn.Module, float]:
    """The same architecture built with a smaller width multiplier, MACs closest to the target:
    regular (multiple-of-8) widths everywhere, i.e. what a runtime gives a network designed that narrow."""
    from detprune.detection.models import build_model

    target, full = macs * count_macs(base, x), base.spec["width"]
    best: tuple[float, nn.Module, float] | None = None
    for f in np.linspace(0.5, 0.9, 17):
        torch.manual_seed(0)
        m = build_model(name, num_classes, width=full * f).eval()
        gap = abs(count_macs(m, x) - target)
        if best is None or gap < best[0]:
            best = (gap, m, round(full * f, 4))
    return best[1], best[2]


def measure(models: list[nn.Module], x: Tensor, runtime: str, args: argparse.Namespace) -> list[list[float]]:
    """``repeats`` side-by-side timings (ms) of ``models``; one row per repeat."""
    return [list(map(float, compare(models, x, runtime, args.threads, args.rounds, args.calls)))
            for _ in range(args.repeats)]


def plot_speedups(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["model"], r["runtime"]) for r in rows}, key=lambda k: (k[0], k[1]))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(keys)), 4))
    width = 0.8 / len(METHODS)
    for j, method in enumerate(METHODS):
        xs, ys, lo, hi, implied = [], [], [], [], []
        for i, key in enumerate(keys):
            r = next((r for r in rows if (r["model"], r["runtime"]) == key and r["method"] == method), None)
            if r is None:
                continue
            xs.append(i + (j - (len(METHODS) - 1) / 2) * width)
            ys.append(r["speedup"])
            lo.append(r["speedup"] - r["speedup_min"])
            hi.append(r["speedup_max"] - r["speedup"])
            implied.append(r["implied"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=method)
        ax.scatter(xs, implied, marker="_", s=200, color="black", zorder=3, label="MACs-implied" if j == 0 else None)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{m.split(':')[-1]}\n{rt}" for m, rt in keys], fontsize=8)
    ax.set_ylabel("speed-up vs unpruned (side by side)")
    ax.set_title("matched MACs: measured speed-up (bars) vs MACs-implied (black)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_staircases(lut_path: Path, path: Path, show: int = 6) -> None:
    """The probed staircases of a latency table (the entries a cluster size was derived from)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lut = LatencyLUT.load(lut_path)
    probed = [e for e in lut.entries.values() if "cluster" in e and len(e["points"]) >= 4]
    probed.sort(key=lambda e: -max(map(float, e["points"].values())))
    if not probed:
        return
    fig, axes = plt.subplots(1, min(show, len(probed)), figsize=(3 * min(show, len(probed)), 3), squeeze=False)
    for ax, e in zip(axes[0], probed[:show]):
        pts = sorted((int(k), float(v)) for k, v in e["points"].items())
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ".-", lw=0.8)
        c = int(e["cluster"])
        for k in range(pts[0][0] // c * c, pts[-1][0] + 1, c):
            ax.axvline(k + 0.5, color="grey", lw=0.4, ls=":")
        ax.set_title(f"{e['label']}\ncluster {c} ({e.get('cluster_source')})", fontsize=7)
        ax.set_xlabel("kept channels", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel(f"ms ({lut.runtime}, min)", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(rows: list[dict], info: dict, args: argparse.Namespace, started: float) -> str:
    lines = [
        "# Latency at matched MACs: cluster pruning vs ratio pruning",
        "",
        f"Command: `{command_line('latency.py', sys.argv[1:])}`  ",
        f"Input {args.size}x{args.size}, batch 1, {args.threads} thread(s), MACs target {args.macs:.0%}, "
        f"L1 criterion, random weights. Each speed-up is unpruned / variant measured side by side "
        f"({args.rounds} interleaved rounds x {args.calls} calls, minimum per variant), median over "
        f"{args.repeats} repeats [min-max]. Total wall time {(time.time() - started) / 60:.1f} min.",
        "",
        "| model | runtime | method | MACs % | params % | ms (min) | measured speed-up | MACs-implied | measured / implied |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['method']} | {r['macs_pct']:.1f} | {r['params_pct']:.1f} | "
                     f"{r['ms']:.2f} | {r['speedup']:.2f} [{r['speedup_min']:.2f}-{r['speedup_max']:.2f}] | "
                     f"{r['implied']:.2f} | {r['speedup'] / r['implied']:.2f} |")
    lines += ["", "Cluster pruning details (per model and runtime; *estimated* is the start latency minus the savings the "
              "greedy loop priced, never corrected by a measurement under a MACs target: below the measured value, "
              "or even below 0, where layers timed alone add up to more time than they take inside the model):", ""]
    for key, methods in info.items():
        c = methods.get("cluster", {})
        if c:
            lines.append(f"- {key}: {c['staircases_found']}/{c['groups']} cluster sizes from measured staircases, "
                         f"sizes used {c['cluster_sizes']}, {c['steps']} greedy steps, {c['measurements']} "
                         f"width measurements, estimated {c['estimate_ms']} ms vs measured {c['measured_ms']} ms "
                         f"after pruning, {c['seconds']} s (others: "
                         + ", ".join(f"{m} {v['seconds']} s" for m, v in methods.items() if m != "cluster") + ")")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov8n", "torchvision:ssdlite320_mobilenet_v3_large"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--macs", type=float, default=0.5, help="MACs target, fraction of the unpruned model")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--num-classes", type=int, default=80)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per side-by-side timing")
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--window", type=int, default=48, help="staircase probe: widths below the full width")
    ap.add_argument("--probe-step", type=int, default=2)
    ap.add_argument("--probe-rounds", type=int, default=5)
    ap.add_argument("--probe-calls", type=int, default=3)
    ap.add_argument("--cluster", type=int, default=None, help="skip staircases, use this cluster size")
    ap.add_argument("--min-cluster", type=int, default=None, help="raise smaller staircase sizes to this")
    ap.add_argument("--mode", default="table", choices=("table", "layers", "model", "best"),
                    help="how cluster pruning prices a step (detprune.schedule.cluster_prune)")
    ap.add_argument("--lut-dir", type=Path, default=None,
                    help="where latency tables are kept and reused (default: the detprune cache, latency-bench/)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--quick", action="store_true", help="yolov3-tiny at 160 px, fewer measurements")
    return ap


def main() -> None:
    args = parser().parse_args()
    if args.quick:
        args.models, args.size, args.repeats, args.rounds, args.window = ["yolov3-tiny"], 160, 2, 3, 24
        args.probe_rounds, args.probe_calls = 2, 2
    args.out.mkdir(parents=True, exist_ok=True)
    lut_dir = args.lut_dir or cache_root("latency-bench")
    lut_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rows, info = [], {}
    for name in args.models:
        base, x = build(name, args.size, args.num_classes)
        macs0, params0 = count_macs(base, x), count_params(base)
        for rt in args.runtimes:
            print(f"[{time.time() - started:6.0f}s] {name} on {rt}: pruning", flush=True)
            pruned, made = variants(base, x, args.macs, rt, args, lut_dir, name)
            info[f"{name} / {rt}"] = made
            print(f"[{time.time() - started:6.0f}s] {name} on {rt}: timing {made}", flush=True)
            methods = [m for m in METHODS if m in pruned]
            reps = measure([base] + [pruned[m] for m in methods], x, rt, args)
            for j, method in enumerate(methods, start=1):
                speed = [r[0] / r[j] for r in reps]
                m = pruned[method]
                macs = count_macs(m, x)
                rows.append({"model": name, "runtime": rt, "method": method, "macs_pct": 100 * macs / macs0,
                             "params_pct": 100 * count_params(m) / params0, "ms": min(r[j] for r in reps),
                             "base_ms": min(r[0] for r in reps), "speedup": statistics.median(speed),
                             "speedup_min": min(speed), "speedup_max": max(speed), "implied": macs0 / macs,
                             "repeats": reps})
            lut = Path(made["cluster"]["lut"])
            if lut.is_file():
                plot_staircases(lut, args.out / f"latency_staircases_{name.replace(':', '_')}_{rt}.png")
            # write as we go: a long run that is interrupted still leaves its tables
            (args.out / "latency.json").write_text(json.dumps({"rows": rows, "info": info, "args": vars(args)},
                                                              indent=1, default=str))
            (args.out / "latency.md").write_text(markdown(rows, info, args, started))
            plot_speedups(rows, args.out / "latency.png")
    print((args.out / "latency.md").read_text())


if __name__ == "__main__":
    main()
