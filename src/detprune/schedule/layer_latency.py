"""Measured latency of one coupling group as a function of its kept width.

``mode="layers"`` (default, fast) times only the group's member layers (the convs producing its
channels, their norms, and the layers consuming them) on their real input shapes, recorded
from one forward of the model; ``mode="model"`` times the whole model with only that group
narrowed (slow, but it includes fusion and memory effects the isolated layers miss).
Widths are measured in batches, side by side (see :mod:`~detprune.deploy.side_by_side`), and
stored in a :class:`~detprune.schedule.lut.LatencyLUT` under a signature of the layers' shapes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import Counter
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from detprune.graph.groups import Group
from detprune.graph.surgery import remove_channels
from detprune.inputs import call_model, flatten_tensors
from detprune.schedule.lut import LatencyLUT
from detprune.schedule.preview import pruned_copy
from detprune.deploy.side_by_side import clock_of, make_runner, time_interleaved
from detprune.schedule.cluster import block_signatures, producer_blocks_order
from detprune.schedule.select import removal_order, select_lowest
from detprune.schedule.staircase import ClusterFit, derive_cluster

MODES = ("layers", "model")
PRICING_MODES = MODES + ("table", "best")  # cluster_prune(mode=...): these, the per-layer table, or the faster of two


def input_width(module: nn.Module) -> tuple[int, int] | None:
    """(axis, size) of the channel axis of the module's input, or None for layers we cannot resize."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return 1, module.in_channels
    if isinstance(module, nn.Linear):
        return -1, module.in_features
    norm = isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) or \
        type(module).__name__ == "FrozenBatchNorm2d"
    if norm:
        ref = getattr(module, "weight", None)
        ref = ref if ref is not None else getattr(module, "running_mean", None)
        return (1, int(ref.shape[0])) if ref is not None else None
    return None


def record_input_shapes(model: nn.Module, example_inputs: Any, modules: list[nn.Module]) -> dict[int, list[torch.Size]]:
    """id(module) -> shapes of the first input of each of its calls, from one eval forward."""
    wanted = {id(m): m for m in modules}
    shapes: dict[int, list[torch.Size]] = {}

    def hook(mod: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], Tensor) and not list(mod.children()):
            shapes.setdefault(id(mod), []).append(args[0].shape)

    hooks = [m.register_forward_pre_hook(hook) for m in wanted.values()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            call_model(model, copy.copy(example_inputs), strict=True)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return shapes


class Bench(nn.Module):
    """Runs each layer on its own input: the group's layers, without the rest of the network."""

    def __init__(self, layers: list[nn.Module], calls: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.calls = calls

    def forward(self, *xs: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.layers[i](x) for i, x in zip(self.calls, xs))


class GroupLatency:
    """``latency(group_index, kept) -> ms`` for the groups of one (traced) model state."""

    def __init__(self, model: nn.Module, example_inputs: Any, groups: list[Group], runtime: str = "torch",
                 mode: str = "layers", lut: LatencyLUT | None = None, threads: int | None = None,
                 rounds: int = 5, calls: int = 3) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model, self.example_inputs, self.runtime, self.mode = model, example_inputs, runtime, mode
        self.threads = torch.get_num_threads() if threads is None else int(threads)
        self.lut = lut or LatencyLUT(runtime, self.threads)
        self.rounds, self.calls = rounds, calls
        self.groups = {g.index: g for g in groups}
        self.grid: dict[int, tuple[int, int]] = {}  # group -> (cluster, floor): widths worth prefetching
        self.measured = 0  # variants timed (not served from the table)
        self._sig: dict[int, str] = {}
        self._priced: dict[tuple[int, int], np.ndarray | None] = {}
        self._last: dict[int, int] = {}
        members = [m.slot.module for g in groups for m in g.members]
        self._shapes: dict[int, list[torch.Size]] = \
            record_input_shapes(model, example_inputs, members) if mode == "layers" else {}

    def layers(self, gi: int) -> list[nn.Module]:
        """The member layers timed in ``layers`` mode (called in the forward, resizable)."""
        seen: dict[int, nn.Module] = {}
        for m in self.groups[gi].members:
            mod = m.slot.module
            if id(mod) in self._shapes and input_width(mod) is not None:
                seen.setdefault(id(mod), mod)
        return list(seen.values())

    def measurable(self, gi: int) -> bool:
        return self.mode == "model" or bool(self.layers(gi))

    def signature(self, gi: int) -> str:
        if gi not in self._sig:
            g = self.groups[gi]
            desc: dict[str, Any] = {"mode": self.mode, "members": [m.label for m in g.members]}
            if self.mode == "layers":
                desc["layers"] = [[type(m).__name__, [list(p.shape) for p in m.parameters(recurse=False)],
                                   [list(s) for s in self._shapes[id(m)]]] for m in self.layers(gi)]
            else:
                desc["model"] = [[n, list(p.shape)] for n, p in self.model.named_parameters()]
                desc["input"] = [list(t.shape) for t in flatten_tensors(self.example_inputs)]
            self._sig[gi] = hashlib.sha1(json.dumps(desc).encode()).hexdigest()[:16]
        return self._sig[gi]

    def label(self, gi: int) -> str:
        g = self.groups[gi]
        return next((m.slot.module_path for m in g.members if m.slot.role == "out"), g.members[0].slot.module_path)

    def priced_order(self, gi: int) -> np.ndarray | None:
        """The removal order that priced widths of a group fed by several producers follow, once
        its cluster size is known (:attr:`grid`): whole clusters per producer, spread over the
        producers in proportion to their widths, as cluster pruning removes them. ``None``: the
        plain index order (one block, no cluster yet, or blocks no multiple of it).

        The greedy's own order depends on importance, which a table keyed by width cannot hold;
        the index order would time only the first producer narrowed (yolov8n's 256-wide concat
        group at 192 kept: one conv at 1 channel, the next at 127, which no pruning step makes).
        """
        if gi not in self.grid:
            return None
        key = (gi, self.grid[gi][0])
        if key not in self._priced:
            g = self.groups[gi]
            counts = g.counts()
            order = removal_order(g, np.zeros(g.size))
            blocks = block_signatures(counts)
            sizes, seen = Counter(blocks), Counter()
            depth = np.zeros(g.size)  # how far into its block a class is: equal depths, equal shares
            for c in order.tolist():
                depth[c] = seen[blocks[c]] / sizes[blocks[c]]
                seen[blocks[c]] += 1
            spread = producer_blocks_order(counts, order, depth, key[1])
            self._priced[key] = None if spread is order else spread
        return self._priced[key]

    def priced_signature(self, gi: int) -> str:
        """Table key of the widths the greedy asks for: the staircase's unless :meth:`priced_order` differs."""
        return self.signature(gi) if self.priced_order(gi) is None else f"{self.signature(gi)}/c{self.grid[gi][0]}"

    # ------------------------------------------------------------------ measuring
    def _variant(self, gi: int, kept: int, order: np.ndarray | None = None) -> tuple[nn.Module, Any]:
        g = self.groups[gi]
        if order is not None and len(order) >= g.size - kept:  # below it (tails short of a cluster): index order
            removal = {gi: np.sort(order[: g.size - kept])}
        else:
            removal = {gi: select_lowest(g, np.zeros(g.size), g.size - kept)}
        if len(removal[gi]) != g.size - kept:
            raise ValueError(f"group {gi} cannot be narrowed to {kept} channels (pinned or member layers emptied)")
        if self.mode == "model":
            return pruned_copy(self.model, list(self.groups.values()), removal), self.example_inputs
        memo: dict[int, Any] = {}
        g_copy = copy.deepcopy(g, memo)
        remove_channels([g_copy], {g_copy.index: removal[gi]})
        gen = torch.Generator().manual_seed(0)
        layers, calls, inputs = [], [], []
        for i, orig in enumerate(self.layers(gi)):
            new = memo[id(orig)]
            new.eval()
            axis, old_width = input_width(orig)
            _, new_width = input_width(new)
            layers.append(new)
            for shape in self._shapes[id(orig)]:
                s = list(shape)
                if s[axis] == old_width:
                    s[axis] = new_width
                calls.append(i)
                inputs.append(torch.rand(s, generator=gen))
        return Bench(layers, calls), tuple(inputs)

    def measure(self, gi: int, widths: list[int], anchor: int | None = None, *,
                staircase: bool = False) -> dict[int, float]:
        """Time the widths of group ``gi`` not yet in the table, side by side; returns all known points.

        ``anchor`` is timed again with them (its table entry keeps the minimum), so that differences
        between this batch and the anchor are measured under the same machine load. ``staircase``:
        narrow in index order (one producer's steps show cleanly) instead of :meth:`priced_order`.
        """
        order = None if staircase else self.priced_order(gi)
        sig = self.signature(gi) if staircase else self.priced_signature(gi)
        todo = {int(w) for w in widths if self.lut.get(sig, w) is None}
        if todo and anchor is not None:
            todo.add(int(anchor))
        todo = sorted(todo, reverse=True)
        if todo:
            runners = []
            for w in todo:
                module, inputs = self._variant(gi, w, order)
                runners.append(make_runner(module, inputs, self.runtime, self.threads))
            ms = time_interleaved(runners, self.rounds, self.calls, self.threads, clock_of(self.runtime))
            for w, v in zip(todo, ms):
                self.lut.put(sig, w, float(v), self.label(gi))
            self.measured += len(todo)
        return self.lut.points(sig)

    def __call__(self, gi: int, kept: int) -> float:
        sig = self.priced_signature(gi)
        v = self.lut.get(sig, kept)
        if v is None:  # re-time the width asked for just before (the greedy's "from") in the same batch
            self.measure(gi, self._prefetch(gi, kept), anchor=self._last.get(gi))
            v = self.lut.get(sig, kept)
        self._last[gi] = kept
        return float(v)

    def _prefetch(self, gi: int, kept: int, ahead: int = 6) -> list[int]:
        """The asked width plus the next multiples of the group's cluster size: the greedy will ask for them."""
        if gi not in self.grid:
            return [kept]
        c, floor = self.grid[gi]
        top = kept if kept % c == 0 else (kept // c + 1) * c
        widths = [kept] + [w for w in range(top - c, max(floor, kept - ahead * c) - 1, -c) if w >= max(floor, 1)]
        return widths

    def staircase(self, gi: int, floor: int, window: int = 48, step: int = 2) -> ClusterFit:
        """Measure widths ``size, size-step, ...`` down to ``size-window`` (not below ``floor``) and
        derive the cluster size from their steps. Points come from the table when present, and the
        size is re-derived from them (so a better derivation applies to old tables)."""
        sig = self.signature(gi)
        size = self.groups[gi].size
        low = max(floor, size - window, 1)
        widths = list(range(size, low - 1, -step))
        known = self.lut.cluster(sig)
        if known is not None and not set(widths) <= set(self.lut.points(sig)):
            return ClusterFit(known[0], known[1], float("nan"))  # a table that kept only the decision
        points = self.measure(gi, widths, staircase=True)  # measures only widths the table lacks
        ks = [w for w in widths if w in points]
        fit = derive_cluster(ks, [points[w] for w in ks], label=f"group {gi} ({self.label(gi)})",
                             fallback=self.lut.simd_block())  # the table's device
        self.lut.set_cluster(sig, fit.cluster, fit.source, self.label(gi))
        return fit


