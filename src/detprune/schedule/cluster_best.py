"""``cluster_prune(mode="best")``: prune once per pricing, keep the variant that is really faster.

The two cheap pricings of a cluster's latency saving err differently per model and runtime: the
per-layer table (``"table"``) sees every conv at the widths it really has, pricing a group's
layers alone (``"layers"``) keeps the layout conversions a layer pays inside a model. Measured on
six model / runtime pairs, each was the faster one on some pairs (benchmarks/latency.py, README).
Both candidates reach the same target, so the one to deploy is the one that runs faster: they
are timed side by side with the unpruned model on the target runtime and the faster one is kept.
Pruning takes twice as long (the latency tables are shared, so most timings are reused).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from detprune.deploy.side_by_side import compare
from detprune.graph.surgery import adopt

if TYPE_CHECKING:
    from detprune.schedule.cluster_prune import ClusterReport

PRICINGS = ("table", "layers")


def best_pricing(model: nn.Module, example_inputs: Any, target: Any, **options: Any) -> "ClusterReport":
    """:func:`~detprune.schedule.cluster_prune.cluster_prune` once per pricing in :data:`PRICINGS` on
    copies; ``model`` becomes the faster result; its report's ``compared`` holds both measurements."""
    from detprune.schedule.cluster_prune import cluster_prune

    was_training = model.training
    trials = [copy.deepcopy(model) for _ in PRICINGS]
    reports = [cluster_prune(trial, example_inputs, target, mode=mode, **options)
               for trial, mode in zip(trials, PRICINGS)]
    threads = options["threads"] or torch.get_num_threads()
    ms = compare([model, *trials], example_inputs, reports[0].runtime, threads, options["rounds"] + 2, options["calls"])
    best = int(np.argmin(ms[1:]))
    adopt(model, trials[best])
    model.train(was_training)  # timing left every variant in eval mode
    report = reports[best]
    report.mode = f"best: {PRICINGS[best]}"
    report.compared = {mode: float(ms[0] / t) for mode, t in zip(PRICINGS, ms[1:])}  # speed-up of each pricing
    return report
