"""Time graph construction + pruning and peak memory for every zoo model, beside torch-pruning.

    uv run --group bench python benchmarks/graph.py            # writes benchmarks/results/graph.md

Each (tool, model) runs in a fresh subprocess so peak RSS is its own; time is the median of
``--repeats`` runs of "find groups + remove 50% of channels by random scores" on a fresh copy.
Times are CPU seconds of the process (``time.process_time``) with one torch thread, so that
other work on a shared machine inflates them far less than wall time; wall time is listed too.
torch-pruning gets the prediction layers as ``ignored_layers`` (as its users must pass them);
where it fails, the error is reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from reproduce import command_line  # benchmarks/reproduce.py

MODELS = ["yolov3-tiny", "yolov8n", "ultralytics:yolov8n.yaml", "ultralytics:yolo11n.yaml",
          "torchvision:fasterrcnn_mobilenet_v3_large_fpn", "torchvision:fasterrcnn_resnet50_fpn",
          "torchvision:retinanet_resnet50_fpn", "torchvision:ssd300_vgg16",
          "torchvision:ssdlite320_mobilenet_v3_large", "torchvision:fcos_resnet50_fpn"]

WORKER = r'''
import copy, json, resource, statistics, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
from detprune.zoo import load_model, example_inputs_for
import detprune
tool, spec, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
kw = {}
if spec.startswith("torchvision:") and "ssd" not in spec:
    from detprune.detection.adapters import build_torchvision
    base = build_torchvision(spec.split(":")[1], num_classes=80, min_size=320, max_size=320).eval()
else:
    base = load_model(spec, num_classes=80)
x = example_inputs_for(base, 320)
with torch.no_grad():
    base(copy.copy(x))
t0 = time.process_time()
with torch.no_grad():
    base(copy.copy(x))
forward = time.process_time() - t0
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times, walls = [], []
def prediction_layers(model):
    found = detprune.groups(model, x)
    return sorted({m.slot.module_path for g in found if g.prunable == 0 for m in g.members
                   if m.slot.role == "out" and isinstance(m.slot.module, (torch.nn.Conv2d, torch.nn.Linear))})
ignored = prediction_layers(copy.deepcopy(base)) if tool == "torch-pruning" else []
for _ in range(repeats):
    model = copy.deepcopy(base)
    t0, w0 = time.process_time(), time.perf_counter()
    if tool == "detprune":
        detprune.prune(model, x, criterion="random", ratio=0.5, measure=False)
    else:
        import torch_pruning as tp
        mods = dict(model.named_modules())
        ign = [mods[n] for n in ignored]
        pruner = tp.pruner.MetaPruner(model, x, importance=tp.importance.RandomImportance(), pruning_ratio=0.5,
                                      ignored_layers=ign, forward_fn=(lambda m, i: m(i)))
        pruner.step()
    times.append(time.process_time() - t0)
    walls.append(time.perf_counter() - w0)
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"seconds": statistics.median(times), "wall": statistics.median(walls), "forward": forward,
                  "params": params,
                  "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
                  "base_params": sum(p.numel() for p in base.parameters())}))
'''


def run(tool: str, spec: str, repeats: int, threads: int, timeout: int) -> dict:
    try:
        res = subprocess.run([sys.executable, "-c", WORKER, tool, spec, str(repeats), str(threads)],
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout}s"}
    if res.returncode != 0:
        last = [line for line in res.stderr.strip().splitlines() if line.strip()]
        return {"error": (last[-1] if last else f"exit {res.returncode}")[:120]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "graph.md")
    args = ap.parse_args()
    rows = ["| model | one forward, CPU s | detprune CPU s (wall s) | detprune peak MB | params kept | "
            "torch-pruning 1.6 CPU s (wall s) | torch-pruning peak MB | torch-pruning params kept |",
            "|---|---|---|---|---|---|---|---|"]
    for spec in args.models:
        ours = run("detprune", spec, args.repeats, args.threads, args.timeout)
        theirs = run("torch-pruning", spec, args.repeats, args.threads, args.timeout)

        def cells(r: dict) -> list[str]:
            if "error" in r:
                return [f"fails: {r['error']}", "-", "-"]
            return [f"{r['seconds']:.2f} ({r['wall']:.2f})", f"{r['peak_mb']:.0f}", f"{r['params'] / r['base_params']:.1%}"]

        fwd = f"{ours['forward']:.2f}" if "forward" in ours else "-"
        rows.append(f"| {spec} | {fwd} | " + " | ".join(cells(ours) + cells(theirs)) + " |")
        print(rows[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"Graph construction + removal of 50% of channels (random scores), 320x320 input, "
              f"{args.threads} torch thread(s), CPU seconds, median of {args.repeats}. Command: "
              f"`{command_line('graph.py', sys.argv[1:], uv_args=['--group', 'bench'])}`\n\n")
    args.out.write_text(header + "\n".join(rows) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
