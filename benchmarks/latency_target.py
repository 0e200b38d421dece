"""Does cluster pruning reach a *measured latency* target? Target vs achieved, per model and runtime.

    uv run python benchmarks/latency_target.py --target 0.6
    uv run python benchmarks/latency_target.py --models yolov8n --runtimes openvino --target 0.7

For every model and runtime, ``cluster_prune(model, x, "latency=T@runtime", "l1")`` prunes until
a pruned copy, timed side by side with the model, is at most ``T`` times the unpruned latency
(the loop verifies candidates by real measurement, see ``detprune.schedule.cluster_prune``).
Then the unpruned and the pruned model are timed side by side ``--repeats`` more times, independently
of the pruning run, and the table reports the achieved fraction (median [min-max] over repeats),
whether it meets the target, and the MACs and params left. Inputs, threads and latency tables as
in ``benchmarks/latency.py`` (same ``--lut-dir``, so staircases measured there are reused).

Output: ``latency_target.md`` and ``latency_target.json`` in ``--out``.
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

from latency import build  # benchmarks/latency.py: the same models and inputs

from detprune.deploy import count_macs, count_params
from detprune.schedule.cluster_prune import cluster_prune
from detprune.cache import cache_root
from detprune.deploy.side_by_side import compare
from reproduce import command_line  # benchmarks/reproduce.py

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov8n", "torchvision:ssdlite320_mobilenet_v3_large"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--target", type=float, default=0.6, help="latency goal, fraction of the unpruned model")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--lut-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    lut_dir = args.lut_dir or cache_root("latency-bench")
    args.out.mkdir(parents=True, exist_ok=True)
    started, rows = time.time(), []
    for name in args.models:
        base, x = build(name, args.size, 80)
        macs0, params0 = count_macs(base, x), count_params(base)
        for rt in args.runtimes:
            model, t0 = copy.deepcopy(base), time.time()
            lut = lut_dir / f"{name.replace(':', '_')}-{rt}-t{args.threads}-{args.size}.json"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rep = cluster_prune(model, x, f"latency={args.target}@{rt}", "l1", threads=args.threads, lut=lut,
                                    window=args.window)
            seconds = time.time() - t0
            reps = [compare([base, model], x, rt, args.threads, args.rounds, 3) for _ in range(args.repeats)]
            frac = [float(r[1] / r[0]) for r in reps]
            rows.append({"model": name, "runtime": rt, "target": args.target, "achieved": statistics.median(frac),
                         "achieved_min": min(frac), "achieved_max": max(frac),
                         "pruning_run": rep.latency_after_ms / rep.latency_before_ms,
                         "macs_pct": 100 * count_macs(model, x) / macs0, "params_pct": 100 * count_params(model) / params0,
                         "steps": len(rep.steps), "measurements": rep.measurements, "seconds": round(seconds, 1)})
            print(f"[{time.time() - started:6.0f}s] {name} / {rt}: {rows[-1]}", flush=True)
            (args.out / "latency_target.json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1,
                                                                     default=str))
            (args.out / "latency_target.md").write_text(markdown(rows, args, started))
    print((args.out / "latency_target.md").read_text())


def markdown(rows: list[dict], args: argparse.Namespace, started: float) -> str:
    lines = [
        "# Cluster pruning to a measured latency target",
        "",
        f"Command: `{command_line('latency_target.py', sys.argv[1:])}`  ",
        f"Target: latency <= {args.target:.0%} of the unpruned model on the runtime, L1 criterion, random weights, "
        f"{args.size}x{args.size}, batch 1, {args.threads} thread(s). *Achieved*: pruned / unpruned latency timed side "
        f"by side after pruning ({args.rounds} interleaved rounds x 3 calls, minimum per model), median over "
        f"{args.repeats} repeats [min-max]; *pruning run*: the same ratio as the pruning run's own final check. "
        f"Total wall time {(time.time() - started) / 60:.1f} min.",
        "",
        "| model | runtime | target | achieved | met | pruning run | MACs % | params % | greedy steps | layer timings | s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        met = "yes" if r["achieved"] <= r["target"] else "no"
        lines.append(f"| {r['model']} | {r['runtime']} | {r['target']:.0%} | {r['achieved']:.1%} "
                     f"[{r['achieved_min']:.1%}-{r['achieved_max']:.1%}] | {met} | {r['pruning_run']:.1%} | "
                     f"{r['macs_pct']:.1f} | {r['params_pct']:.1f} | {r['steps']} | {r['measurements']} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
