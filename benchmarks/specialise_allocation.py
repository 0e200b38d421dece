"""Where does each schedule put the cut? Kept width per head branch after specialising to one class.

    uv run python benchmarks/specialise_allocation.py --classes Platelets

Companion of ``benchmarks/specialise.py`` (same data, baseline, calibration batches and seed; its
data and model arguments, e.g. ``--dataset synthetic --model yolov8s --img-size 320 --baseline F``,
are passed through, BCCD / yolov8n / 416 px by default): the one-class model is pruned to ``--macs``
of its MACs by each criterion under the global and the local schedule, and the kept fraction of
every conv's output channels is summarised: the box branch (``head.cv2``), the class branch
(``head.cv3``), the backbone (``stage*``), the neck (the rest), and the smallest. On YOLOv8 the box
branch never reaches a class score, so attribution scores it with its l1 fallback; this shows what
that does to a global ranking. Writes ``specialise_allocation.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

import detprune

sys.path.insert(0, str(Path(__file__).resolve().parent))
import specialise as spec  # noqa: E402  (the benchmark's data, baseline and criterion options)
from reproduce import command_line  # noqa: E402  (benchmarks/reproduce.py)
from detprune.specialise import ClassSubset, specialise  # noqa: E402


def kept_fractions(model: torch.nn.Module, before: dict[str, int]) -> dict[str, float]:
    after = {n: p.shape[0] for n, p in model.named_parameters() if p.dim() == 4}
    return {n: after[n] / before[n] for n in before if before[n] > 1}


def summary(kept: dict[str, float]) -> dict[str, float]:
    def mean(prefix: str) -> float:
        return float(np.mean([v for n, v in kept.items() if n.startswith(prefix)]))

    def short(name: str) -> str:
        return name.removesuffix(".weight").removesuffix(".conv")

    low = sorted(kept, key=kept.get)
    emptied = [short(n) for n in low if kept[n] <= 0.05]
    neck = [v for n, v in kept.items() if not n.startswith(("head.", "stage", "stem"))]
    return {"box": mean("head.cv2"), "cls": mean("head.cv3"), "backbone": mean("stage"),
            "neck": float(np.mean(neck)) if neck else float("nan"), "min": kept[low[0]],
            "emptied": ", ".join(emptied) or "-", "most_cut": ", ".join(f"{short(n)} {kept[n]:.2f}" for n in low[:3])}


HEADER = ("| kept class | schedule | criterion | box branch | class branch | backbone | neck | smallest "
          "| emptied convs | cut hardest |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", nargs="+", default=["Platelets"])
    ap.add_argument("--criteria", nargs="+", default=["attribution_labels", "attribution", "l1"])
    ap.add_argument("--macs", type=float, default=0.2)
    ap.add_argument("--out", type=Path, default=spec.REPO / "benchmarks" / "results")
    ap.add_argument("--seed", type=int, default=0)
    mine, passed = ap.parse_known_args()
    own = sys.argv[1:]
    sys.argv = [sys.argv[0], *passed]
    args = spec.parse_args()  # the data, model and baseline arguments of specialise.py
    args.seed = mine.seed
    torch.set_num_threads(args.threads)
    train_aug, train, _ = spec.data(args)
    names = list(train.names)
    base = spec.baseline(args, names, train_aug)
    x = torch.rand(1, 3, args.img_size, args.img_size)
    lines = ["# Kept width per head branch: global vs local schedule", "",
             f"Command: `{command_line('specialise_allocation.py', own)}`  ",
             f"{args.dataset} {args.model} baseline ({args.img_size} px) specialised to one class, pruned to "
             f"{mine.macs:.0%} of its MACs, seed {mine.seed}; mean kept fraction of the output channels of the convs "
             "in each part (1 = untouched), the smallest over all convs, the convs left with <= 5 % of their "
             "channels, and the three convs cut hardest.", "", HEADER, "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for cls in mine.classes:
        one = copy.deepcopy(base)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmap = specialise(one, [cls], names)
        calib = spec.loader(ClassSubset(train, cmap.classes), args, shuffle=True)
        goal = mine.macs * spec.count_macs(one, x)
        widths = {n: p.shape[0] for n, p in one.named_parameters() if p.dim() == 4}
        for schedule in ("global", "local"):
            for name in mine.criteria:
                model = copy.deepcopy(one)
                crit, kw = spec.criterion_kwargs(name, calib, args)
                detprune.prune(model, x, crit, target=f"macs={goal:.0f}", schedule=schedule, measure=False, **kw)
                s = summary(kept_fractions(model, widths))
                lines.append(f"| {cls} | {schedule} | {name} | {s['box']:.2f} | {s['cls']:.2f} | {s['backbone']:.2f} "
                             f"| {s['neck']:.2f} | {s['min']:.2f} | {s['emptied']} | {s['most_cut']} |")
                print(lines[-1], flush=True)
    mine.out.mkdir(parents=True, exist_ok=True)
    (mine.out / "specialise_allocation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
