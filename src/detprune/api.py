"""The public entry points: ``trace``, ``groups``, ``prune`` (and ``check_ratio`` for callers validating a ratio early).

    report = detprune.prune(model, torch.rand(1, 3, 320, 320), criterion="l1", ratio=0.5)

``example_inputs`` follows one convention everywhere: a tensor is passed as ``model(x)``, a
list as ``model(list)`` (torchvision detectors), a dict as ``model(**d)`` and a tuple as
``model(*t)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

from torch import nn

from detprune.criteria import get_criterion
from detprune.graph import Group, TraceResult, Tracer, build_groups, refresh_submodules, remove_channels
from detprune.schedule.allocate import Allocation, LatencySettings, plan, reach_target
from detprune.schedule.target import Target, TargetResult

IgnoreEntry = str | type | nn.Module


class UnsupportedLayerError(TypeError):
    """A layer whose channels the tracer cannot follow was found and ``strict=True`` was asked."""


def trace(model: nn.Module, example_inputs: Any, ignore: Iterable[IgnoreEntry] = (), strict: bool = False) -> TraceResult:
    """Run the model once and record its channel dataflow (see :mod:`detprune.graph.tracer`)."""
    _, result = Tracer(model).run(example_inputs)
    if strict and result.unsupported:
        found = ", ".join(f"{p} ({t})" for p, t in result.unsupported.items())
        raise UnsupportedLayerError(f"layers the channel tracer cannot follow: {found}; their channels are pinned. "
                                    "Pass strict=False to prune around them.")
    _apply_ignore(model, result, ignore_list(ignore))
    return result


def ignore_list(ignore: Iterable[IgnoreEntry] | IgnoreEntry) -> list[IgnoreEntry]:
    """``ignore`` as a list; one path, type or module alone counts as one entry (``list("head")``
    would be four one-letter paths)."""
    return [ignore] if isinstance(ignore, (str, type, nn.Module)) else list(ignore)


def groups(model: nn.Module, example_inputs: Any, ignore: Iterable[IgnoreEntry] = (), strict: bool = False) -> list[Group]:
    """The coupling groups of ``model``: member layers, channel counts, and what is pinned and why."""
    return build_groups(trace(model, example_inputs, ignore, strict))


def _apply_ignore(model: nn.Module, result: TraceResult, ignore: list[IgnoreEntry]) -> None:
    names = dict(model.named_modules())
    for entry in ignore:
        if isinstance(entry, str):
            if not entry:
                raise ValueError("ignore entry '' is empty (it would protect the whole model); give a module path")
            matched = [p for p in names if p == entry or p.startswith(entry + ".")]
        elif isinstance(entry, type):
            matched = [p for p, m in names.items() if isinstance(m, entry)]
        elif isinstance(entry, nn.Module):
            matched = [p for p, m in names.items() if m is entry]
        else:
            raise TypeError(f"ignore entries are module paths, module types or modules; got {entry!r}")
        if not matched:
            raise ValueError(f"ignore entry {entry!r} matches no module of {type(model).__name__}")
        for slot in result.slots:  # a matched module protects its submodules too
            if any(slot.module_path == p or slot.module_path.startswith(p + ".") or p == "" for p in matched):
                result.channels.pin(slot.ids, f"ignored by user ({entry!r})")


@dataclass
class GroupChange:
    """Width of one prunable group before and after a :func:`prune` call."""

    index: int
    modules: list[str]
    before: int
    after: int


@dataclass
class PruneReport:
    """What a pruning call did: sizes before/after and channels kept per group."""

    criterion: str
    ratio: float
    params_before: int
    params_after: int
    macs_before: int | None = None
    macs_after: int | None = None
    groups: list[GroupChange] = field(default_factory=list)
    schedule: str = "local"
    target: TargetResult | None = None
    removed: float | None = None  # fraction of prunable channel classes really removed (caps, rounding)

    def summary(self) -> str:
        """One line: criterion and ratio, params / MACs before -> after, and the target's outcome."""
        parts = [f"params {self.params_before:,} -> {self.params_after:,} ({self.params_after / self.params_before:.1%})"]
        if self.macs_before:
            parts.append(f"MACs {self.macs_before:,} -> {self.macs_after:,} ({self.macs_after / self.macs_before:.1%})")
        if self.target is not None:
            parts.append(self.target.summary())
        head = f"{self.criterion} @ {self.ratio:g}" + ("" if self.schedule == "local" else f" ({self.schedule})")
        if self.removed is not None and abs(self.removed - self.ratio) >= 5e-4:  # max_ratio, min_channels, round_to
            head += f", {self.removed:.1%} of prunable channels removed"
        return f"{head}: " + ", ".join(parts)


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """``ratio`` as a float; ``ValueError`` naming ``name`` unless it is a number in [0, 1)."""
    if not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise ValueError(f"{name} must be in [0, 1), got {ratio!r}")
    return float(ratio)


def prune(model: nn.Module, example_inputs: Any, criterion: str = "l1", ratio: float = 0.5,
          ignore: Iterable[IgnoreEntry] = (), round_to: int | None = None, data: Any = None,
          measure: bool = True, *, schedule: str = "local", target: Target | str | None = None,
          ratios: Any = None, max_ratio: float = 0.9, min_channels: int = 1, runtime: str = "torch",
          latency: LatencySettings | None = None, **criterion_kwargs: Any) -> PruneReport:
    """Prune ``model`` in place.

    By default every coupling group loses ``ratio`` of its prunable channels (``schedule="local"``).
    ``schedule="global"`` removes ``ratio`` of all prunable channels ranked across groups (capped by
    ``max_ratio`` per group and ``min_channels`` kept by every group and layer);
    ``schedule="layerwise"`` takes per-group ratios from ``ratios`` (mapping or YAML file).
    ``target`` (``"macs=0.5"``, ``"params=2M"``, ``"latency=0.7"`` measured on ``runtime``, or a
    :class:`Target`) replaces the ratio by a search; the report's ``target`` shows goal vs achieved.
    """
    check_ratio(ratio)
    if round_to is not None and (not isinstance(round_to, int) or isinstance(round_to, bool) or round_to < 1):
        raise ValueError(f"round_to must be a positive int, got {round_to!r}")
    alloc = Allocation(schedule, ratio, round_to, max_ratio, min_channels, ratios)
    goal = Target.parse(target, runtime) if target is not None else None
    crit = get_criterion(criterion, **criterion_kwargs)
    params_before = count_params(model)
    macs_before = _macs(model, example_inputs) if measure or goal is not None else None
    found = groups(model, example_inputs, ignore)
    crit.prepare(model, found, data=data, example_inputs=example_inputs)
    scores = {g.index: crit.group_scores(g) for g in found}
    result: TargetResult | None = None
    if goal is None:
        removal = plan(found, scores, alloc)
    else:
        removal, result = reach_target(model, example_inputs, found, scores, goal, alloc, latency)
    remove_channels(found, removal)
    refresh_submodules(model)
    macs_after = _macs(model, example_inputs) if measure or goal is not None else None
    if result is not None:  # report what the pruned model really achieves, not the search's estimate
        if goal.metric == "latency":
            from detprune.deploy.latency import measure_latency

            lat = latency or LatencySettings()
            result.achieved = measure_latency(model, example_inputs, goal.runtime, lat.warmup, lat.runs,
                                              lat.threads).median_ms
        else:
            result.achieved = float(macs_after if goal.metric == "macs" else count_params(model))
    removed = sum(len(v) for v in removal.values()) / max(1, sum(g.prunable for g in found))
    effective = ratio if goal is None and schedule != "layerwise" else removed
    report = PruneReport(crit.name, float(effective), params_before, count_params(model), macs_before, macs_after,
                         schedule=schedule, target=result, removed=removed)
    report.groups = [GroupChange(g.index, g.modules(), g.size, g.size - len(removal.get(g.index, ())))
                     for g in found if g.prunable]
    return report


def count_params(model: nn.Module) -> int:
    """All parameters of ``model``, as :func:`detprune.deploy.count_params` counts them; defined here so
    that ``import detprune`` does not load the deploy package (export and runtime code)."""
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module, example_inputs: Any) -> int:
    from detprune.deploy.flops import count_macs  # eval mode for the count, mode restored

    return count_macs(model, copy.copy(example_inputs))
