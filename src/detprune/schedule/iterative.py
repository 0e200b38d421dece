"""Iterative pruning: several prune -> fine-tune steps instead of one big cut.

Removing channels gradually lets fine-tuning recover between steps (Li et al. 2017; Molchanov
et al. 2017). The per-step amount follows a *linear* schedule (equal slices of the final cut)
or a *geometric* one (the same fraction of what is left at every step, i.e. smaller absolute
cuts as the model gets leaner). Each step records MACs, params and, through callbacks, mAP
right after pruning and after fine-tuning; the run stops early when mAP falls more than
``max_drop`` below the unpruned model, and by default rolls the model back to the last
acceptable step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from detprune.graph.surgery import adopt
from detprune.schedule.target import Target

STEP_SCHEDULES = ("linear", "geometric")


def cumulative_fractions(final: float, steps: int, schedule: str) -> list[float]:
    """Fraction of the original *kept* after each step, ending at ``final`` (e.g. 0.5 of the MACs)."""
    if schedule not in STEP_SCHEDULES:
        raise ValueError(f"schedule must be one of {STEP_SCHEDULES}, got {schedule!r}")
    if steps < 1 or not 0 < final <= 1:
        raise ValueError(f"need steps >= 1 and a final kept fraction in (0, 1], got {steps}, {final}")
    if schedule == "linear":
        return [1 - (1 - final) * i / steps for i in range(1, steps + 1)]
    return [final ** (i / steps) for i in range(1, steps + 1)]


def step_ratios(final_ratio: float, steps: int, schedule: str) -> list[float]:
    """Per-step ratios (applied to what is left) whose composition removes ``final_ratio`` of the channels."""
    kept = [1.0] + cumulative_fractions(1 - final_ratio, steps, schedule)
    return [1 - kept[i + 1] / kept[i] for i in range(steps)]


@dataclass
class StepRecord:
    step: int
    ratio: float | None  # per-step ratio (ratio mode)
    goal: float | None  # cumulative kept fraction of the original cost asked for (target mode)
    macs: int
    params: int
    map_before: float | None = None  # right after pruning
    map_after: float | None = None  # after fine-tuning


@dataclass
class IterativeResult:
    baseline_map: float | None
    baseline_macs: int
    baseline_params: int
    steps: list[StepRecord] = field(default_factory=list)
    stopped_early: bool = False
    reason: str = ""
    kept_step: int = 0  # the step whose model ``iterative_prune`` leaves in place

    def to_markdown(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.4f}"

        rows = ["| step | ratio | goal | MACs | MACs % | params % | mAP pruned | mAP fine-tuned |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| 0 | - | - | {self.baseline_macs:,} | 100.0 | 100.0 | {f(self.baseline_map)} | {f(self.baseline_map)} |"]
        for s in self.steps:
            rows.append(f"| {s.step} | {f(s.ratio)} | {f(s.goal)} | {s.macs:,} | {100 * s.macs / self.baseline_macs:.1f} "
                        f"| {100 * s.params / self.baseline_params:.1f} | {f(s.map_before)} | {f(s.map_after)} |")
        if self.stopped_early:
            rows.append(f"\nStopped early: {self.reason}; kept the model of step {self.kept_step}.")
        return "\n".join(rows)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IterativeResult":
        """Inverse of :meth:`as_dict` (keys it does not know, e.g. a run's extra notes, are ignored)."""
        fields = {k: data[k] for k in ("baseline_map", "baseline_macs", "baseline_params", "stopped_early", "reason",
                                        "kept_step") if k in data}
        return cls(**fields, steps=[StepRecord(**s) for s in data.get("steps", [])])

    def plot(self, path: str | Path) -> Path:
        """PNG: mAP before / after fine-tuning (left axis) and MACs (right axis) per step."""
        from detprune.schedule.plots import plot_iterative

        return plot_iterative(self, path)


def iterative_prune(model: nn.Module, example_inputs: Any, steps: int = 5, final_ratio: float | None = None,
                    target: Target | str | None = None, schedule: str = "geometric",
                    finetune: Callable[[nn.Module, int], None] | None = None,
                    evaluate: Callable[[nn.Module], float] | None = None, max_drop: float | None = None,
                    rollback: bool = True, criterion: str = "l1",
                    on_step: Callable[[StepRecord], None] | None = None, **prune_kwargs: Any) -> IterativeResult:
    """Prune ``model`` in place in ``steps`` steps toward ``final_ratio`` or a relative ``target``.

    ``prune_kwargs`` go to :func:`detprune.prune` (``schedule``-independent options such as
    ``ignore``, ``round_to``, ``data``; pass ``alloc_schedule="global"`` for the allocation).
    ``finetune(model, step)`` and ``evaluate(model) -> mAP`` are optional callbacks.
    """
    from detprune.api import prune
    from detprune.deploy.flops import count_macs, count_params

    if (final_ratio is None) == (target is None):
        raise ValueError("give exactly one of final_ratio and target")
    if max_drop is not None and evaluate is None:
        raise ValueError("max_drop needs an evaluate callback")
    alloc_schedule = prune_kwargs.pop("alloc_schedule", "local")
    macs0, params0 = count_macs(model, example_inputs), count_params(model)
    base_map = evaluate(model) if evaluate is not None else None
    result = IterativeResult(base_map, macs0, params0)
    if target is not None:
        goal = Target.parse(target)
        if not goal.relative:
            raise ValueError("iterative pruning needs a relative target (a fraction of the unpruned model)")
        baseline = {"macs": macs0, "params": params0}.get(goal.metric)
        if baseline is None:
            from detprune.deploy.latency import measure_latency

            baseline = measure_latency(model, example_inputs, goal.runtime).median_ms
        plan = [(None, f) for f in cumulative_fractions(goal.value, steps, schedule)]
    else:
        goal, baseline = None, 0.0
        plan = [(r, None) for r in step_ratios(final_ratio, steps, schedule)]
    snapshot = copy.deepcopy(model) if rollback and max_drop is not None else None
    for i, (ratio, frac) in enumerate(plan, start=1):
        if goal is not None:
            step_target = Target(goal.metric, frac * baseline, relative=False, runtime=goal.runtime)
            prune(model, example_inputs, criterion, schedule=alloc_schedule, target=step_target, measure=False,
                  **prune_kwargs)
        else:
            prune(model, example_inputs, criterion, ratio=ratio, schedule=alloc_schedule, measure=False, **prune_kwargs)
        rec = StepRecord(i, ratio, frac, count_macs(model, example_inputs), count_params(model))
        if evaluate is not None:
            rec.map_before = evaluate(model)
        if finetune is not None:
            finetune(model, i)
            if evaluate is not None:
                rec.map_after = evaluate(model)
        result.steps.append(rec)
        if on_step is not None:
            on_step(rec)
        final_map = rec.map_after if rec.map_after is not None else rec.map_before
        if max_drop is not None and base_map is not None and final_map is not None and \
                base_map - final_map > max_drop + 1e-12:
            result.stopped_early = True
            result.reason = f"mAP {final_map:.4f} is {base_map - final_map:.4f} below the unpruned {base_map:.4f} " \
                            f"(limit {max_drop:g}) at step {i}"
            if snapshot is not None:
                adopt(model, snapshot)
                result.kept_step = i - 1
            else:
                result.kept_step = i
            break
        result.kept_step = i
        if snapshot is not None:
            snapshot = copy.deepcopy(model)
    return result

