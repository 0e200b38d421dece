"""Run a recipe end to end into a run folder.

Stages, each only when its section is in the recipe: load (or build) the model -> train ->
prune a copy per criterion (to a ratio, or to a cost target found by bisection) -> fine-tune
each -> evaluate / count / time every model -> export -> draw samples -> write
``metrics.json`` and the reports. Without ``prune``, ``finetune`` fine-tunes the model itself.

:mod:`.saliency` runs the same skeleton through the public helpers here, with its own data, train,
prune, evaluate and report; what only detectors have (classes, distillation, iterative steps) stays here.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

import detprune
from detprune.pipeline import steps
from detprune.pipeline import criteria as crit
from detprune.pipeline.data import Split, class_names, load_split
from detprune.pipeline.models import load_model, make_adapter, model_names
from detprune.pipeline.recipe import Recipe
from detprune.pipeline.runs import RunLog, write_json
from detprune.pipeline.threads import apply_threads
from detprune.pipeline.validate import validate


@dataclass
class Variant:
    """One model of the comparison and how it was made."""

    name: str
    model: nn.Module
    role: str  # "baseline" | "model" | "pruned" | "finetuned"
    info: dict[str, Any] = field(default_factory=dict)


Train = Callable[[nn.Module, str], nn.Module]  # (model, stem) -> the model fine-tuned into finetune/<stem>
Prune = Callable[[nn.Module, str], tuple[nn.Module, Any, dict[str, Any] | None]]  # as steps.prune: copy, report, target


def save_weights(model: nn.Module, run_dir: Path, stem: str) -> str:
    """``weights/<stem>.safetensors``; returns the path relative to the run folder, as rows record it."""
    path = detprune.save(model, run_dir / "weights" / f"{stem}.safetensors")
    return str(path.relative_to(run_dir))


def start_run(recipe: Recipe, run_dir: Path, console: Any = None,
              **header: Any) -> tuple[float, RunLog, dict[str, Any]]:
    """What every run does first (detection or saliency): log, resolved config, threads, seed; returns
    the start time, the log and the head of ``metrics.json`` (``header``, e.g. ``task``, after ``command``)."""
    t0 = time.perf_counter()
    log = RunLog(run_dir, console)
    recipe.save(run_dir / "config.yaml")
    threads = apply_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    log(f"run folder {run_dir} ({threads} torch thread(s))")
    metrics = {"command": recipe.command, **header, "name": run_dir.name, "model": recipe.model, "data": recipe.data,
               "img_size": recipe.img_size, "threads": threads,
               "created": _dt.datetime.now().isoformat(timespec="seconds"), "title": recipe.report.title}
    return t0, log, metrics


def run_recipe(recipe: Recipe, run_dir: Path, console: Any = None) -> dict[str, Any]:
    """Execute ``recipe`` into ``run_dir``; returns the content of ``metrics.json``."""
    validate(recipe)
    if recipe.task == "saliency":
        from detprune.pipeline.saliency import run_saliency

        return run_saliency(recipe, run_dir, console)
    t0, log, metrics = start_run(recipe, run_dir, console)
    names = class_names(recipe.data) if recipe.data else None
    model = load_model(recipe.model, recipe.num_classes, names)
    if names and not recipe.classes:
        steps.check_classes(model, names)
    names = names or model_names(model)
    base = Variant("baseline", model, "baseline")
    if recipe.train is not None:
        base.model = steps.train(model, recipe.data, recipe.train, img_size=recipe.img_size,
                                 run_dir=run_dir / "train" / "baseline", workers=recipe.workers, seed=recipe.seed, log=log)
        base.info.update(trained_epochs=recipe.train.epochs,
                         checkpoint=save_weights(base.model, run_dir, "baseline"))
    if recipe.classes:
        names = specialise_model(base.model, recipe.classes, names, log)
        metrics["classes"] = base.info["classes"] = names
    val: Split | None = None
    if recipe.eval is not None:
        e = recipe.eval
        val = load_split(recipe.data, e.split, recipe.img_size, max_images=e.max_images, classes=recipe.classes)
        metrics["eval"] = {"split": e.split, "images": len(val), "score_thres": e.score_thres}
    variants = _variants(recipe, base, run_dir, log, metrics, val)
    if not variants and recipe.train is None and recipe.finetune is None:
        base.name, base.role = "model", "model"
    models = [base] + variants

    steps.measure_and_export(models, val, recipe, metrics, run_dir, steps.evaluate, variants or [base], log)
    if val is not None and recipe.report.samples > 0:
        _samples(models, val, recipe, run_dir, names or [])
    from detprune.report.render import render_run

    return finish_run(recipe, base.model, metrics, run_dir, t0, log, render_run)


def finish_run(recipe: Recipe, base: nn.Module, metrics: dict[str, Any], run_dir: Path, t0: float, log: RunLog,
               render: Callable[[Path], tuple[Path, Path]]) -> dict[str, Any]:
    """What every run does last: the recipe's ``report.staircase`` and ``analyze`` (a sensitivity scan of
    ``base``; validation refuses it for saliency), the run time, ``metrics.json`` and ``render``'s report."""
    if recipe.report.staircase:
        from detprune.report.staircase import load_staircase

        metrics["staircase"] = load_staircase(recipe.report.staircase)
    if recipe.analyze is not None:
        from detprune.pipeline.analyze import sensitivity

        metrics["sensitivity"] = sensitivity(base, recipe, log, run_dir)
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(run_dir / "metrics.json", metrics)
    html, md = render(run_dir)
    log(f"wrote {html} and {md.name}")
    return metrics


def _variants(recipe: Recipe, base: Variant, run_dir: Path, log: RunLog, metrics: dict[str, Any],
              val: Split | None) -> list[Variant]:
    def train(model: nn.Module, stem: str, teacher: nn.Module | None) -> nn.Module:
        return steps.train(model, recipe.data, recipe.finetune, img_size=recipe.img_size,
                           run_dir=run_dir / "finetune" / stem, workers=recipe.workers, seed=recipe.seed, log=log,
                           teacher=teacher, classes=recipe.classes)

    if recipe.prune is None:
        return finetune_alone(recipe, base, run_dir, lambda model, stem: train(model, stem, _teacher(recipe, None)))
    p = recipe.prune
    names, missing = crit.split_available(p.criteria)
    if missing:
        metrics["skipped"] = {n: "not registered in detprune.criteria.CRITERIA in this installation" for n in missing}
        log(f"skipping criteria not available yet: {', '.join(missing)} (available: {', '.join(crit.available())})")
    ratio = p.ratio  # None with a target: detprune.prune / cluster_prune search it
    calib = None
    if any(crit.needs_data(n) for n in names):
        calib = load_split(recipe.data, "train", recipe.img_size, max_images=p.calib_batches * p.calib_batch,
                           classes=recipe.classes)
    tune = recipe.finetune is not None and recipe.finetune.epochs > 0
    teacher = _teacher(recipe, base.model) if tune else None  # frozen, so one serves every criterion

    def prune(model: nn.Module, name: str) -> tuple[nn.Module, Any, dict[str, Any] | None]:
        return steps.prune(model, name, p, img_size=recipe.img_size, ratio=ratio, calib=calib,
                           between=_between(recipe, name, teacher, run_dir, log))

    return [_iterative_variant(name, recipe, base, ratio, calib, val, teacher, run_dir, log, metrics) if p.steps > 1
            else pruned_variant(name, recipe, base, run_dir, log, metrics, prune,
                                lambda model, stem: train(model, stem, teacher))
            for name in names]


def finetune_alone(recipe: Recipe, base: Variant, run_dir: Path, train: Train) -> list[Variant]:
    """Without a prune section, ``finetune`` fine-tunes a copy of the model: rows "before" and "finetuned"."""
    if recipe.finetune is None or recipe.finetune.epochs == 0:
        return []
    tuned = train(copy.deepcopy(base.model), "finetuned")
    base.name = "before"
    return [Variant("finetuned", tuned, "finetuned", {"finetune_epochs": recipe.finetune.epochs,
                                                      "checkpoint": save_weights(tuned, run_dir, "finetuned")})]


def pruned_variant(name: str, recipe: Recipe, base: Variant, run_dir: Path, log: RunLog, metrics: dict[str, Any],
                   prune: Prune, train: Train) -> Variant:
    """One criterion's row: prune a copy of the base model, then fine-tune it when ``finetune`` has epochs
    (keeping the checkpoint right after pruning too). A target's goal goes to ``metrics["target"]`` once."""
    p, f = recipe.prune, recipe.finetune
    t = time.perf_counter()
    log(f"pruning with {name} " + how_pruned(p, p.ratio))
    pruned, report, target = prune(base.model, name)
    info: dict[str, Any] = {"criterion": name, "prune_seconds": round(time.perf_counter() - t, 1), **_describe(report)}
    if p.schedule != "local":
        info["schedule"] = p.schedule
    if target is not None:
        info["target"] = {k: target[k] for k in ("goal", "achieved", "met")}
        metrics.setdefault("target", {"text": p.target, **{k: target[k] for k in ("metric", "goal", "base")}})
    lut = getattr(report, "lut_path", None)
    if lut and not recipe.report.staircase and Path(lut).is_file():
        from detprune.report.staircase import load_staircase

        metrics["staircase"] = load_staircase(lut)  # the staircases cluster pruning measured
    log(f"  {report.summary()}")
    v = Variant(name, pruned, "pruned", info)
    if f is not None and f.epochs > 0:
        info["pruned_checkpoint"] = save_weights(pruned, run_dir, f"{name}-pruned")
        v.model = train(pruned, name)
        v.role, info["finetune_epochs"] = "finetuned", f.epochs
    info["checkpoint"] = save_weights(v.model, run_dir, name)
    return v


def _between(recipe: Recipe, name: str, teacher: nn.Module | None, run_dir: Path,
             log: RunLog) -> Callable[[nn.Module, int], None] | None:
    """The cluster schedule's short fine-tune every ``prune.finetune_every`` steps: one epoch of ``finetune``."""
    f = recipe.finetune
    if recipe.prune.finetune_every is None or f is None or f.epochs == 0:
        return None
    short = dataclasses.replace(f, epochs=1)

    def tune(model: nn.Module, rnd: int) -> None:
        steps.train_in_place(model, recipe.data, short, "--finetune-every", img_size=recipe.img_size,
                             run_dir=run_dir / "finetune" / f"{name}-round{rnd}", workers=recipe.workers,
                             seed=recipe.seed + rnd, log=log, teacher=teacher, classes=recipe.classes)

    return tune


def _iterative_variant(name: str, recipe: Recipe, base: Variant, ratio: float | None, calib: Split | None,
                       val: Split | None, teacher: nn.Module | None, run_dir: Path, log: RunLog,
                       metrics: dict[str, Any]) -> Variant:
    """``prune.steps`` rounds of prune -> fine-tune (see :mod:`detprune.pipeline.iterate`)."""
    from detprune.pipeline.iterate import prune_iteratively

    t = time.perf_counter()
    p, f = recipe.prune, recipe.finetune
    model, result, saved = prune_iteratively(base.model, name, recipe, ratio=ratio, calib=calib, val=val,
                                             run_dir=run_dir, teacher=teacher, log=log)
    metrics.setdefault("iterative", {})[name] = {**result.as_dict(), "schedule": p.step_schedule,
                                                 "max_drop": p.max_drop, "checkpoints": saved}
    tuned = f is not None and f.epochs > 0 and result.kept_step > 0
    info: dict[str, Any] = {"criterion": name, "prune_seconds": round(time.perf_counter() - t, 1),
                            "iterative_steps": result.kept_step, "stopped_early": result.stopped_early}
    if p.schedule != "local":
        info["schedule"] = p.schedule
    if tuned:
        info["finetune_epochs"] = f.epochs * result.kept_step
    info["checkpoint"] = save_weights(model, run_dir, name)
    return Variant(name, model, "finetuned" if tuned else "pruned", info)


def _teacher(recipe: Recipe, before: nn.Module | None) -> nn.Module | None:
    """The teacher of ``finetune.distill``: ``finetune.teacher`` if given, else a copy of the model
    before pruning (a copy: distillation freezes its teacher, and the criteria prune ``before``)."""
    f = recipe.finetune
    if f is None or not f.distill:
        return None
    if f.teacher:
        teacher = load_model(f.teacher, recipe.num_classes)
        if recipe.classes:
            specialise_model(teacher, recipe.classes, class_names(recipe.data), lambda _: None)
        return teacher
    return copy.deepcopy(before) if before is not None else None


def specialise_model(model: nn.Module, classes: list[str], names: list[str] | None, log: Any) -> list[str]:
    """Slice ``model``'s class outputs to ``classes`` (one-class specialisation); returns the kept names.

    A model that already predicts exactly that many classes (a specialised checkpoint evaluated on
    the full data) is left as it is; any other class count than the data's is an error."""
    from detprune.pipeline.data import class_map
    from detprune.specialise import specialise

    cmap = class_map(classes, names)
    nc, full = make_adapter(model).num_classes, len(names) if names is not None else None
    if nc == len(cmap.classes) and nc != full:
        return list(cmap.names)  # specialised already
    if full is not None and nc != full:
        raise ValueError(f"--classes: the model predicts {nc} classes, neither the data's {full} "
                         f"nor the {len(cmap.classes)} kept")
    specialise(model, cmap.classes, names)
    log(f"specialised to {', '.join(cmap.names)}: class outputs {nc} -> {len(cmap.classes)}, data relabelled")
    return list(cmap.names)


def how_pruned(p: Any, ratio: float | None) -> str:
    """'at ratio 0.300' | 'to macs=0.5' | 'with per-layer ratios from r.yaml' (+ target) for the log."""
    if p.ratios is not None:
        return f"with per-layer ratios from {p.ratios}" + (f" scaled to {p.target}" if p.target else "")
    return f"at ratio {ratio:.3f}" if ratio is not None else f"to {p.target}"


def _describe(report: Any) -> dict[str, Any]:
    """Ratio and per-group widths of a PruneReport, or of a cluster-pruning report (widths by label)."""
    if hasattr(report, "widths"):
        groups = [{"index": i, "modules": [label], "before": b, "after": a}
                  for i, (label, (b, a)) in enumerate(report.widths.items())]
        total = sum(g["before"] for g in groups)
        removed = sum(g["before"] - g["after"] for g in groups)
        return {"ratio": removed / total if total else 0.0, "groups": groups}
    return {"ratio": report.ratio, "groups": [{"index": g.index, "modules": g.modules[:3], "before": g.before,
                                               "after": g.after} for g in report.groups]}


def _samples(models: list[Variant], val: Split, recipe: Recipe, run_dir: Path, names: list[str]) -> None:
    from detprune.atomic import atomic_write_bytes
    from detprune.report.render import SAMPLES
    from detprune.report.samples import detection_grid

    n = min(recipe.report.samples, len(val))
    pairs = [val.dataset[i] for i in range(n)]
    images = torch.stack([im for im, _ in pairs])
    targets = [t for _, t in pairs]
    columns = []
    for v in models:
        preds = make_adapter(v.model).predict(images, conf_thres=recipe.eval.score_thres, iou_thres=recipe.eval.iou)
        columns.append((v.name, preds))
    atomic_write_bytes(run_dir / SAMPLES, detection_grid(images, targets, columns, names, recipe.eval.score_thres))
