"""Sensitivity analysis for the CLI: prune one coupling group alone, at a few ratios, and evaluate.

Every trial is a pruned copy with one group thinned by the chosen criterion, scored (mAP50) on a
small validation subset (:func:`detprune.schedule.sensitivity.sensitivity`: scores computed once,
copies pruned per trial). Groups are tried largest first (channels x member layers, a proxy for
their compute), capped by ``max_groups``. With ``analyze.target`` the study proposes per-layer
ratios meeting that MACs / params target with the least tolerated mAP drop, written as a
``ratios.yaml`` that ``detprune prune --ratios`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

import detprune
from detprune.pipeline import criteria as crit
from detprune.pipeline import steps
from detprune.pipeline.data import load_split, make_loader
from detprune.pipeline.models import example_input, make_adapter
from detprune.pipeline.recipe import EvalSpec, Recipe
from detprune.schedule.sensitivity import sensitivity as study

METRIC = "map50"


def sensitivity(model: Any, recipe: Recipe, log: Callable[[str], None] = print,
                run_dir: Path | None = None) -> dict[str, Any]:
    """``{criterion, metric, ratios, base, images, groups: [{index, modules, size, values, drop}]}``, most
    sensitive first; plus ``proposal`` (ratios for ``analyze.target``, saved to ``run_dir/ratios.yaml``)."""
    a = recipe.analyze
    assert a is not None and recipe.data is not None
    spec = EvalSpec(split=recipe.eval.split if recipe.eval else "val", max_images=a.max_images)
    val = load_split(recipe.data, spec.split, recipe.img_size, max_images=a.max_images, classes=recipe.classes)
    calib = make_loader(load_split(recipe.data, "train", recipe.img_size, max_images=16, classes=recipe.classes), 8) \
        if crit.needs_data(a.criterion) else None
    ignore = recipe.prune.ignore if recipe.prune else []
    ex = example_input(model, recipe.img_size)
    found = [g for g in detprune.groups(model, ex, ignore) if g.prunable > 0]
    found.sort(key=lambda g: g.size * len(g.modules()), reverse=True)
    chosen = found[: a.max_groups] if a.max_groups else found
    log(f"sensitivity: {len(chosen)} of {len(found)} prunable groups x {len(a.ratios)} ratios on {len(val)} images")
    kwargs = crit.criterion_kwargs(a.criterion, make_adapter(model), 2, {}, progress=False)

    def metric(m: Any) -> float:
        return steps.evaluate(m, val, spec, progress=False)[METRIC]

    with tqdm(total=len(chosen) * len(a.ratios), desc="sensitivity") as bar:
        res = study(model, ex, metric, ratios=a.ratios, criterion=a.criterion, ignore=ignore, data=calib,
                    min_size=1, only=[g.index for g in chosen], progress=lambda *_: bar.update(), **kwargs)
    sizes = {g.index: g for g in chosen}
    out = [{"index": r.index, "modules": sizes[r.index].modules()[:3], "size": r.size,
            "values": [r.metric[x] for x in sorted(a.ratios)],
            "drop": max(res.baseline - r.metric[x] for x in a.ratios)} for r in res.rows]
    out.sort(key=lambda e: e["drop"], reverse=True)
    result = {"criterion": a.criterion, "metric": METRIC, "ratios": sorted(a.ratios), "base": res.baseline,
              "images": len(val), "groups": out}
    if a.target is not None:
        result["proposal"] = _propose(res, a.target, run_dir, log)
    return result


def _propose(res: Any, target: str, run_dir: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Per-group ratios for ``target`` from the study, their predicted cost, and the YAML written."""
    from detprune.schedule.layerwise import layerwise_removal
    from detprune.schedule.target import Target

    goal = Target.parse(target)
    ratios = res.propose(goal)
    predicted = res.cost.predict(layerwise_removal(res.groups, res.scores, ratios, res.round_to))
    base = res.cost.macs_total if goal.metric == "macs" else res.cost.params_total
    proposal: dict[str, Any] = {"target": target, "metric": goal.metric, "goal": goal.goal(base), "base": base,
                                "predicted": predicted[goal.metric], "met": predicted[goal.metric] <= goal.goal(base),
                                "ratios": {str(i): r for i, r in sorted(ratios.items()) if r > 0}}
    if run_dir is not None:
        path = res.save_ratios(ratios, run_dir / "ratios.yaml")
        proposal["file"] = path.name
        log(f"proposed per-layer ratios for {target}: {path} (prune with --ratios {path})")
    return proposal
