"""Check a recipe's values before any work starts, naming the offending key.

Type errors are caught when the recipe is read (:mod:`detprune.pipeline.recipe`); this module
checks meaning: ranges, files that must exist, criteria registered at run time, runtimes.
The CLI turns a key into its flag (``prune.ratio`` -> ``--ratio``) with :func:`flag_for`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from detprune.pipeline import criteria as crit
from detprune.pipeline.data import check_data_spec, class_map, class_names
from detprune.pipeline.models import ULTRALYTICS_SUBSET, check_model_spec
from detprune.pipeline.recipe import (
    TASKS, AnalyzeSpec, BenchSpec, EvalSpec, ExportSpec, PruneSpec, Recipe, RecipeError, TrainSpec,
)
from detprune.schedule.target import Target

EXPORT_FORMATS = ("onnx", "openvino")
DETECTION_ONLY_CRITERIA = ("attribution",)  # need a detector's class-score layout
OPTIMIZERS = ("sgd", "adamw")
_FLAGS = {"criteria": "--criterion", "options": "--option", "runtimes": "--runtime", "formats": "--format", "img_size": "--img-size",
          "round_to": "--round-to", "max_images": "--max-images", "num_classes": "--num-classes",
          "max_groups": "--max-groups", "calib_batches": "--calib-batches", "recipe": "RECIPE"}


def flag_for(key: str) -> str:
    """``prune.ratio`` -> ``--ratio``; ``prune.criteria[1]`` -> ``--criterion``; ``prune.options.tau`` -> ``--option``."""
    if key.startswith("prune.options"):
        return "--option"
    last = re.sub(r"\[\d+\]$", "", key).rsplit(".", 1)[-1]
    return _FLAGS.get(last, "--" + last.replace("_", "-"))


def _check(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise RecipeError(key, message)


def _check_runtime(text: str, key: str) -> None:
    """``runtime[:device]`` spelled right, and its GPU present (before any work, not when timing)."""
    from detprune.deploy.backend import check_device, parse_runtime

    try:
        check_device(parse_runtime(text))
    except ValueError as exc:
        raise RecipeError(key, str(exc)) from None


def _train(spec: TrainSpec, key: str, min_epochs: int) -> None:
    _check(spec.epochs >= min_epochs, f"{key}.epochs", f"must be >= {min_epochs}, got {spec.epochs}")
    _check(spec.batch >= 1, f"{key}.batch", f"must be >= 1, got {spec.batch}")
    _check(0 < spec.lr < math.inf, f"{key}.lr", f"must be a finite number > 0, got {spec.lr}")
    _check(spec.optimizer in OPTIMIZERS, f"{key}.optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {spec.optimizer!r}")
    _check(0 <= spec.mosaic <= 1, f"{key}.mosaic", f"must be in [0, 1], got {spec.mosaic}")
    _check(spec.warmup_epochs >= 0, f"{key}.warmup_epochs", "must be >= 0")
    _check(spec.max_images is None or spec.max_images >= 1, f"{key}.max_images", "must be >= 1")
    _check(0 <= spec.bn_sparsity < math.inf, f"{key}.bn_sparsity", f"must be finite and >= 0, got {spec.bn_sparsity:g}")


def _distill(r: Recipe) -> None:
    """Distillation needs a teacher: the model before pruning, or ``finetune.teacher``."""
    f = r.finetune
    _check(0 <= f.distill < math.inf, "finetune.distill", f"must be finite and >= 0, got {f.distill:g}")
    _check(f.teacher is None or f.distill > 0, "finetune.teacher", "is only used with --distill W > 0")
    _check(r.task != "saliency" or not f.distill, "finetune.distill", "detection only, not with --task saliency")
    if f.distill and r.prune is None:
        _check(f.teacher is not None, "finetune.teacher",
               "is required by --distill without pruning (when pruning, the teacher is the model before pruning)")
    if f.teacher is not None:
        try:
            check_model_spec(f.teacher)
        except (ValueError, FileNotFoundError) as exc:
            raise RecipeError("finetune.teacher", str(exc)) from exc


def _saliency(r: Recipe) -> None:
    """What a saliency recipe may not hold: detector-only settings, a detector model or data."""
    from detprune.pipeline.saliency import check_saliency_data, check_saliency_model, fresh_saliency_model

    try:
        check_saliency_model(r.model)
    except (ValueError, FileNotFoundError) as exc:
        raise RecipeError("model", str(exc)) from exc
    if r.data is not None:
        try:
            check_saliency_data(r.data)
        except (ValueError, FileNotFoundError) as exc:
            raise RecipeError("data", str(exc)) from exc
    if r.width is not None:
        _check(fresh_saliency_model(r.model), "width", f"sets the width of a freshly built net, not of {r.model}")
        _check(0 < r.width <= 1, "width", f"must be in (0, 1], got {r.width:g}")
    only = "detection only, not with --task saliency"
    _check(r.num_classes is None, "num_classes", f"{only} (a saliency net predicts one mask)")
    for key in ("train", "finetune"):
        spec = getattr(r, key)
        _check(spec is None or spec.mosaic == 0, f"{key}.mosaic", only)
    _check(r.analyze is None, "analyze", f"sensitivity analysis is {only} (yet)")
    _check(r.prune is None or r.prune.schedule != "cluster", "prune.schedule",
           "cluster pruning is for detectors, not --task saliency yet; use local, global or layerwise")
    for i, name in enumerate(r.prune.criteria if r.prune is not None else []):
        _check(name not in DETECTION_ONLY_CRITERIA, f"prune.criteria[{i}]",
               f"{name!r} scores detection class outputs: {only}")


def _detection(r: Recipe) -> None:
    """A detection recipe's model and data: known specs, and not a saliency model file."""
    try:
        check_model_spec(r.model)
    except (ValueError, FileNotFoundError) as exc:
        raise RecipeError("model", str(exc)) from exc
    if r.model.endswith(".safetensors"):
        from detprune.pipeline.saliency import is_saliency_file

        _check(not is_saliency_file(r.model), "model", f"{r.model} is a salient-object model: add --task saliency")
    if r.data is not None:
        try:
            check_data_spec(r.data)
        except (ValueError, FileNotFoundError) as exc:
            raise RecipeError("data", str(exc)) from exc


def _iterative(r: Recipe) -> None:
    """prune.steps / step_schedule / max_drop: what iterative pruning can do with the rest of the recipe."""
    from detprune.schedule.iterative import STEP_SCHEDULES

    p = r.prune
    assert p is not None
    _check(p.steps >= 1, "prune.steps", f"must be >= 1, got {p.steps}")
    _check(p.step_schedule in STEP_SCHEDULES, "prune.step_schedule",
           f"must be one of {', '.join(STEP_SCHEDULES)}, got {p.step_schedule!r}")
    _check(p.max_drop is None or p.max_drop >= 0, "prune.max_drop", f"must be >= 0, got {p.max_drop}")
    if p.steps == 1:
        _check(p.max_drop is None, "prune.max_drop", "stops iterative pruning early; add --steps N (N > 1)")
        return
    _check(p.schedule in ("local", "global"), "prune.steps",
           f"iterative pruning uses the local or global schedule, not {p.schedule!r}")
    tuned = r.finetune is not None and r.finetune.epochs > 0
    _check(not (tuned and r.model.startswith("ultralytics:")), "prune.steps",
           "iterative pruning fine-tunes the model in place between steps; Ultralytics' trainer returns a new "
           "one: use one step, or a built-in or torchvision detector")
    _check(p.max_drop is None or (r.eval is not None and r.data is not None), "prune.max_drop",
           "needs --data to measure mAP50 after each step")
    if p.target is not None:
        goal = Target.parse(p.target)
        _check(goal.relative, "prune.target",
               "iterative pruning needs a relative target (a fraction of the unpruned model, e.g. macs=0.5)")


def _classes(r: Recipe) -> None:
    """--classes: a detector, distinct known classes (checked against the data's names when there is data)."""
    _check(r.task == "detection", "classes", "specialisation slices a detector's class outputs; not for --task saliency")
    _check(bool(r.classes), "classes", "name at least one class")
    tuned = r.finetune is not None and r.finetune.epochs > 0  # `train` runs before specialising: all classes
    _check(not (tuned and r.model.startswith("ultralytics:") and len(r.classes) > 1), "classes", ULTRALYTICS_SUBSET)
    if r.data is None:
        _check(all(str(c).isdigit() for c in r.classes), "classes",
               f"class names need --data (to know the names); got {r.classes}")
        return
    try:
        class_map(r.classes, class_names(r.data))
    except ValueError as exc:
        raise RecipeError("classes", str(exc)) from exc


def _ratios_file(path: str) -> None:
    """The per-layer ratios file exists and reads as ratios (keys are matched to groups when pruning)."""
    from detprune.schedule.layerwise import load_ratios

    _check(Path(path).is_file(), "prune.ratios", f"{path} does not exist")
    try:
        load_ratios(path)
    except ValueError as exc:
        raise RecipeError("prune.ratios", str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - YAML syntax errors and the like: one line naming the file
        raise RecipeError("prune.ratios", f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from exc


def _prune_criteria(p: PruneSpec) -> None:
    """prune.criteria registered (or some of them, with skip_unavailable), and every option taken by one of them."""
    _check(bool(p.criteria), "prune.criteria", "name at least one criterion")
    if not p.skip_unavailable:
        for i, name in enumerate(p.criteria):
            try:
                crit.check_criterion(name)
            except ValueError as exc:
                raise RecipeError(f"prune.criteria[{i}]", str(exc)) from exc
    else:
        _check(any(n in crit.available() for n in p.criteria), "prune.criteria",
               f"none of {p.criteria} is registered; available: {', '.join(crit.available())}")
    # an option goes to the criteria that take it (tau to attribution in "attribution,l1"); one
    # that no named criterion takes is a typo or a wrong criterion
    named = [n for n in p.criteria if n in crit.available()]
    takes = {n: crit.accepted_kwargs(n) for n in named}
    for key in p.options:
        if named and not any(a is None or key in a for a in takes.values()):
            listing = "; ".join(f"{n!r} takes {', '.join(sorted((a or set()) - crit.PIPELINE_KWARGS)) or 'none'}"
                                for n, a in takes.items())
            which = f"criterion {named[0]!r} takes no" if len(named) == 1 else f"none of {named} takes"
            raise RecipeError(f"prune.options.{key}", f"{which} option {key!r} ({listing})")
    for name in named:
        try:
            crit.check_options(name, p.options)
        except ValueError as exc:
            raise RecipeError("prune.options", str(exc)) from exc


def _prune(r: Recipe) -> None:
    """The prune section: criteria, ratio or target, schedule and its options, iterative steps."""
    p = r.prune
    assert p is not None
    _prune_criteria(p)
    if p.schedule == "layerwise" or p.ratios is not None:
        _check(p.ratios is not None, "prune.ratios", "the layerwise schedule needs per-layer ratios (a YAML file)")
        _check(p.schedule == "layerwise", "prune.schedule",
               f"per-layer ratios use the layerwise schedule, not {p.schedule!r}")
        _check(p.ratio is None, "prune.ratio", "give either one ratio or per-layer ratios (--ratios), not both")
        _ratios_file(p.ratios)
    else:
        _check((p.ratio is None) != (p.target is None), "prune.ratio", "give exactly one of ratio or target")
    if p.ratio is not None:
        _check(0 <= p.ratio < 1, "prune.ratio", f"must be in [0, 1), got {p.ratio:g}")
    if p.target is not None:
        try:
            goal = Target.parse(p.target)
        except ValueError as exc:
            raise RecipeError("prune.target", str(exc)) from exc
        if goal.metric == "latency":
            _check_runtime(goal.runtime, "prune.target")
    from detprune.pipeline.steps import SCHEDULES

    _check(p.schedule in SCHEDULES, "prune.schedule", f"must be one of {', '.join(SCHEDULES)}, got {p.schedule!r}")
    _check(p.schedule != "cluster" or p.target is not None, "prune.target",
           "cluster pruning needs a target (e.g. latency=0.7 or macs=0.5)")
    if p.schedule == "sequential" and p.target is not None:
        _check(Target.parse(p.target).metric != "latency", "prune.target",
               "the sequential schedule reaches a macs or params target, not latency")
    if p.lut is not None:
        _check(p.schedule == "cluster", "prune.lut",
               f"a latency table is read by the cluster schedule, not {p.schedule!r}")
        _check(Path(p.lut).is_file(), "prune.lut", f"{p.lut} does not exist (build one with `detprune lut`)")
    if p.runtime is not None:
        _check_runtime(p.runtime, "prune.runtime")
    _check(p.round_to is None or p.round_to >= 1, "prune.round_to", f"must be >= 1, got {p.round_to}")
    _check(0 < p.max_ratio <= 1, "prune.max_ratio", f"must be in (0, 1], got {p.max_ratio}")
    _check(p.min_channels >= 1, "prune.min_channels", f"must be >= 1, got {p.min_channels}")
    _iterative(r)
    from detprune.schedule.layer_latency import PRICING_MODES

    _check(p.pricing in PRICING_MODES, "prune.pricing", f"must be one of {', '.join(PRICING_MODES)}, got {p.pricing!r}")
    _check(p.pricing == "table" or p.schedule == "cluster", "prune.pricing",
           f"prices the cluster schedule's steps, not {p.schedule!r}'s")
    _check(0 <= p.margin < 0.5, "prune.margin", f"must be in [0, 0.5), got {p.margin}")
    _check(p.margin == PruneSpec.margin or p.schedule == "cluster", "prune.margin",
           f"is how far under a latency goal the cluster schedule aims, not {p.schedule!r}'s")
    if p.finetune_every is not None:
        _check(p.finetune_every >= 1, "prune.finetune_every", f"must be >= 1, got {p.finetune_every}")
        _check(p.schedule == "cluster", "prune.finetune_every",
               f"is for the cluster schedule's greedy steps, not {p.schedule!r} (see --steps)")
        _check(p.pricing != "best", "prune.finetune_every",
               "--pricing best prunes twice and would fine-tune both candidates; choose one pricing")
    if p.stages is not None:
        _check(not isinstance(p.stages, bool) and isinstance(p.stages, int) and p.stages >= 1, "prune.stages",
               f"must be a positive integer, got {p.stages!r}")
        _check(p.schedule == "sequential", "prune.stages",
               f"splits the sequential schedule's cut into runs of groups, not {p.schedule!r}'s")
    _check(p.calib_batches >= 1 and p.calib_batch >= 1, "prune.calib_batches", "must be >= 1")
    data_driven = [n for n in p.criteria if n in crit.available() and crit.needs_data(n)]
    _check(r.data is not None or not data_driven, "data", f"criterion {', '.join(data_driven)} needs calibration data")


def _eval(e: EvalSpec) -> None:
    """eval: batch, image cap and thresholds."""
    _check(e.batch >= 1, "eval.batch", "must be >= 1")
    _check(e.max_images is None or e.max_images >= 1, "eval.max_images", "must be >= 1")
    for k in ("conf", "iou", "score_thres"):
        _check(0 <= getattr(e, k) <= 1, f"eval.{k}", f"must be in [0, 1], got {getattr(e, k)}")


def _bench(b: BenchSpec) -> None:
    """bench: runtimes that exist on this machine, run counts."""
    for i, rt in enumerate(b.runtimes):
        _check_runtime(rt, f"bench.runtimes[{i}]")
    _check(b.runs >= 1 and b.warmup >= 0, "bench.runs", "need runs >= 1 and warmup >= 0")


def _export(x: ExportSpec) -> None:
    """export: known formats."""
    _check(bool(x.formats), "export.formats", "name at least one format")
    for i, fmt in enumerate(x.formats):
        _check(fmt in EXPORT_FORMATS, f"export.formats[{i}]", f"unknown format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")


def _analyze(a: AnalyzeSpec) -> None:
    """analyze: criterion, ratios, limits, and a MACs / params target for proposals."""
    try:
        crit.check_criterion(a.criterion)
    except ValueError as exc:
        raise RecipeError("analyze.criterion", str(exc)) from exc
    _check(bool(a.ratios), "analyze.ratios", "give at least one ratio")
    for i, x in enumerate(a.ratios):
        _check(0 < x < 1, f"analyze.ratios[{i}]", f"must be in (0, 1), got {x:g}")
    _check(a.max_groups >= 0, "analyze.max_groups", "must be >= 0")
    _check(a.max_images >= 1, "analyze.max_images", "must be >= 1")
    if a.target is not None:
        try:
            goal = Target.parse(a.target)
        except ValueError as exc:
            raise RecipeError("analyze.target", str(exc)) from exc
        _check(goal.metric in ("macs", "params"), "analyze.target",
               f"proposals are for MACs or params targets, got {a.target!r}")


def validate(r: Recipe) -> None:
    """Raise :class:`RecipeError` on the first wrong value."""
    _check(r.task in TASKS, "task", f"must be one of {', '.join(TASKS)}, got {r.task!r}")
    _check(r.task == "saliency" or r.width is None, "width", "only with --task saliency (the width of a fresh VGG16 net)")
    if r.task == "saliency":
        _saliency(r)
    else:
        _detection(r)
    needs_data = [s for s in ("train", "finetune", "eval", "analyze") if getattr(r, s) is not None
                  and not (s == "finetune" and r.finetune.epochs == 0)]
    _check(r.data is not None or not needs_data, "data", f"is required by the {', '.join(needs_data)} stage(s)")
    _check(r.img_size >= 32 and r.img_size % 32 == 0, "img_size", f"must be a multiple of 32 (>= 32), got {r.img_size}")
    _check(r.threads == "auto" or (isinstance(r.threads, int) and r.threads >= 1), "threads",
           f"must be 'auto' or >= 1, got {r.threads!r}")
    _check(r.workers >= 0, "workers", "must be >= 0")
    _check(r.num_classes is None or r.num_classes >= 1, "num_classes", "must be >= 1")
    if r.classes is not None:
        _classes(r)
    if r.train is not None:
        _train(r.train, "train", 1)
    if r.finetune is not None:
        _train(r.finetune, "finetune", 0)
        _distill(r)
    if r.prune is not None:
        _prune(r)
    if r.eval is not None:
        _eval(r.eval)
    if r.bench is not None:
        _bench(r.bench)
    if r.export is not None:
        _export(r.export)
    if r.analyze is not None:
        _analyze(r.analyze)
    _check(r.report.samples >= 0, "report.samples", "must be >= 0")
    if r.report.staircase is not None:
        _check(Path(r.report.staircase).is_file(), "report.staircase", f"{r.report.staircase} does not exist")
