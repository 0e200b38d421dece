"""Cluster pruning of a whole model: staircases -> cluster sizes -> greedy removal -> target.

    report = cluster_prune(model, x, "latency=0.7@onnxruntime", criterion="l1", threads=1)
    print(report.summary())

Per round: trace the groups, score them, measure each group's latency staircase on the target
runtime (cached in a :class:`~detprune.schedule.lut.LatencyLUT`), derive its cluster size, and
run :func:`~detprune.schedule.cluster.greedy_clusters`. A latency goal is checked on a pruned
copy measured side by side with the current model before it is accepted, and the final, longer
timing must agree (else pruning goes on from it, up to :data:`MAX_RECHECKS` times). With
``finetune_every=k`` the model is physically pruned every k greedy steps, ``finetune(model,
round)`` runs, and the next round re-scores the fine-tuned weights. A MACs or params target is
also accepted (cluster choice is still latency-driven; the analytic cost decides when to stop),
which is how clusters are compared with plain pruning at matched MACs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from detprune.criteria import get_criterion
from detprune.deploy.backend import parse_runtime
from detprune.deploy.flops import count_macs, count_params
from detprune.deploy.side_by_side import compare
from detprune.graph.surgery import refresh_submodules, remove_channels
from detprune.schedule.cluster import ClusterState, GreedyStep, Removal, greedy_clusters, producer_blocks_order
from detprune.schedule.cost import CostModel
from detprune.schedule.global_rank import normalised
from detprune.schedule.layer_latency import PRICING_MODES, GroupLatency
from detprune.schedule.layer_table import LayerTable
from detprune.schedule.lut import LatencyLUT
from detprune.schedule.preview import pruned_copy
from detprune.schedule.select import removal_order
from detprune.schedule.target import Target, TargetResult


BLOCKED_RUNTIMES = ("onnxruntime", "openvino")  # blocked layouts: channel counts padded to the SIMD block
CHECK_EVERY = 8  # greedy steps after which a latency goal is checked by measurement even if the estimate is above it
MAX_RECHECKS = 2  # times a reached latency goal that the final timing contradicts is pruned on from


@dataclass
class ClusterReport:
    """Outcome of :func:`cluster_prune`; latencies are side-by-side minima on ``runtime``."""

    criterion: str
    runtime: str
    mode: str
    target: TargetResult
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    latency_before_ms: float
    latency_after_ms: float
    clusters: dict[str, tuple[int, str]] = field(default_factory=dict)  # group label -> (size, source)
    widths: dict[str, tuple[int, int]] = field(default_factory=dict)  # group label -> (before, after)
    steps: list[GreedyStep] = field(default_factory=list)
    measurements: int = 0
    rounds: int = 0
    lut_path: Path | None = None
    compared: dict[str, float] = field(default_factory=dict)  # mode="best": speed-up of each pricing tried

    @property
    def speedup(self) -> float:
        return self.latency_before_ms / self.latency_after_ms

    def summary(self) -> str:
        found = sum(1 for _, src in self.clusters.values() if src == "staircase")
        return (f"cluster pruning ({self.criterion}, {self.runtime}, {self.mode}): "
                f"MACs {self.macs_after / self.macs_before:.1%}, params {self.params_after / self.params_before:.1%}, "
                f"latency {self.latency_before_ms:.3g} -> {self.latency_after_ms:.3g} ms (x{self.speedup:.2f}); "
                f"{len(self.steps)} steps, {found}/{len(self.clusters)} cluster sizes from staircases; "
                + self.target.summary())


@dataclass
class _LatencyCheck:
    """Whether a candidate removal meets a latency goal, by timing a pruned copy beside the unpruned
    model when the estimate reaches the goal or has gone :data:`CHECK_EVERY` steps unchecked (steps
    the table prices at no saving leave the estimate flat although the model gets faster). After
    ``max_verify`` timings the estimate is trusted."""

    goal: float  # ms
    base_ms: float  # the unpruned model's latency; a timing's ratio to the reference scales it
    reference: nn.Module
    time_pair: Callable[[list[nn.Module]], Any]  # (reference ms, candidate ms) timed side by side
    max_verify: int | None
    verified: int = 0
    unchecked: int = 0

    def __call__(self, rem: Removal, est: float, candidate: Callable[[], nn.Module]) -> tuple[bool, float]:
        self.unchecked += 1
        if not any(len(v) for v in rem.values()):
            return est <= self.goal, est
        may_check = self.max_verify is None or self.verified < self.max_verify
        if est > self.goal and not (may_check and self.unchecked >= CHECK_EVERY):
            return False, est
        if not may_check:
            return True, est
        self.verified, self.unchecked = self.verified + 1, 0
        # side by side with the unpruned model: the goal is a fraction of it, so judge that ratio directly
        pair = [self.reference, candidate()]
        ref, cand = self.time_pair(pair)
        real = self.base_ms * cand / ref
        if real <= self.goal:  # confirm with a second batch; the slower reading decides (batches differ by ~2 %)
            ref, cand = self.time_pair(pair)
            real = max(real, self.base_ms * cand / ref)
        return real <= self.goal, real


def _key(g: Any) -> tuple[str, ...]:
    return tuple(m.label for m in g.members)


def cluster_prune(model: nn.Module, example_inputs: Any, target: Target | str, criterion: str = "l1",
                  runtime: str | None = None, ignore: Iterable[Any] = (), data: Any = None, *,
                  mode: str = "table", lut: LatencyLUT | str | Path | None = None, save_lut: bool = True,
                  threads: int | None = None, cluster: int | dict[str, int] | None = None,
                  min_cluster: int | None = None, window: int = 48,
                  probe_step: int = 2, max_ratio: float = 0.9, min_channels: int = 1,
                  finetune: Callable[[nn.Module, int], None] | None = None, finetune_every: int | None = None,
                  max_verify: int | None = None, margin: float = 0.01, rounds: int = 5, calls: int = 3,
                  **criterion_kwargs: Any) -> ClusterReport:
    """Prune ``model`` in place by whole clusters until ``target`` (see the module docstring).

    ``mode``: how a step's latency saving is priced: ``"table"`` (default) sums per-layer timings
    over (in, out) widths at the current widths of every group (no double counting where groups
    meet), ``"layers"`` times the group's layers alone at full neighbour widths (the estimate
    overshoots once neighbours shrink), ``"model"`` times the whole model per width (slow), ``"best"``
    prunes with "table" and with "layers" and keeps the faster result (:mod:`.cluster_best`).
    Cluster sizes always come from the group staircases (``"model"``: whole-model staircases).
    ``margin``: a latency goal is aimed at ``(1 - margin)`` of itself, so that a later timing of the
    result, which differs from the loop's by a point or so on a busy machine, still finds it met
    (the report judges the goal itself).
    ``max_verify``: most real latency checks (default: every time the estimate reaches a latency
    goal; after the last allowed check the estimate is trusted, which on runtimes whose isolated
    layer timings mislead can stop far from the goal).
    ``cluster``: an int skips staircase measurement and uses that size everywhere; a dict maps
    group labels (first producing module path) to sizes, others are measured. ``lut``: a table
    or a file to read/extend (default: this machine's cache file for ``runtime``/``threads``).
    ``runtime``: where latency is measured for a MACs / params target and for a latency target
    without ``@RUNTIME``; default: the runtime ``lut`` was measured on when it is a table, else torch.
    ``min_cluster``: cluster sizes from staircases are rounded up to multiples of it (so are the
    widths). Default: the SIMD block of the table's device (16 with AVX-512, else 8) on ONNX
    Runtime and OpenVINO, whose blocked layouts pad channel counts to it inside a model although a
    layer timed alone can show finer steps; none on torch or a GPU. ``1`` turns it off.
    """
    from detprune.api import groups as find_groups  # api imports the schedule package

    if mode not in PRICING_MODES:
        raise ValueError(f"mode must be one of {PRICING_MODES}, got {mode!r}")
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin!r}")
    if mode == "best":
        from detprune.schedule.cluster_best import best_pricing

        return best_pricing(model, example_inputs, target, criterion=criterion, runtime=runtime, ignore=ignore,
                            data=data, lut=lut, save_lut=save_lut, threads=threads, cluster=cluster,
                            min_cluster=min_cluster, window=window, probe_step=probe_step, max_ratio=max_ratio,
                            min_channels=min_channels, finetune=finetune, finetune_every=finetune_every,
                            max_verify=max_verify, margin=margin, rounds=rounds, calls=calls, **criterion_kwargs)
    threads = torch.get_num_threads() if threads is None else int(threads)
    if isinstance(lut, (str, Path)) and Path(lut).is_file():
        lut = LatencyLUT.load(lut, runtime, threads)  # read once; a device table (`detprune lut`) names its runtime
    runtime = runtime or (lut.runtime if isinstance(lut, LatencyLUT) else "torch")
    goal_t = Target.parse(target, runtime)
    rt = goal_t.runtime if goal_t.metric == "latency" else str(parse_runtime(runtime))
    table = _open_lut(lut, rt, threads)
    min_cluster = _min_cluster(min_cluster, rt, table)
    was_training = model.training
    model.eval()
    reference = copy.deepcopy(model)
    params_before, macs_before = count_params(model), count_macs(model, example_inputs)
    base_ms = float(compare([model], example_inputs, rt, threads, rounds, calls)[0])
    baseline = {"latency": base_ms, "macs": macs_before, "params": params_before}[goal_t.metric]
    goal = goal_t.goal(baseline) * (1 - margin if goal_t.metric == "latency" else 1)
    sizes0: dict[tuple[str, ...], tuple[int, int]] = {}
    clusters: dict[tuple[str, ...], tuple[int, str]] = {}
    labels: dict[tuple[str, ...], str] = {}
    steps: list[GreedyStep] = []
    measured, current_ms, crit_name = 0, base_ms, str(criterion)
    check = _LatencyCheck(goal, base_ms, reference, lambda pair: compare(pair, example_inputs, rt, threads, rounds, calls),
                          max_verify)
    final: tuple[float, ...] | None = None  # (reference, pruned) ms of the final timing
    rechecks = 0
    for rnd in range(10_000):
        found = find_groups(model, example_inputs, ignore)
        crit = get_criterion(criterion, **criterion_kwargs)
        crit_name = crit.name
        crit.prepare(model, found, data=data, example_inputs=example_inputs)
        gl = GroupLatency(model, example_inputs, found, rt, "layers" if mode == "table" else mode, table, threads,
                          rounds, calls)
        lt = LayerTable(model, example_inputs, found, rt, table, threads, rounds, calls) if mode == "table" else None
        cm = CostModel(model, example_inputs, found) if goal_t.metric != "latency" else None
        states = []
        for g in found:
            if not g.prunable or not gl.measurable(g.index) or (lt is not None and not lt.measurable(g.index)):
                continue
            key = _key(g)
            size0, prunable0 = sizes0.setdefault(key, (g.size, g.prunable))
            labels[key] = gl.label(g.index)
            imp = normalised(g, crit.group_scores(g))
            full = removal_order(g, imp, min_member=min_channels)
            allowed = int(math.floor(max_ratio * prunable0)) - (size0 - g.size)
            n = max(0, min(len(full), allowed, g.size - min_channels))
            if n == 0:
                continue
            if key not in clusters:
                clusters[key] = _cluster_for(gl, g.index, g.size - n, labels[key], cluster, window,
                                             probe_step, min_cluster)
            c = clusters[key][0]
            # re-sequenced before the cap, so the cap cuts whole clusters of one block, not the tails of all
            order = producer_blocks_order(g.counts(), full, imp, c)[:n]
            states.append(ClusterState(g.index, g.size, order, imp, c))
            gl.grid[g.index] = (c, g.size - len(order))
            if lt is not None:
                lt.plan(g.index, order)

        def goal_fn(rem: Removal, est: float) -> tuple[bool, float]:
            if cm is not None:
                return cm.predict(rem)[goal_t.metric] <= goal, est
            return check(rem, est, lambda: pruned_copy(model, found, rem))

        res = greedy_clusters(states, lt or gl, current_ms, goal_fn, max_steps=finetune_every)
        measured += gl.measured + (lt.measured if lt is not None else 0)
        remove_channels(found, res.removal)
        refresh_submodules(model)
        steps += res.steps
        if not res.steps or (res.reached and goal_t.metric != "latency"):
            break
        if res.reached:  # the loop's checks accepted a latency goal: the final, longer timing must agree
            final = tuple(float(v) for v in compare([reference, model], example_inputs, rt, threads, rounds + 2, calls))
            if final[1] <= goal_t.goal(final[0]) or rechecks >= MAX_RECHECKS:
                break
            rechecks += 1  # a check that read low (the machine's noise): prune on from the longer timing
            current_ms, final = base_ms * final[1] / final[0], None
            continue
        if finetune is not None:
            finetune(model, rnd)
            model.eval()
        ref_ms, now_ms = compare([reference, model], example_inputs, rt, threads, rounds, calls)
        current_ms = base_ms * now_ms / ref_ms
    if final is None:
        final = tuple(float(v) for v in compare([reference, model], example_inputs, rt, threads, rounds + 2, calls))
    ref_ms, final_ms = final
    macs_after, params_after = count_macs(model, example_inputs), count_params(model)
    if goal_t.metric == "latency":
        goal = goal_t.goal(ref_ms)
        result = TargetResult(goal_t, ref_ms, goal, final_ms, len(steps))
    else:
        achieved = macs_after if goal_t.metric == "macs" else params_after
        result = TargetResult(goal_t, float(baseline), goal, float(achieved), len(steps))
    model.train(was_training)
    path = table.save() if save_lut else table.path
    final_sizes = {_key(g): g.size - len(res.removal.get(g.index, ())) for g in found}
    return ClusterReport(
        crit_name, rt, mode, result, params_before, params_after, macs_before, macs_after, ref_ms, final_ms,
        clusters={labels[k]: v for k, v in clusters.items()},
        widths={labels[k]: (s0, final_sizes.get(k, s0)) for k, (s0, _) in sizes0.items() if k in labels},
        steps=steps, measurements=measured, rounds=rnd + 1, lut_path=path)


def build_lut(model: nn.Module, example_inputs: Any, runtime: str, path: str | Path, threads: int = 1,
              ignore: Iterable[Any] = (), mode: str = "table", window: int = 48, probe_step: int = 2,
              max_ratio: float = 0.9, rounds: int = 5, calls: int = 3, min_cluster: int | None = None) -> LatencyLUT:
    """Measure a complete table on *this* machine (run it on the deployment device): every group's
    staircase and every multiple of its cluster size down to ``1 - max_ratio`` of its width, and
    (``mode="table"``) every conv / linear layer on the grid of those widths (see
    :meth:`LayerTable.measure_grid` for the one gap: concat inputs).

    ``cluster_prune(..., lut=path, mode=mode)`` on another machine then needs no (or, with concats,
    few) measurements for this model (it warns that the table describes another device, which
    is the point).
    """
    from detprune.api import groups as find_groups

    table = _open_lut(path, runtime, threads)
    min_cluster = _min_cluster(min_cluster, runtime, table)
    model.eval()
    found = find_groups(model, example_inputs, ignore)
    gl = GroupLatency(model, example_inputs, found, runtime, "layers" if mode == "table" else mode, table, threads,
                      rounds, calls)
    grid: dict[int, list[int]] = {}
    for g in found:
        if not g.prunable or not gl.measurable(g.index):
            continue
        floor = max(1, g.size - int(math.floor(max_ratio * g.prunable)))
        c, _ = _cluster_for(gl, g.index, floor, gl.label(g.index), None, window, probe_step, min_cluster)
        top = (g.size // c) * c
        grid[g.index] = [g.size] + list(range(top, floor - 1, -c))
        if mode != "table":
            gl.grid[g.index] = (c, floor)  # priced as cluster pruning narrows it (whole clusters per producer)
            gl.measure(g.index, grid[g.index])
    if mode == "table":
        LayerTable(model, example_inputs, found, runtime, table, threads, rounds, calls).measure_grid(grid)
    table.save(path)
    return table


def _open_lut(lut: LatencyLUT | str | Path | None, runtime: str, threads: int) -> LatencyLUT:
    if isinstance(lut, LatencyLUT):
        if lut.runtime != str(parse_runtime(runtime)):
            raise ValueError(f"{lut.path or 'latency table'}: table for runtime {lut.runtime!r}, asked for {runtime!r}")
        return lut
    if lut is None:
        return LatencyLUT.cached(runtime, threads)
    path = Path(lut)
    if path.is_file():
        return LatencyLUT.load(path, runtime, threads)
    return LatencyLUT(runtime, threads, path=path)


def _min_cluster(given: int | None, runtime: str, table: LatencyLUT) -> int:
    if given is not None:
        if int(given) < 1:
            raise ValueError(f"min_cluster must be a positive integer, got {given}")
        return int(given)
    backend = parse_runtime(runtime)
    blocked = backend.runtime in BLOCKED_RUNTIMES and not backend.on_gpu
    return table.simd_block() if blocked else 1


def _cluster_for(gl: GroupLatency, gi: int, floor: int, label: str, cluster: int | dict[str, int] | None,
                 window: int, probe_step: int, min_cluster: int = 1) -> tuple[int, str]:
    if isinstance(cluster, int):
        return cluster, "given"
    if isinstance(cluster, dict) and label in cluster:
        return int(cluster[label]), "given"
    fit = gl.staircase(gi, floor, window, probe_step)
    if fit.cluster % min_cluster:  # a multiple of the block, so every width stays one too
        return -(-fit.cluster // min_cluster) * min_cluster, "minimum"
    return fit.cluster, fit.source
