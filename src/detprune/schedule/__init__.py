"""How many channels each group loses: local ratios, global ranking, per-layer ratios, targets,
cluster (latency-staircase) pruning, iterative and layer-by-layer (sequential) pruning and sensitivity analysis.

The allocation side is imported eagerly (``detprune.prune`` uses it); the measuring side
(cluster pruning, latency tables, iterative pruning, sensitivity) loads on first use, since it
pulls in the ONNX / OpenVINO runtimes.
"""

from importlib import import_module
from typing import Any

from detprune.schedule.allocate import SCHEDULES, Allocation, LatencySettings, knob_plan, plan, reach_target
from detprune.schedule.global_rank import GlobalRanking, global_ranking, global_removal, normalised
from detprune.schedule.layerwise import dump_ratios, group_key, layerwise_removal, load_ratios, resolve_ratios
from detprune.schedule.local import local_removal, n_to_remove
from detprune.schedule.select import removal_order, select_lowest
from detprune.schedule.target import Target, TargetResult, bisect_knob

_LAZY = {
    "CostModel": "cost", "ClusterReport": "cluster_prune", "cluster_prune": "cluster_prune", "build_lut": "cluster_prune",
    "ClusterState": "cluster", "greedy_clusters": "cluster", "GroupLatency": "layer_latency",
    "LatencyLUT": "lut", "LatencyLUTWarning": "lut", "derive_cluster": "staircase", "StaircaseWarning": "staircase",
    "iterative_prune": "iterative", "IterativeResult": "iterative", "step_ratios": "iterative",
    "sequential_prune": "sequential",
    "sensitivity": "sensitivity", "SensitivityResult": "sensitivity", "pruned_copy": "preview",
}

__all__ = ["SCHEDULES", "Allocation", "GlobalRanking", "LatencySettings", "Target", "TargetResult", "bisect_knob",
           "dump_ratios", "global_ranking", "global_removal", "group_key", "knob_plan", "layerwise_removal",
           "load_ratios", "local_removal", "n_to_remove", "normalised", "plan", "reach_target", "removal_order",
           "resolve_ratios", "select_lowest", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"detprune.schedule.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'detprune.schedule' has no attribute {name!r}")
