"""The pipeline's iterative pruning: ``prune.steps`` rounds of prune -> fine-tune per criterion.

:func:`detprune.schedule.iterative_prune` does the stepping (linear or geometric slices of the
final cut, early stop when mAP falls more than ``prune.max_drop`` below the unpruned model, roll
back to the last acceptable step); this module supplies the run's callbacks: fine-tuning with
the recipe's ``finetune`` section (epochs per step), evaluation on the run's validation images,
and a checkpoint of every step's model under ``weights/``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from torch import nn

import detprune
from detprune.pipeline import steps
from detprune.pipeline.data import Split
from detprune.pipeline.models import example_input
from detprune.pipeline.recipe import EvalSpec, Recipe
from detprune.report.format import fmt_metric
from detprune.schedule.iterative import IterativeResult, StepRecord, iterative_prune


def step_cap(max_ratio: float, steps: int) -> float:
    """The per-step ``max_ratio`` whose compound over ``steps`` steps is ``max_ratio``: each step caps what is
    *left* of a group, so the same cap every step would let a group lose 1 - (1 - max_ratio) ** steps."""
    return 1 - (1 - max_ratio) ** (1 / steps)


def prune_iteratively(model: nn.Module, criterion: str, recipe: Recipe, *, ratio: float | None, calib: Split | None,
                      val: Split | None, run_dir: Path, teacher: nn.Module | None,
                      log: Callable[[str], None]) -> tuple[nn.Module, IterativeResult, list[str]]:
    """A copy of ``model`` pruned by ``criterion`` in ``recipe.prune.steps`` steps; its step record and the
    checkpoints written (``weights/<criterion>-step<i>.safetensors``, relative to ``run_dir``)."""
    p, tune = recipe.prune, recipe.finetune if recipe.finetune is not None and recipe.finetune.epochs > 0 else None
    assert p is not None
    pruned = copy.deepcopy(model)
    data, kwargs = steps.criterion_inputs(pruned, criterion, p, calib, progress=False)
    spec = recipe.eval or EvalSpec()
    evaluate = (lambda m: steps.evaluate(m, val, spec, progress=False)["map50"]) if val is not None else None
    saved: list[str] = []

    def finetune(m: nn.Module, step: int) -> None:
        steps.train_in_place(m, recipe.data, tune, "--steps", img_size=recipe.img_size,
                             run_dir=run_dir / "finetune" / f"{criterion}-step{step}", workers=recipe.workers,
                             seed=recipe.seed + step, log=log, teacher=teacher, classes=recipe.classes)

    def on_step(rec: StepRecord) -> None:
        path = detprune.save(pruned, run_dir / "weights" / f"{criterion}-step{rec.step}.safetensors")
        saved.append(str(path.relative_to(run_dir)))
        tuned = f", fine-tuned {fmt_metric(rec.map_after)}" if rec.map_after is not None else ""
        log(f"  step {rec.step}/{p.steps}: MACs {rec.macs:,}, mAP50 pruned {fmt_metric(rec.map_before)}{tuned}")

    log(f"pruning with {criterion} in {p.steps} {p.step_schedule} steps "
        + (f"to {p.target}" if ratio is None else f"to ratio {ratio:.3f}")
        + (f", stopping when mAP50 drops more than {p.max_drop:g}" if p.max_drop is not None else ""))
    result = iterative_prune(
        pruned, example_input(pruned, recipe.img_size), steps=p.steps, final_ratio=ratio,
        target=p.target if ratio is None else None, schedule=p.step_schedule,
        finetune=finetune if tune is not None else None, evaluate=evaluate, max_drop=p.max_drop,
        criterion=criterion, on_step=on_step, alloc_schedule=p.schedule, ignore=list(p.ignore), round_to=p.round_to,
        data=data, max_ratio=step_cap(p.max_ratio, p.steps), min_channels=p.min_channels, **kwargs)
    if result.stopped_early:
        log(f"  stopped early: {result.reason}; kept step {result.kept_step}")
    return pruned.eval(), result, saved

