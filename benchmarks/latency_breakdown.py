"""Where does the missing speed-up go? Per-node runtime profiles of the pruned variants of latency.py.

    uv run python benchmarks/latency_breakdown.py                  # the three models, ORT and OpenVINO
    uv run python benchmarks/latency_breakdown.py --models yolov8n --runtimes onnxruntime

``benchmarks/latency.py`` finds that half the MACs gives 1.5-1.8x, not 2x. Two explanations
predict different fixes: (a) the convolutions themselves run less efficiently at the pruned widths
(a kernel/SIMD effect, which cluster pruning attacks), or (b) the time goes to nodes whose cost
does not follow MACs (activations, concatenations, resizes, layout reorders), which no choice of
channel counts removes. The runtime's own per-node profiler (:mod:`detprune.deploy.profile`) splits
each variant's time by kind of node; for every variant the table gives

* ``conv ms / base`` against the MACs ratio: 1.0 would be convolutions exactly as efficient as before;
* the non-convolution share of the unpruned model's time;
* ``speed-up if conv ∝ MACs``: the speed-up the variant would have if its convolutions took exactly
  the MACs ratio of their unpruned time and every other node took what it measured. Its ratio to
  the MACs-implied speed-up is the ceiling (b) leaves, whatever the channel counts.

The variants are made exactly as in latency.py (same functions, same cached latency tables in
``--lut-dir``); profiles are medians over ``--runs`` runs, one thread. Profiling adds a little
time per node, so totals are a bit above latency.py's; the ratios are what this table is for.
Outputs: ``latency_breakdown.md`` / ``.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import METHODS, build, parser, variants  # noqa: E402  (the sibling benchmark's variants)

from detprune.deploy import count_macs  # noqa: E402
from detprune.deploy.profile import KINDS, by_kind, profile_module  # noqa: E402
from detprune.cache import cache_root  # noqa: E402
from reproduce import command_line  # noqa: E402  (benchmarks/reproduce.py)

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov8n", "torchvision:ssdlite320_mobilenet_v3_large"])
    ap.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--macs", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--num-classes", type=int, default=80)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--window", type=int, default=32, help="as latency.py (the cached tables were built with 32)")
    ap.add_argument("--lut-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    # the settings latency.py's variants() reads: latency.py's defaults, under this script's own
    return argparse.Namespace(**{**vars(parser().parse_args([])), **vars(ap.parse_args())})


def row(name: str, rt: str, method: str, kinds: dict[str, float], base: dict[str, float], macs: float) -> dict:
    total, base_total = sum(kinds.values()), sum(base.values())
    conv, base_conv = kinds["conv"] + kinds["depthwise conv"], base["conv"] + base["depthwise conv"]
    ideal = base_conv * macs + (total - conv)  # convolutions exactly as efficient as unpruned
    return {"model": name, "runtime": rt, "method": method, "macs": macs, "ms": total, "kinds": kinds,
            "speedup": base_total / total, "implied": 1 / macs, "conv_ratio": conv / base_conv,
            "other_share_base": 1 - base_conv / base_total, "other_ratio": (total - conv) / (base_total - base_conv),
            "ideal_speedup": base_total / ideal}


def markdown(rows: list[dict], args: argparse.Namespace, minutes: float) -> str:
    lines = ["# Where the speed-up goes: per-node profiles at matched MACs", "",
             f"Command: `{command_line('latency_breakdown.py', sys.argv[1:])}`  ",
             f"Input {args.size}x{args.size}, batch 1, 1 thread, MACs target {args.macs:.0%}, median of {args.runs} "
             f"profiled runs per node. Wall time {minutes:.1f} min.", "",
             "| model | runtime | variant | MACs % | profiled ms | " + " | ".join(f"{k} ms" for k in KINDS)
             + " | speed-up | MACs-implied | conv ms / base | other ms / base | speed-up if conv ∝ MACs "
               "(/ implied) |",
             "|---|---|---|---:|---:|" + "---:|" * len(KINDS) + "---:|---:|---:|---:|---:|"]
    for r in rows:
        kinds = " | ".join(f"{r['kinds'][k]:.2f}" for k in KINDS)
        extra = ("| | | | |" if r["method"] == "unpruned" else
                 f"| {r['speedup']:.2f} | {r['implied']:.2f} | {r['conv_ratio']:.2f} | {r['other_ratio']:.2f} | "
                 f"{r['ideal_speedup']:.2f} ({r['ideal_speedup'] / r['implied']:.2f}) |")
        lines.append(f"| {r['model'].split(':')[-1]} | {r['runtime']} | {r['method']} | {100 * r['macs']:.1f} | "
                     f"{r['ms']:.2f} | {kinds} {extra}")
    lines += ["", "Non-convolution share of the unpruned model's profiled time:", ""]
    for r in rows:
        if r["method"] == "unpruned":
            lines.append(f"- {r['model'].split(':')[-1]} / {r['runtime']}: {100 * r['other_share_base']:.1f} %")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    lut_dir = args.lut_dir or cache_root("latency-bench")
    lut_dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    started, rows = time.time(), []
    for name in args.models:
        base, x = build(name, args.size, args.num_classes)
        macs0 = count_macs(base, x)
        for rt in args.runtimes:
            print(f"[{time.time() - started:5.0f}s] {name} / {rt}: variants", flush=True)
            pruned, _ = variants(base, x, args.macs, rt, args, lut_dir, name)
            base_kinds = by_kind(profile_module(base, x, rt, threads=1, runs=args.runs))
            rows.append({**row(name, rt, "unpruned", base_kinds, base_kinds, 1.0)})
            for method in (m for m in METHODS if m in pruned):
                kinds = by_kind(profile_module(pruned[method], x, rt, threads=1, runs=args.runs))
                rows.append(row(name, rt, method, kinds, base_kinds, count_macs(pruned[method], x) / macs0))
            (args.out / "latency_breakdown.json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1,
                                                                        default=str))
            (args.out / "latency_breakdown.md").write_text(markdown(rows, args, (time.time() - started) / 60))
    print((args.out / "latency_breakdown.md").read_text())


if __name__ == "__main__":
    main()
