"""benchmarks/sequential_mask.py: a masked count per stage, for the mask of the model being cut and the unpruned one."""

from __future__ import annotations

import copy

import torch

from detprune.detection.data import build_dataset, collate_fn
from detprune.detection.models import build_model


def test_counts_one_per_stage_and_the_unpruned_mask_does_not_go_empty(load_script, monkeypatch) -> None:
    bench = load_script("sequential_mask")
    monkeypatch.setattr("sys.argv", ["sequential_mask.py", "--dataset", "synthetic", "--macs", "0.3", "--calib-batches",
                                     "1", "--sequential-stages", "4", "--batch", "2", "--attribution", '{"tau": 0.5}'])
    args = bench.parse_args()
    args.seed = 0
    torch.manual_seed(0)
    model = build_model("yolov8n", num_classes=1, width=0.125).eval()
    with torch.no_grad():  # class logits far above tau = 0.5 everywhere in the unpruned model
        for branch in model.head.cv3:
            branch[-1].bias.fill_(10.0)
    ds = build_dataset("synthetic:4", "train", img_size=64, names=["mango"], seed=0)
    calib = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_fn)
    x = torch.rand(1, 3, 64, 64)
    cut, modules = bench.counts(copy.deepcopy(model), x, calib, args, {"mask_from": None})
    unpruned, same = bench.counts(copy.deepcopy(model), x, calib, args, {})
    assert len(cut) == len(unpruned) == len(modules) == 4 and same == modules
    assert all(n > 0 for n in unpruned)  # every stage explains the unpruned model's detections
