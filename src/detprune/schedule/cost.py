"""Analytic MACs and parameter count of a model *after* a planned removal, without pruning it.

A target search evaluates dozens of candidate removals; pruning a deep copy and re-counting
each time costs seconds per candidate, this costs microseconds. Both quantities are sums over
weight tensors of ``numel(weight) * multiplier`` (multiplier 1 for params; batch x output
positions for a conv, rows for a linear), and slicing a tensor scales its numel by the kept
fraction of each pruned dimension. That is exactly what ``count_macs`` (torch's FLOP counter)
counts for conv / linear layers; FLOPs it sees elsewhere (e.g. a matmul of two activations)
are kept constant (tests/schedule/test_targets.py compares it with real pruned copies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor, nn

from detprune.deploy.flops import count_macs, count_params
from detprune.graph.groups import Group

Removal = Mapping[int, np.ndarray]


def _macs_multipliers(model: nn.Module, example_inputs: Any) -> tuple[dict[int, float], int]:
    """Per conv/linear weight (by id): MACs per weight element, summed over calls; and total MACs."""
    mult: dict[int, float] = {}

    def hook(mod: nn.Module, args: tuple, out: Any) -> None:
        x = args[0] if args else None
        if not isinstance(x, Tensor) or not isinstance(out, Tensor):
            return
        w = mod.weight
        if isinstance(mod, nn.modules.conv._ConvNd):
            spatial = x.shape[2:] if mod.transposed else out.shape[2:]
            batch = x.shape[0] if x.dim() == w.dim() else 1
            m = batch * int(np.prod(spatial))
        else:
            m = x.numel() // max(1, mod.in_features)
        mult[id(w)] = mult.get(id(w), 0.0) + float(m)

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    try:
        total = count_macs(model, example_inputs)
    finally:
        for h in hooks:
            h.remove()
    return mult, total


class CostModel:
    """Predicts ``count_macs`` / ``count_params`` of the model once ``removal`` is applied."""

    def __init__(self, model: nn.Module, example_inputs: Any, groups: list[Group]) -> None:
        mult, self.macs_total = _macs_multipliers(model, example_inputs)
        self.params_total = count_params(model)
        params = {id(p): p for p in model.parameters()}
        self.groups = {g.index: g for g in groups}
        # tensor id -> (numel, MACs multiplier, is a parameter); slot dims -> (group, member) pairs
        self._tensors: dict[int, tuple[int, float, bool]] = {}
        self._dims: dict[int, list[tuple[int, int]]] = {}
        self._counts: dict[int, np.ndarray] = {}
        for g in groups:
            self._counts[g.index] = g.counts()
            for mi, m in enumerate(g.members):
                t = m.slot.tensor
                key = id(t)
                self._tensors[key] = (t.numel(), mult.get(key, 0.0), key in params)
                self._dims.setdefault(key, []).append((g.index, mi))

    def _fractions(self, removal: Removal) -> dict[tuple[int, int], float]:
        out = {}
        for gi, classes in removal.items():
            if len(classes) == 0:
                continue
            counts = self._counts[gi]
            gone = counts[:, np.asarray(classes, dtype=np.int64)].sum(axis=1)
            total = counts.sum(axis=1)
            for mi in np.flatnonzero(gone):
                out[(gi, int(mi))] = 1.0 - gone[mi] / total[mi]
        return out

    def predict(self, removal: Removal) -> dict[str, int]:
        """``{"macs": ..., "params": ...}`` after removing ``removal`` (group index -> classes)."""
        frac = self._fractions(removal)
        touched = {key for key, dims in self._dims.items() if any(d in frac for d in dims)}
        macs, params = float(self.macs_total), float(self.params_total)
        for key in touched:
            numel, mu, is_param = self._tensors[key]
            f = float(np.prod([frac.get(d, 1.0) for d in self._dims[key]]))
            macs -= numel * mu * (1.0 - f)
            if is_param:
                params -= numel * (1.0 - f)
        return {"macs": int(round(macs)), "params": int(round(params))}

    def macs(self, removal: Removal) -> int:
        return self.predict(removal)["macs"]

    def params(self, removal: Removal) -> int:
        return self.predict(removal)["params"]
