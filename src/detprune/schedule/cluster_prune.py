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

import numpy as np
import torch
from torch import nn

from detprune.criteria import Criterion
from detprune.deploy.backend import parse_runtime
from detprune.deploy.flops import count_macs, count_params
from detprune.deploy.side_by_side import compare
from detprune.graph.groups import Group
from detprune.graph.surgery import refresh_submodules, remove_channels
from detprune.schedule.cluster import GoalFn, GreedyResult, GreedyStep, Removal, greedy_clusters
from detprune.schedule.cluster_plan import Key, RoundPlanner, cluster_for, member_key
from detprune.schedule.cost import CostModel
from detprune.schedule.layer_latency import PRICING_MODES, GroupLatency
from detprune.schedule.layer_table import LayerTable
from detprune.schedule.lut import LatencyLUT
from detprune.schedule.preview import pruned_copy
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


@dataclass(frozen=True)
class _Bench:
    """Where and how one call times and prices latency: the arguments every timing repeats."""

    inputs: Any
    runtime: str
    threads: int
    rounds: int
    calls: int
    mode: str  # pricing, see cluster_prune
    table: LatencyLUT

    def time(self, models: list[nn.Module], longer: bool = False) -> np.ndarray:
        """Side-by-side minima (ms); ``longer``: two more rounds, for the timing the report shows."""
        return compare(models, self.inputs, self.runtime, self.threads, self.rounds + (2 if longer else 0), self.calls)

    def final(self, reference: nn.Module, model: nn.Module) -> tuple[float, float]:
        ref, now = self.time([reference, model], longer=True)
        return float(ref), float(now)

    def pricers(self, model: nn.Module, found: list[Group]) -> tuple[GroupLatency, LayerTable | None]:
        """Per-group latency (staircases, and the pricing unless ``mode="table"``) and the per-layer table."""
        gl = GroupLatency(model, self.inputs, found, self.runtime, "layers" if self.mode == "table" else self.mode,
                          self.table, self.threads, self.rounds, self.calls)
        lt = (LayerTable(model, self.inputs, found, self.runtime, self.table, self.threads, self.rounds, self.calls)
              if self.mode == "table" else None)
        return gl, lt


@dataclass(frozen=True)
class _Start:
    """The unpruned model: a copy that every later timing runs beside (a latency is read as a ratio
    to it, so machine drift cancels), and the numbers a target and the report refer to."""

    reference: nn.Module
    params: int
    macs: int
    ms: float

    @classmethod
    def measure(cls, model: nn.Module, bench: _Bench) -> _Start:
        reference = copy.deepcopy(model)
        params, macs = count_params(model), count_macs(model, bench.inputs)
        return cls(reference, params, macs, float(bench.time([model])[0]))

    def value(self, metric: str) -> float:
        return {"latency": self.ms, "macs": self.macs, "params": self.params}[metric]


@dataclass(frozen=True)
class _Goal:
    """A target as the greedy loop pursues it: ``aim`` is its goal, ``margin`` under it for latency."""

    target: Target
    aim: float
    check: _LatencyCheck

    @classmethod
    def aimed(cls, target: Target, start: _Start, bench: _Bench, margin: float, max_verify: int | None) -> _Goal:
        aim = target.goal(start.value(target.metric)) * (1 - margin if target.metric == "latency" else 1)
        return cls(target, aim, _LatencyCheck(aim, start.ms, start.reference, bench.time, max_verify))

    def stop_test(self, model: nn.Module, found: list[Group], example_inputs: Any) -> GoalFn:
        """The greedy loop's stop test: timed on a pruned copy for latency, else predicted analytically."""
        if self.target.metric == "latency":
            return lambda rem, est: self.check(rem, est, lambda: pruned_copy(model, found, rem))
        cm = CostModel(model, example_inputs, found)
        return lambda rem, est: (cm.predict(rem)[self.target.metric] <= self.aim, est)


@dataclass(frozen=True)
class _Outcome:
    """What the rounds left for the report."""

    steps: list[GreedyStep]
    final: tuple[float, float]  # (reference, pruned) ms of the final, longer timing
    kept: dict[Key, int]  # final width per group
    measured: int
    rounds: int
    criterion: str


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
    _check_choices(mode, margin)
    if mode == "best":
        from detprune.schedule.cluster_best import best_pricing

        return best_pricing(model, example_inputs, target, criterion=criterion, runtime=runtime, ignore=ignore,
                            data=data, lut=lut, save_lut=save_lut, threads=threads, cluster=cluster,
                            min_cluster=min_cluster, window=window, probe_step=probe_step, max_ratio=max_ratio,
                            min_channels=min_channels, finetune=finetune, finetune_every=finetune_every,
                            max_verify=max_verify, margin=margin, rounds=rounds, calls=calls, **criterion_kwargs)
    threads = torch.get_num_threads() if threads is None else int(threads)
    target_t, rt, table = _resolve_runtime(target, runtime, lut, threads)
    bench = _Bench(example_inputs, rt, threads, rounds, calls, mode, table)
    planner = RoundPlanner(criterion, criterion_kwargs, ignore, data, cluster, _min_cluster(min_cluster, rt, table),
                           window, probe_step, max_ratio, min_channels)
    was_training = model.training
    model.eval()
    start = _Start.measure(model, bench)
    goal = _Goal.aimed(target_t, start, bench, margin, max_verify)
    outcome = _prune_rounds(model, bench, planner, goal, start, finetune, finetune_every)
    report = _report(model, bench, planner, goal, start, outcome)
    model.train(was_training)
    report.lut_path = table.save() if save_lut else table.path
    return report


def _check_choices(mode: str, margin: float) -> None:
    if mode not in PRICING_MODES:
        raise ValueError(f"mode must be one of {PRICING_MODES}, got {mode!r}")
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin!r}")


def _resolve_runtime(target: Target | str, runtime: str | None, lut: LatencyLUT | str | Path | None,
                     threads: int) -> tuple[Target, str, LatencyLUT]:
    """The parsed target, the runtime everything is timed on, and its table: a latency target names
    its runtime, else ``runtime``, else the one a given table was measured on, else torch."""
    if isinstance(lut, (str, Path)) and Path(lut).is_file():
        lut = LatencyLUT.load(lut, runtime, threads)  # read once; a device table (`detprune lut`) names its runtime
    runtime = runtime or (lut.runtime if isinstance(lut, LatencyLUT) else "torch")
    target_t = Target.parse(target, runtime)
    rt = target_t.runtime if target_t.metric == "latency" else str(parse_runtime(runtime))
    return target_t, rt, _open_lut(lut, rt, threads)


def _prune_rounds(model: nn.Module, bench: _Bench, planner: RoundPlanner, goal: _Goal, start: _Start,
                  finetune: Callable[[nn.Module, int], None] | None, finetune_every: int | None) -> _Outcome:
    """Rounds of greedy steps (see the module docstring) until the goal is reached or no group can
    lose another cluster."""
    steps: list[GreedyStep] = []
    measured, current_ms, rechecks = 0, start.ms, 0
    final: tuple[float, float] | None = None
    for rnd in range(10_000):
        found, crit = planner.score(model, bench.inputs)
        res, n = _greedy_round(model, found, crit, bench, planner, goal, current_ms, finetune_every)
        measured += n
        steps += res.steps
        if not res.steps or (res.reached and goal.target.metric != "latency"):
            break
        if res.reached:  # the loop's checks accepted a latency goal: the final, longer timing must agree
            final = bench.final(start.reference, model)
            if final[1] <= goal.target.goal(final[0]) or rechecks >= MAX_RECHECKS:
                break
            rechecks += 1  # a check that read low (the machine's noise): prune on from the longer timing
            current_ms, final = start.ms * final[1] / final[0], None
            continue
        if finetune is not None:
            finetune(model, rnd)
            model.eval()
        ref_ms, now_ms = bench.time([start.reference, model])
        current_ms = start.ms * now_ms / ref_ms
    if final is None:
        final = bench.final(start.reference, model)
    kept = {member_key(g): g.size - len(res.removal.get(g.index, ())) for g in found}
    return _Outcome(steps, final, kept, measured, rnd + 1, crit.name)


def _greedy_round(model: nn.Module, found: list[Group], crit: Criterion, bench: _Bench, planner: RoundPlanner,
                  goal: _Goal, start_ms: float, max_steps: int | None) -> tuple[GreedyResult, int]:
    """One round of :func:`greedy_clusters` from ``start_ms``, applied to the model; also the
    number of timings it took."""
    gl, lt = bench.pricers(model, found)
    stop = goal.stop_test(model, found, bench.inputs)
    states = planner.states(found, crit, gl, lt)
    res = greedy_clusters(states, lt or gl, start_ms, stop, max_steps=max_steps)
    remove_channels(found, res.removal)
    refresh_submodules(model)
    return res, gl.measured + (lt.measured if lt is not None else 0)


def _report(model: nn.Module, bench: _Bench, planner: RoundPlanner, goal: _Goal, start: _Start,
            outcome: _Outcome) -> ClusterReport:
    """The report without ``lut_path`` (the table is saved last). A latency goal is judged on the
    final timing's reference, without the margin."""
    ref_ms, final_ms = outcome.final
    macs_after, params_after = count_macs(model, bench.inputs), count_params(model)
    if goal.target.metric == "latency":
        result = TargetResult(goal.target, ref_ms, goal.target.goal(ref_ms), final_ms, len(outcome.steps))
    else:
        achieved = macs_after if goal.target.metric == "macs" else params_after
        result = TargetResult(goal.target, float(start.value(goal.target.metric)), goal.aim, float(achieved),
                              len(outcome.steps))
    clusters, widths = planner.report(outcome.kept)
    return ClusterReport(outcome.criterion, bench.runtime, bench.mode, result, start.params, params_after, start.macs,
                         macs_after, ref_ms, final_ms, clusters=clusters, widths=widths, steps=outcome.steps,
                         measurements=outcome.measured, rounds=outcome.rounds)


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
        c, _ = cluster_for(gl, g.index, floor, gl.label(g.index), None, window, probe_step, min_cluster)
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
