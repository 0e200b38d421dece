"""Sensitivity analysis for the CLI: prune one coupling group alone, at a few ratios, and evaluate.

Every trial is a pruned copy with one group thinned by the chosen criterion, scored (mAP50) on a
small validation subset. Groups are tried largest first (channels x member layers, a proxy for
their compute), capped by ``max_groups``. The study itself is
:func:`detprune.schedule.sensitivity.sensitivity` (scores computed once, copies pruned per
trial); installations without it use the simple loop below, which re-scores every trial.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from tqdm.auto import tqdm

import detprune
from detprune.criteria import get_criterion
from detprune.graph import refresh_submodules, remove_channels
from detprune.pipeline import criteria as crit
from detprune.pipeline import steps
from detprune.pipeline.data import load_split, make_loader
from detprune.pipeline.models import example_input, make_adapter
from detprune.pipeline.recipe import EvalSpec, Recipe
from detprune.schedule.local import n_to_remove
from detprune.schedule.select import select_lowest

METRIC = "map50"


def sensitivity(model: Any, recipe: Recipe, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``{criterion, metric, ratios, base, images, groups: [{index, modules, size, values, drop}]}``, most sensitive first."""
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
        try:
            from detprune.schedule.sensitivity import sensitivity as study
        except ImportError:
            base, rows = _simple(model, chosen, a.ratios, a.criterion, recipe, calib, metric, bar.update)
        else:
            res = study(model, ex, metric, ratios=a.ratios, criterion=a.criterion, ignore=ignore, data=calib,
                        min_size=1, only=[g.index for g in chosen], progress=lambda *_: bar.update(), **kwargs)
            base = res.baseline
            sizes = {g.index: g for g in chosen}
            rows = [(r.index, sizes[r.index].modules()[:3], r.size, [r.metric[x] for x in sorted(a.ratios)])
                    for r in res.rows]
    out = [{"index": i, "modules": mods, "size": size, "values": values, "drop": max(base - v for v in values)}
           for i, mods, size, values in rows]
    out.sort(key=lambda e: e["drop"], reverse=True)
    return {"criterion": a.criterion, "metric": METRIC, "ratios": sorted(a.ratios), "base": base, "images": len(val),
            "groups": out}


def _simple(model: Any, chosen: list, ratios: list[float], criterion: str, recipe: Recipe, calib: Any,
            metric: Callable[[Any], float], tick: Callable[[], Any]) -> tuple[float, list]:
    rows = []
    for g in chosen:
        values = []
        for ratio in sorted(ratios):
            trial = copy.deepcopy(model)
            ex = example_input(trial, recipe.img_size)
            groups = detprune.groups(trial, ex)
            c = get_criterion(criterion, **crit.criterion_kwargs(criterion, make_adapter(trial), 2, {}, progress=False))
            c.prepare(trial, groups, data=calib, example_inputs=ex)
            group = {x.index: x for x in groups}[g.index]
            remove_channels(groups, {g.index: select_lowest(group, c.group_scores(group), n_to_remove(group, ratio))})
            refresh_submodules(trial)
            values.append(metric(trial.eval()))
            tick()
        rows.append((g.index, g.modules()[:3], g.size, values))
    return metric(model), rows
