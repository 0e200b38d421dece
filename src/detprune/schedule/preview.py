"""Apply a planned removal to a deep copy, so a search can measure candidates the model never sees."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from detprune.deploy.latency import measure_latency
from detprune.graph.groups import Group
from detprune.graph.surgery import refresh_submodules, remove_channels


def pruned_copy(model: nn.Module, groups: list[Group], removal: Mapping[int, np.ndarray]) -> nn.Module:
    """A pruned deep copy of ``model``; the groups are copied with it so their slots point into the copy."""
    model_copy, groups_copy = copy.deepcopy((model, groups))
    remove_channels(groups_copy, {k: np.asarray(v) for k, v in removal.items()})
    refresh_submodules(model_copy)
    return model_copy


def removal_latency(model: nn.Module, groups: list[Group], removal: Mapping[int, np.ndarray], example_inputs: Any,
                    runtime: str = "torch", warmup: int = 3, runs: int = 15, threads: int | None = None) -> float:
    """Median latency (ms) of ``model`` pruned by ``removal`` on ``runtime``."""
    target = pruned_copy(model, groups, removal) if any(len(v) for v in removal.values()) else model
    return measure_latency(target, example_inputs, runtime=runtime, warmup=warmup, runs=runs,
                           threads=threads).median_ms
