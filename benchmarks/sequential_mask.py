"""Does attribution's spatial mask survive layer-by-layer pruning? Class scores passing it, stage by stage.

    uv run python benchmarks/sequential_mask.py --dataset synthetic --classes mango --model yolov8s --img-size 320 \
        --baseline ~/.cache/detprune/baselines/synthetic-yolov8s-320-e40.safetensors --macs 0.2 --threads 1 \
        --seeds 0 --out benchmarks/results/sequential_mask

Takes ``benchmarks/specialise.py``'s arguments and uses the first kept class, seed and ``--macs``
(``--sequential-stages``: as there). The specialised baseline is cut by
:func:`detprune.schedule.sequential_prune` with the paper's attribution twice: with the mask taken from
the model being cut (``mask_from=None``) and from the unpruned model (the default). Each stage records
how many class scores passed the mask on its calibration batches; where none did, every attribution
score is 0 and the l1 fallback chose that group's channels. No fine-tuning.
Writes ``sequential_mask.md`` / ``.json`` in ``--out``.
"""

from __future__ import annotations

import copy
import json
import sys
import time
import warnings

import numpy as np
import torch

from detprune.criteria import CRITERIA
from detprune.criteria.attribution import Attribution
from detprune.deploy import count_macs
from detprune.detection.train import seed_everything
from detprune.schedule import sequential_prune
from detprune.specialise import ClassSubset, specialise
from reproduce import command_line  # benchmarks/reproduce.py
from specialise import baseline, criterion_kwargs, data, loader, parse_args  # benchmarks/specialise.py

COUNTS: list[int] = []


class CountedAttribution(Attribution):
    """The paper's attribution, recording how many scores passed the spatial mask in each prepare()."""

    name = "attribution_counted"

    def prepare(self, model, groups, data=None, **kwargs) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the empty-mask warning: counted here instead
            super().prepare(model, groups, data=data, **kwargs)
        COUNTS.append(self.masked)


def counts(model, x, calib, args, mask_from: dict) -> tuple[list[int], list[str]]:
    """Masked counts per stage and each stage's first module, for one way of taking the mask."""
    COUNTS.clear()
    _, kw = criterion_kwargs("attribution", calib, args)
    seed_everything(args.seed)
    goal = args.macs[0] * count_macs(model, x)
    CRITERIA[CountedAttribution.name] = CountedAttribution  # by name, as sequential_prune hands over the reference
    try:
        report = sequential_prune(model, x, CountedAttribution.name, target=f"macs={goal:.0f}",
                                  stages=args.sequential_stages, **kw, **mask_from)
    finally:
        del CRITERIA[CountedAttribution.name]  # not a criterion users can pick
    n = len(COUNTS)  # the stages split the groups in trace order as sequential_prune does
    firsts = [int(c[0]) for c in np.array_split(np.arange(len(report.groups)), n)]
    return list(COUNTS), [report.groups[i].modules[0] for i in firsts]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    args.seed, cls = args.seeds[0], (args.classes or ["mango"])[0]
    train_aug, train, _ = data(args)
    names = list(train.names)
    spec = copy.deepcopy(baseline(args, names, train_aug))
    cmap = specialise(spec, [cls], names)
    calib = loader(ClassSubset(train, cmap.classes), args, shuffle=True)
    x = torch.rand(1, 3, args.img_size, args.img_size)
    cut, modules = counts(copy.deepcopy(spec), x, calib, args, {"mask_from": None})
    calib = loader(ClassSubset(train, cmap.classes), args, shuffle=True)  # the same batches again
    unpruned, _ = counts(copy.deepcopy(spec), x, calib, args, {})
    rows = [{"stage": i + 1, "group": m, "masked_model_being_cut": a, "masked_unpruned": b}
            for i, (m, a, b) in enumerate(zip(modules, cut, unpruned))]
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"rows": rows, "args": vars(args)}
    (args.out / "sequential_mask.json").write_text(json.dumps(record, indent=1, default=str))
    empty = [r["stage"] for r in rows if r["masked_model_being_cut"] == 0]
    lines = ["# Attribution's spatial mask during layer-by-layer pruning", "",
             f"Command: `{command_line('sequential_mask.py', sys.argv[1:])}`  ",
             f"{args.model}, class {cls}, seed {args.seed}, {round(100 * args.macs[0])} % of the MACs, "
             f"{args.calib_batches} calibration batches of {args.batch} per stage. "
             f"Wall time {(time.time() - started) / 60:.1f} min.", "",
             "Class scores passing the spatial mask (probability >= tau) per stage; 0 means every attribution score "
             "of that stage was 0 and the l1 fallback chose the group's channels.", "",
             "| stage | group (first module) | mask of the model being cut | mask of the unpruned model |",
             "|---:|---|---:|---:|"]
    lines += [f"| {r['stage']} | `{r['group']}` | {r['masked_model_being_cut']} | {r['masked_unpruned']} |"
              for r in rows]
    lines += ["", f"Stages with an empty mask when it is taken from the model being cut: {len(empty)} of {len(rows)} "
              f"({', '.join(map(str, empty)) or 'none'}); from the unpruned model: "
              f"{sum(r['masked_unpruned'] == 0 for r in rows)}."]
    (args.out / "sequential_mask.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
