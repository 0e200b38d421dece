"""Model latency as a sum of per-layer latencies over (input width, output width).

Timing a group's layers alone (:mod:`~detprune.schedule.layer_latency`) prices every group at
the full width of its neighbours. A conv that consumes one group and produces another is then
counted in both, and once both shrink the savings add up to more than the conv ever cost
(measured on yolov8n / ONNX Runtime: 6.2 ms predicted, 10.9 ms real). Here each conv or linear
layer is timed alone at the (in, out) widths it actually has, so a group's latency is the sum
of its layers *given the current widths of every other group*, and greedy steps are priced
against the model as it is after the previous steps (``commit``).

Layer timings are cached in the :class:`~detprune.schedule.lut.LatencyLUT` under a signature
of the layer's type, kernel, stride, padding and input spatial shapes, keyed by ``"cin x cout"``;
they are shared by every layer of the same shape and reused across rounds and models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from detprune.graph.groups import Group
from detprune.schedule.layer_latency import Bench, record_input_shapes
from detprune.schedule.lut import LatencyLUT
from detprune.deploy.side_by_side import clock_of, make_runner, time_interleaved

Config = tuple[int, int, int]  # (layer id, in width, out width)


@dataclass
class _Layer:
    module: nn.Module
    shapes: list[torch.Size]  # inputs it was called on
    cin: int
    cout: int
    depthwise: bool
    signature: str


def _timeable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        return module.groups == 1 or module.groups == module.in_channels == module.out_channels
    return False


def _signature(module: nn.Module, shapes: list[torch.Size]) -> str:
    axis = -1 if isinstance(module, nn.Linear) else 1
    spatial = [[d for i, d in enumerate(s) if i != axis % len(s)] for s in shapes]
    desc: dict[str, Any] = {"type": type(module).__name__, "inputs": spatial, "bias": module.bias is not None}
    if not isinstance(module, nn.Linear):
        desc.update(kernel=list(module.kernel_size), stride=list(module.stride), dilation=list(module.dilation),
                    padding=str(module.padding), depthwise=module.groups > 1, padding_mode=module.padding_mode)
    return "layer:" + hashlib.sha1(json.dumps(desc).encode()).hexdigest()[:16]


def _build(layer: _Layer, cin: int, cout: int) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A freshly initialised copy of the layer at (cin, cout), with inputs of its recorded shapes."""
    m = layer.module
    if isinstance(m, nn.Linear):
        new: nn.Module = nn.Linear(cin, cout, bias=m.bias is not None)
        axis = -1
    else:
        new = type(m)(cin, cout, m.kernel_size, m.stride, m.padding, m.dilation,
                      groups=cin if layer.depthwise else 1, bias=m.bias is not None, padding_mode=m.padding_mode)
        axis = 1
    gen = torch.Generator().manual_seed(0)
    inputs = []
    for shape in layer.shapes:
        s = list(shape)
        s[axis] = cin
        inputs.append(torch.rand(s, generator=gen))
    return Bench([new.eval()], [0] * len(inputs)), tuple(inputs)


class LayerTable:
    """``latency(group, kept) -> ms``: the group's conv/linear layers at the current widths of all groups.

    ``plan(group, order)`` tells it which classes a group loses first (the greedy's order), so
    the width of each member slot after removing ``n`` classes is known exactly; ``commit``
    records a step. ``prefetch`` times, in one side-by-side batch, every layer configuration a
    set of candidate steps needs and the table lacks.
    """

    def __init__(self, model: nn.Module, example_inputs: Any, groups: list[Group], runtime: str = "torch",
                 lut: LatencyLUT | None = None, threads: int | None = None, rounds: int = 5,
                 calls: int = 3) -> None:
        self.runtime = runtime
        self.threads = torch.get_num_threads() if threads is None else int(threads)
        self.lut = lut or LatencyLUT(runtime, self.threads)
        self.rounds, self.calls = rounds, calls
        self.measured = 0
        wanted = {id(m.slot.module): m.slot.module for g in groups for m in g.members if _timeable(m.slot.module)}
        shapes = record_input_shapes(model, example_inputs, list(wanted.values()))
        self.layers: dict[int, _Layer] = {}
        for lid, mod in wanted.items():
            if lid not in shapes:
                continue  # not called in the forward
            w = mod.weight
            depthwise = not isinstance(mod, nn.Linear) and mod.groups > 1
            cin = int(w.shape[0]) if depthwise else int(w.shape[1])
            self.layers[lid] = _Layer(mod, shapes[lid], cin, int(w.shape[0]), depthwise, _signature(mod, shapes[lid]))
        # group -> [(layer id, axis, member index)] for the weight slots the group resizes
        self.touch: dict[int, list[tuple[int, str, int]]] = {}
        self.counts: dict[int, np.ndarray] = {}
        for g in groups:
            rows = [(id(m.slot.module), m.slot.role, i) for i, m in enumerate(g.members)
                    if m.slot.name == "weight" and m.slot.role in ("in", "out") and id(m.slot.module) in self.layers]
            if rows:
                self.touch[g.index] = rows
                self.counts[g.index] = g.counts()
        self.sizes = {g.index: g.size for g in groups}
        self._cum: dict[int, np.ndarray] = {}  # group -> [members, removed+1] positions removed per slot
        self.removed: dict[int, int] = {}
        self._users: dict[int, list[int]] = {}  # layer -> groups touching it
        for gi, rows in self.touch.items():
            for lid in dict.fromkeys(lid for lid, _, _ in rows):
                self._users.setdefault(lid, []).append(gi)

    def measurable(self, gi: int) -> bool:
        return gi in self.touch

    def plan(self, gi: int, order: np.ndarray) -> None:
        """Classes of group ``gi`` in the order they will be removed (prefixes only)."""
        cnt = self.counts[gi][:, np.asarray(order, dtype=np.int64)]
        self._cum[gi] = np.concatenate([np.zeros((cnt.shape[0], 1), dtype=np.int64), np.cumsum(cnt, axis=1)], axis=1)
        self.removed.setdefault(gi, 0)

    def commit(self, gi: int, kept: int) -> None:
        self.removed[gi] = self.sizes[gi] - kept

    # ------------------------------------------------------------------ widths
    def _width(self, lid: int, override: tuple[int, int] | None) -> tuple[int, int]:
        layer = self.layers[lid]
        cut = {"in": 0, "out": 0}
        for gi in self._users[lid]:
            n = override[1] if override and override[0] == gi else self.removed.get(gi, 0)
            if n == 0:
                continue
            cum = self._cum[gi]
            for l2, axis, member in self.touch[gi]:
                if l2 == lid:
                    cut[axis] += int(cum[member, n])
        cout = layer.cout - cut["out"]
        cin = cout if layer.depthwise else layer.cin - cut["in"]
        return cin, cout

    def _configs(self, gi: int, kept: int) -> list[Config]:
        override = (gi, self.sizes[gi] - kept)
        lids = dict.fromkeys(lid for lid, _, _ in self.touch[gi])
        return [(lid, *self._width(lid, override)) for lid in lids]

    def _get(self, cfg: Config) -> float | None:
        lid, cin, cout = cfg
        return self.lut.get(self.layers[lid].signature, f"{cin}x{cout}")

    # ------------------------------------------------------------------ latency
    def prefetch(self, pairs: list[tuple[int, int]]) -> None:
        """Time every configuration the (group, kept) pairs need that the table lacks, side by side."""
        todo: dict[tuple[str, int, int], Config] = {}
        for gi, kept in pairs:
            for cfg in self._configs(gi, kept):
                if min(cfg[1:]) > 0 and self._get(cfg) is None:
                    todo.setdefault((self.layers[cfg[0]].signature, cfg[1], cfg[2]), cfg)
        self._time(todo)

    def measure_grid(self, widths: dict[int, list[int]], max_combinations: int = 512) -> None:
        """Time every layer at every combination of its groups' listed widths (``build_lut``).

        An axis fed by several groups (a concat input) takes every sum of their widths, up to
        ``max_combinations``. An axis whose slot holds only some of a group's classes (one
        producer of a concat group: how many of its channels go depends on the scores) is timed
        at full width only; pruning times its other widths when it needs them.
        """
        todo: dict[tuple[str, int, int], Config] = {}
        for lid, layer in self.layers.items():
            ins = self._axis_widths(lid, "out" if layer.depthwise else "in", widths, max_combinations)
            outs = self._axis_widths(lid, "out", widths, max_combinations)
            for cin in ins:
                for cout in ([cin] if layer.depthwise else outs):
                    if self._get((lid, cin, cout)) is None:
                        todo.setdefault((layer.signature, cin, cout), (lid, cin, cout))
        self._time(todo)

    def _axis_widths(self, lid: int, axis: str, widths: dict[int, list[int]], cap: int) -> list[int]:
        layer = self.layers[lid]
        base = layer.cout if axis == "out" else layer.cin
        cuts = [0]  # positions removed from the axis, over every combination of its groups' widths
        for gi in self._users[lid]:
            for l2, ax, member in self.touch[gi]:
                if l2 != lid or ax != axis:
                    continue
                row = self.counts[gi][member]
                if gi not in widths or not (row == 1).all():
                    return [base]
                cuts = sorted({c + self.sizes[gi] - w for c in cuts for w in widths[gi]})
                if len(cuts) > cap:
                    return [base]
        return sorted({base - c for c in cuts if base - c > 0}, reverse=True)

    def _time(self, todo: dict[tuple[str, int, int], Config]) -> None:
        if not todo:
            return
        runners = []
        for lid, cin, cout in todo.values():
            module, inputs = _build(self.layers[lid], cin, cout)
            runners.append(make_runner(module, inputs, self.runtime, self.threads))
        ms = time_interleaved(runners, self.rounds, self.calls, self.threads, clock_of(self.runtime))
        for (sig, cin, cout), v in zip(todo, ms):
            self.lut.put(sig, f"{cin}x{cout}", float(v), "layer")
        self.measured += len(todo)

    def __call__(self, gi: int, kept: int) -> float:
        configs = self._configs(gi, kept)
        if any(self._get(c) is None for c in configs):
            self.prefetch([(gi, kept)])
        return float(sum(self._get(c) or 0.0 for c in configs))
