"""Layer-by-layer pruning with re-scoring, the attribution paper's procedure.

Shi, Li and Yamaguchi (2020) prune YOLOv3-tiny "in channel-dimension layer-by-layer": the layers
are cut in forward order, and the channels of each are chosen on the model whose earlier layers
are already pruned, so a later layer's scores see what is left upstream. One-shot pruning scores
every layer once, on the unpruned model. Here every coupling group loses the same ``ratio`` (the
local schedule), so the final widths are the one-shot local ones; only *which* channels go differs.

``stages`` splits the groups (in trace order, which follows the forward pass) into that many runs
of consecutive groups, each scored on the model pruned so far: ``None`` is one stage per group
(the paper), fewer stages trade fidelity for time, since every stage costs one pass of the
criterion over its calibration data. ``target="macs=..."``/``"params=..."`` first finds the local
ratio that reaches it: the widths hardly depend on the scores, so the search prunes by l1, aiming a
little under the goal (see :func:`local_ratio_for`).

A criterion that reads the model's own predictions (attribution's spatial mask: the positions where the
detector finds the target classes) would read them off a model that, cut half-way, finds nothing; such a
criterion names an option (``reference_option``) under which it receives a frozen copy of the unpruned model
(unless that option is passed: ``mask_from=None`` keeps attribution's mask on the pruned-so-far model, whose
empty masks leave the later groups to the l1 fallback).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from detprune.criteria import CRITERIA, get_criterion
from detprune.criteria.activation import ActivationCriterion
from detprune.graph import Group, refresh_submodules, remove_channels
from detprune.schedule.allocate import GRID, Allocation, reach_target
from detprune.schedule.local import local_removal
from detprune.schedule.target import Target, TargetResult

if TYPE_CHECKING:
    from detprune.api import PruneReport


def member_key(group: Group) -> frozenset[str]:
    """The group's identity across re-traces: channel surgery changes widths, not which slots couple."""
    return frozenset(m.label for m in group.members)


def local_ratio_for(model: nn.Module, example_inputs: Any, target: Target, ignore: Iterable = (),
                    max_ratio: float = 0.9, slack: float = 0.01) -> tuple[float, TargetResult]:
    """The local-schedule ratio whose pruned model meets a MACs or params ``target``, and the search's result.

    The search prunes by l1; another criterion's cut at the same ratio can cost a little more (a channel
    class of a concat or split group spans more positions than another), so it aims ``slack`` under the goal.
    """
    from detprune.api import groups as find_groups  # api imports the schedule package

    if target.metric not in ("macs", "params"):
        raise ValueError(f"sequential pruning takes a macs or params target, got {target.metric!r}")
    probe = copy.deepcopy(model)
    found = find_groups(probe, example_inputs, ignore)
    crit = get_criterion("l1")
    scores = {g.index: crit.group_scores(g) for g in found}
    aim = dataclasses.replace(target, value=target.value * (1 - slack))
    _, result = reach_target(probe, example_inputs, found, scores, aim, Allocation("local", max_ratio=max_ratio))
    result.target, result.goal = target, target.goal(result.baseline)
    return max_ratio * result.knob / GRID, result


def sequential_prune(model: nn.Module, example_inputs: Any, criterion: str = "attribution", ratio: float | None = None,
                     *, target: Target | str | None = None, data: Any = None, stages: int | None = None,
                     ignore: Iterable = (), round_to: int | None = None, **criterion_kwargs: Any) -> PruneReport:
    """Prune ``model`` in place, group after group in forward order, re-scoring before every stage.

    Returns the same report as :func:`detprune.prune` (schedule "sequential"; ``target`` holds the goal and
    what the pruned model achieves)."""
    from detprune.api import GroupChange, PruneReport, check_ratio, count_params
    from detprune.api import groups as find_groups
    from detprune.deploy.flops import count_macs

    if (ratio is None) == (target is None):
        raise ValueError("give exactly one of ratio and target")
    if stages is not None and (isinstance(stages, bool) or not isinstance(stages, int) or stages < 1):
        raise ValueError(f"stages must be a positive int or None, got {stages!r}")
    ignore, result = list(ignore), None
    if target is None:
        ratio = check_ratio(ratio)
    else:
        ratio, result = local_ratio_for(model, example_inputs, Target.parse(target), ignore)
    params_before, macs_before = count_params(model), count_macs(model, copy.copy(example_inputs))
    found = find_groups(model, example_inputs, ignore)  # the first stage's groups; later stages re-trace
    first = sorted((g for g in found if g.prunable), key=lambda g: g.index)
    order = [member_key(g) for g in first]
    n_stages = len(order) if stages is None else min(stages, len(order))
    cut: dict[frozenset[str], int] = {}
    name = criterion if isinstance(criterion, str) else criterion.name
    # one bar over the stages; the criterion's own per-pass bar (when it has one) would print a line per stage
    progress = criterion_kwargs.pop("progress", True)
    cls = CRITERIA.get(criterion) if isinstance(criterion, str) else None  # built afresh per stage from kwargs
    if cls is not None and issubclass(cls, ActivationCriterion):
        criterion_kwargs["progress"] = False
    if cls is not None and cls.reference_option:
        criterion_kwargs.setdefault(cls.reference_option, copy.deepcopy(model).eval())
    chunks = [c for c in np.array_split(np.arange(len(order)), max(n_stages, 1)) if len(c)]
    for n, chunk in enumerate(tqdm(chunks, desc=f"sequential {name}", unit="stage", disable=not progress)):
        if n:
            found = find_groups(model, example_inputs, ignore)
        by_key = {member_key(g): g for g in found}
        missing = [i for i in chunk if order[i] not in by_key]
        if missing:
            raise RuntimeError(f"group {first[missing[0]].index} ({', '.join(first[missing[0]].modules()[:2])}) "
                               "is not found after pruning the groups before it")
        stage = [by_key[order[i]] for i in chunk]
        crit = get_criterion(criterion, **criterion_kwargs)  # a fresh instance: statistics of this model only
        crit.prepare(model, found, data=data, example_inputs=example_inputs)
        removal = local_removal(stage, {g.index: crit.group_scores(g) for g in stage}, ratio, round_to)
        remove_channels(stage, removal)
        refresh_submodules(model)
        cut.update({order[i]: len(removal.get(g.index, ())) for i, g in zip(chunk, stage)})
    macs_after = count_macs(model, copy.copy(example_inputs))
    if result is not None:
        result.achieved = float(macs_after if result.target.metric == "macs" else count_params(model))
    report = PruneReport(name, ratio, params_before, count_params(model), macs_before, macs_after,
                         schedule="sequential", target=result,
                         removed=sum(cut.values()) / max(1, sum(g.prunable for g in first)))
    report.groups = [GroupChange(g.index, g.modules(), g.size, g.size - cut.get(k, 0)) for g, k in zip(first, order)]
    return report
