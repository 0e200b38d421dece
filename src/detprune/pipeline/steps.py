"""The pipeline's stages on one model: train, prune, evaluate, bench, export.

Each stage takes a model and plain settings and returns plain results, so the recipe runner,
the demo and the analysis share them. Train/fine-tune use :func:`detprune.detection.train.fit`
for built-in and torchvision detectors and Ultralytics' trainer for Ultralytics models.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from torch import nn

import detprune
from detprune.pipeline import criteria as crit
from detprune.pipeline.data import Split, load_split, make_loader, ultralytics_data_yaml
from detprune.pipeline.models import (ULTRALYTICS_SUBSET, UnsupportedError, example_input, make_adapter, model_kind,
                                      ultralytics_adapter_module)
from detprune.pipeline.recipe import BenchSpec, EvalSpec, ExportSpec, PruneSpec, RecipeError, TrainSpec

Log = Callable[[str], None]


def check_classes(model: nn.Module, names: list[str], what: str = "--data") -> None:
    """Same class count and, where the model knows its class names, not the same names reordered:
    labels are matched by index, so a reordered class list would silently score every class as another."""
    nc = make_adapter(model).num_classes
    if nc != len(names):
        raise ValueError(f"{what}: the dataset has {len(names)} classes but the model predicts {nc} (the dataset's: "
                         f"{names[:10]}); build the model for this data (--num-classes) or use matching data")
    own = _model_names(model)  # other names are allowed (Ultralytics' single_cls renames to 'item')
    if own is not None and own != list(names) and sorted(own) == sorted(names):
        raise ValueError(f"{what}: the dataset lists its classes as {names}, the model as {own}; "
                         "labels are matched by index, so every class would be scored as another")


def _model_names(model: nn.Module) -> list[str] | None:
    """The model's class names, or ``None`` when it has none or only the default '0', '1', ..."""
    names = getattr(model, "names", None)
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    if not isinstance(names, (list, tuple)) or [str(n) for n in names] == [str(i) for i in range(len(names))]:
        return None
    return [str(n) for n in names]


# ----------------------------------------------------------------------------- train / fine-tune

def train(model: nn.Module, data: str, spec: TrainSpec, *, img_size: int, run_dir: Path, workers: int = 0,
          seed: int = 0, log: Log = print, teacher: nn.Module | None = None,
          classes: list[str] | None = None) -> nn.Module:
    """Train ``model`` (in place where possible) and return the trained model in eval mode.

    With ``spec.distill`` (a :class:`FinetuneSpec`) the loss gains distillation from ``teacher``;
    with ``classes`` on those classes' boxes only, relabelled 0..k-1 (a specialised model)."""
    weight = getattr(spec, "distill", 0.0)
    if model_kind(model) == "ultralytics":
        if weight:
            raise UnsupportedError("--distill: Ultralytics models are fine-tuned by Ultralytics' own trainer, which "
                                   "detprune does not extend; use a built-in detector")
        return _train_ultralytics(model, data, spec, img_size=img_size, run_dir=run_dir, workers=workers, seed=seed,
                                  classes=classes)
    from detprune.detection.train import TrainConfig, fit

    split = load_split(data, "train", img_size, augment=spec.augment, mosaic=spec.mosaic,
                       max_images=spec.max_images, seed=0, classes=classes)
    check_classes(model, split.names)
    loader = make_loader(split, spec.batch, shuffle=True, workers=workers, seed=seed)
    cfg = TrainConfig(optimizer=spec.optimizer, lr=spec.lr, warmup_epochs=spec.warmup_epochs, seed=seed)
    adapter = with_bn_sparsity(make_adapter(model), spec.bn_sparsity, log)
    distill = distill_loss(model, teacher, weight * spec.batch, log) if weight else None
    log(f"training {len(split)} images x {spec.epochs} epoch(s), batch {spec.batch}, lr {spec.lr:g} -> {run_dir}")
    fit(adapter, loader, spec.epochs, None, cfg=cfg, run_dir=run_dir, distill=distill)
    for name in ("last.pt", "best.pt"):  # state dicts of a pruned shape: the .safetensors is the checkpoint
        (run_dir / name).unlink(missing_ok=True)
    return adapter.model.eval()


def train_in_place(model: nn.Module, data: str, spec: TrainSpec, flag: str, **kwargs: Any) -> None:
    """:func:`train` for callers that keep pruning the same module afterwards (iterative rounds, cluster
    rounds): Ultralytics' trainer returns a new model instead, which ``flag`` cannot use."""
    if train(model, data, spec, **kwargs) is not model:
        raise UnsupportedError(f"{flag}: pruning continues on the fine-tuned model in place between rounds; this "
                               "model's trainer returns a new one (Ultralytics): use a built-in or torchvision detector")


def distill_loss(student: nn.Module, teacher: nn.Module | None, weight: float, log: Log = print,
                 kind: str | None = None) -> Any:
    """Distillation from ``teacher`` on the raw prediction maps of a built-in YOLO.

    The built-in losses are sums over the batch, so ``weight`` is per image times the batch size.
    YOLOv8-style maps are [box DFL logits | class logits]: by default (``kind=None``) the class part
    is matched with soft sigmoid targets (``bce``), the box part with MSE; other layouts with MSE
    on every channel."""
    from detprune.detection.train import DistillLoss

    if teacher is None:
        raise ValueError("--distill needs a teacher: prune first (the model before pruning teaches) or give --teacher")
    for role, m in (("student", student), ("teacher", teacher)):
        if model_kind(m) != "builtin":
            raise UnsupportedError(f"--distill: the {role} is a {model_kind(m)} model; distillation matches raw "
                                   "prediction maps, which only built-in detectors return in training")
    if make_adapter(teacher).num_classes != make_adapter(student).num_classes:
        raise ValueError(f"--teacher predicts {make_adapter(teacher).num_classes} classes but the model "
                         f"{make_adapter(student).num_classes}; the teacher must be the same detector before pruning")
    reg_max = getattr(student, "reg_max", None)
    kind = kind or ("bce" if reg_max else "mse")
    log(f"distilling from the {type(teacher).__name__} teacher ({kind}, weight {weight:g} per batch)")
    return DistillLoss(teacher.eval(), student, weight=weight, kind=kind,
                       cls_channels=slice(4 * reg_max, None) if reg_max else None)


class BNSparsityAdapter:
    """An adapter whose loss gains ``bn_l1`` = ``lam * sum |gamma|`` over the BatchNorm scales.

    Network Slimming (Liu et al. 2017) trains with this L1 penalty so that unimportant channels'
    scales go to zero before pruning with the ``bn_scale`` criterion. ``fit`` minimises the sum of
    the loss dict, so the term trains with the model and shows in ``results.csv`` as ``bn_l1``.
    Everything else (``model``, which ``fit`` swaps for validation, ``predict``...) is the inner adapter's.
    """

    def __init__(self, inner: Any, lam: float) -> None:
        self.inner, self.lam = inner, lam

    @property
    def model(self) -> nn.Module:
        return self.inner.model

    @model.setter
    def model(self, value: nn.Module) -> None:
        self.inner.model = value

    def loss(self, images: Any, targets: Any) -> dict[str, Any]:
        from detprune.criteria.bn_scale import bn_l1_penalty

        return {**self.inner.loss(images, targets), "bn_l1": bn_l1_penalty(self.inner.model, self.lam)}

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (copy / unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


def with_bn_sparsity(adapter: Any, lam: float, log: Log = print) -> Any:
    """``adapter`` itself when ``lam`` is 0, else wrapped in :class:`BNSparsityAdapter`."""
    if not lam:
        return adapter
    from detprune.criteria.bn_scale import is_batchnorm

    n = sum(1 for m in adapter.model.modules() if is_batchnorm(m) and isinstance(getattr(m, "weight", None), nn.Parameter))
    if n == 0:
        raise ValueError(f"--bn-sparsity: {type(adapter.model).__name__} has no trainable BatchNorm scale to make sparse")
    log(f"BN sparsity: + {lam:g} x sum |gamma| over {n} BatchNorm layers (loss term bn_l1)")
    return BNSparsityAdapter(adapter, lam)


def _train_ultralytics(model: nn.Module, data: str, spec: TrainSpec, *, img_size: int, run_dir: Path,
                       workers: int, seed: int, classes: list[str] | None = None) -> nn.Module:
    """Ultralytics' trainer on the data's YOLO labels; one kept class (``classes``) through its own
    filter (``classes=[k], single_cls=True``: boxes of class k only, as class 0). It cannot renumber
    several kept classes, so a subset of more than one is refused."""
    subset: dict[str, Any] = {}
    if classes:
        from detprune.pipeline.data import class_map, class_names

        cmap = class_map(classes, class_names(data))
        if len(cmap.classes) > 1:
            raise UnsupportedError(ULTRALYTICS_SUBSET)
        subset = {"classes": list(cmap.classes), "single_cls": True}
    if spec.bn_sparsity:
        raise UnsupportedError("--bn-sparsity is not supported for Ultralytics models (trained by Ultralytics' own "
                               "trainer); use a built-in or torchvision detector")
    module = ultralytics_adapter_module()
    if module is None or not hasattr(module, "finetune_ultralytics"):
        raise UnsupportedError("training Ultralytics models is not supported yet in this installation "
                               "(detprune.detection.adapters.ultralytics is missing)")
    run_dir.mkdir(parents=True, exist_ok=True)
    data_yaml = ultralytics_data_yaml(data, run_dir)
    weights = module.finetune_ultralytics(
        model, data_yaml, epochs=spec.epochs, imgsz=img_size, batch=spec.batch, run_dir=run_dir / "ultralytics",
        lr0=spec.lr, optimizer={"sgd": "SGD", "adamw": "AdamW"}[spec.optimizer], warmup_epochs=spec.warmup_epochs,
        mosaic=spec.mosaic, workers=workers, seed=seed, val=False, **subset)
    return module.load_ultralytics(weights).float().eval()


# ----------------------------------------------------------------------------- prune

SCHEDULES = ("local", "global", "layerwise", "cluster", "sequential")


def prune_in_place(model: nn.Module, criterion: str, spec: PruneSpec, img_size: int, ratio: float | None, data: Any,
                   kwargs: dict[str, Any], between: Callable[[nn.Module, int], None] | None = None) -> Any:
    """Prune ``model`` in place by one call: :func:`detprune.prune` (local / global / layerwise schedule),
    cluster or sequential (layer-by-layer) pruning; both tasks (detection and saliency) prune through it."""
    ex = example_input(model, img_size)
    if spec.schedule == "cluster":
        from detprune.schedule.cluster_prune import cluster_prune

        return cluster_prune(model, ex, spec.target, criterion=criterion, runtime=spec.runtime, ignore=list(spec.ignore),
                             data=data, lut=spec.lut, min_cluster=spec.round_to, max_ratio=spec.max_ratio,
                             min_channels=spec.min_channels, finetune=between, finetune_every=spec.finetune_every,
                             mode=spec.pricing, margin=spec.margin, **kwargs)
    if spec.schedule == "sequential":
        from detprune.schedule.sequential import sequential_prune

        return sequential_prune(model, ex, criterion, ratio=ratio, target=None if ratio is not None else spec.target,
                                data=data, stages=spec.stages, ignore=list(spec.ignore), round_to=spec.round_to,
                                **kwargs)
    how: dict[str, Any] = {}
    if ratio is not None:
        how["ratio"] = ratio
    elif spec.target is not None:
        how.update(target=spec.target, runtime=spec.runtime or "torch")
    if spec.schedule != "local":
        how.update(schedule=spec.schedule, max_ratio=spec.max_ratio, min_channels=spec.min_channels)
    if spec.ratios is not None:
        how["ratios"] = spec.ratios
    try:
        return detprune.prune(model, ex, criterion=criterion, ignore=list(spec.ignore), round_to=spec.round_to,
                              data=data, measure=False, **how, **kwargs)
    except ValueError as exc:
        if spec.ratios is not None and "ratio" in str(exc):  # a key of the YAML file matches no group
            raise RecipeError("prune.ratios", f"{spec.ratios}: {exc}") from exc
        raise


def criterion_inputs(model: nn.Module, criterion: str, spec: PruneSpec, calib: Split | None,
                     progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """The calibration loader (None unless the criterion is data-driven) and keyword arguments for
    ``criterion`` pruning ``model``."""
    data = None
    if crit.needs_data(criterion):
        if calib is None:
            raise ValueError(f"criterion {criterion!r} is data-driven: give --data for calibration images")
        data = make_loader(calib, spec.calib_batch)
    return data, crit.criterion_kwargs(criterion, make_adapter(model), spec.calib_batches, spec.options, progress)


def prune(model: nn.Module, criterion: str, spec: PruneSpec, *, img_size: int, ratio: float | None = None,
          calib: Split | None = None, between: Callable[[nn.Module, int], None] | None = None
          ) -> tuple[nn.Module, Any, dict[str, Any] | None]:
    """A pruned deep copy of ``model``, its :class:`~detprune.api.PruneReport` and, under a target,
    :func:`target_reached` (the same three as the saliency task's ``prune``, for the shared runner).

    ``between(model, round)``: the cluster schedule's fine-tune every ``spec.finetune_every`` greedy steps.

    With ``spec.target`` and ``ratio=None``, :func:`detprune.prune` (or cluster pruning) searches the
    target itself, with the criterion's own scores.
    """
    pruned = copy.deepcopy(model)
    data, kwargs = criterion_inputs(pruned, criterion, spec, calib)
    try:
        report = prune_in_place(pruned, criterion, spec, img_size, ratio, data, kwargs, between)
    except NotImplementedError as exc:
        raise UnsupportedError(f"criterion {criterion!r} cannot run on this model: {exc}") from exc
    return pruned.eval(), report, target_reached(report)


def target_reached(report: Any) -> dict[str, Any] | None:
    """Metric, goal, achieved, base and met of a pruning to a target (``report.target``), else None."""
    result = getattr(report, "target", None)
    if result is None:
        return None
    return {"metric": result.target.metric, "goal": result.goal, "achieved": result.achieved, "base": result.baseline,
            "met": result.met}


# ----------------------------------------------------------------------------- evaluate / bench / export

def evaluate(model: nn.Module, split: Split, spec: EvalSpec, progress: bool = True) -> dict[str, Any]:
    from detprune.detection.evaluate import evaluate as run_eval

    check_classes(model, split.names)
    m = run_eval(make_adapter(model), make_loader(split, spec.batch), conf_thres=spec.conf, iou_thres=spec.iou,
                 names=split.names, score_thres=spec.score_thres, progress=progress)
    return {"map50": m.map50, "map": m.map, "f1": m.f1, "precision": m.precision, "recall": m.recall,
            "images": m.num_images, "per_class": {c.name: {"ap50": c.ap50, "ap": c.ap} for c in m.per_class}}


def cost(model: nn.Module, img_size: int) -> dict[str, int]:
    from detprune.deploy import count_macs, count_params

    return {"params": count_params(model), "macs": count_macs(model, example_input(model, img_size))}


def bench(models: list[nn.Module], img_size: int, spec: BenchSpec, log: Log = print
          ) -> tuple[list[dict[str, float | None]], dict[str, str]]:
    """Batch-1 latency (ms) of every model on every runtime, the models timed *side by side*.

    The table reports each variant's latency as a fraction of the original's; timed one after
    the other (with evaluation in between) those ratios would mix in whatever else the machine
    did meanwhile. So per runtime all models are prepared, warmed up, then timed in interleaved
    rounds keeping each one's minimum (:mod:`detprune.deploy.side_by_side`), at least ``spec.runs`` calls each.
    A runtime that fails for a model is ``None`` for it, with its reason.
    """
    import torch

    from detprune.deploy.side_by_side import clock_of, make_runner, time_interleaved

    threads = torch.get_num_threads()
    latency: list[dict[str, float | None]] = [{} for _ in models]
    errors: dict[str, str] = {}
    for runtime in spec.runtimes:
        ready: list[tuple[int, Callable[[], Any]]] = []
        for i, model in enumerate(models):
            try:
                run = make_runner(model, example_input(model, img_size), runtime, threads)
                for _ in range(max(1, spec.warmup)):  # also shows a runtime that fails only when run
                    run()
                ready.append((i, run))
            except Exception as exc:  # noqa: BLE001 - one runtime failing must not lose the others
                latency[i][runtime] = None
                errors[runtime] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log(f"latency on {runtime} failed: {errors[runtime]}")
        if ready:
            calls = 3
            ms = time_interleaved([run for _, run in ready], rounds=max(1, -(-spec.runs // calls)), calls=calls,
                                  threads=threads, clock=clock_of(runtime))
            for (i, _), value in zip(ready, ms):
                latency[i][runtime] = float(value)
    return latency, errors


def export(model: nn.Module, img_size: int, spec: ExportSpec, out_dir: Path, stem: str) -> dict[str, str]:
    """Write ``<stem>.onnx`` and/or the OpenVINO IR ``openvino/<stem>.xml``; paths relative to ``out_dir``'s parent."""
    from detprune.deploy import export_onnx, export_openvino

    out: dict[str, str] = {}
    onnx_path = out_dir / f"{stem}.onnx"
    export_onnx(model, example_input(model, img_size), onnx_path, opset=spec.opset)
    if "onnx" in spec.formats:
        out["onnx"] = str(onnx_path.relative_to(out_dir.parent))
    if "openvino" in spec.formats:
        xml = export_openvino(onnx_path, out_dir / "openvino")
        out["openvino"] = str(xml.relative_to(out_dir.parent))
        if "onnx" not in spec.formats:
            onnx_path.unlink(missing_ok=True)
    return out


def measure_and_export(models: list[Any], val: Any, recipe: Any, metrics: dict[str, Any], run_dir: Path,
                       evaluate_fn: Callable[[nn.Module, Any, EvalSpec], dict[str, Any]],
                       exported: list[Any], log: Log = print) -> None:
    """Fill ``metrics["rows"]`` (cost, accuracy on ``val``, latency) for every model variant and export
    ``exported``; shared by the detection and saliency runners, which differ only in ``evaluate_fn``."""
    rows = []
    for v in models:
        row: dict[str, Any] = {"name": v.name, "role": v.role, **v.info}
        row.update(cost(v.model, recipe.img_size))
        if val is not None:
            log(f"evaluating {v.name} on {len(val)} images")
            row.update(evaluate_fn(v.model, val, recipe.eval))
        rows.append(row)
    if recipe.bench is not None:
        log(f"timing {len(models)} model(s) side by side on {', '.join(recipe.bench.runtimes)}")
        latency, errors = bench([v.model for v in models], recipe.img_size, recipe.bench, log)
        for row, ms in zip(rows, latency):
            row["latency_ms"] = ms
        if errors:
            metrics.setdefault("latency_errors", {}).update(errors)
    metrics["rows"] = rows
    if recipe.export is not None:
        metrics["exports"] = {}
        for v in exported:
            log(f"exporting {v.name}: {', '.join(recipe.export.formats)}")
            metrics["exports"][v.name] = export(v.model, recipe.img_size, recipe.export, run_dir / "weights", v.name)
