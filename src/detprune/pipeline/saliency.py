"""The pipeline for ``task: saliency``: the VGG16 salient-object network of :mod:`detprune.saliency`.

The same recipe sections as for detectors, on a different model, data and metrics:

* model: ``vgg16`` / ``vgg16_bn`` (``saliency:vgg16`` too), built at ``width`` (default
  :data:`DEFAULT_WIDTH`, the narrow net for CPUs), or a ``.safetensors`` saliency model;
* data: ``synthetic[:N]`` (the cached tiny-object set, generated at ``img_size``) or a folder of
  ``images/`` + binary ``masks/*.png`` (``<dir>/<split>/`` when split subfolders exist);
* train / finetune: the shared ``fit`` loop with BCE + IoU loss (:class:`~detprune.saliency.SaliencyAdapter`);
* prune: any criterion by name; ``ratio`` (local), ``ratios`` (layerwise), ``target=params=F``
  (``prune_to_param_fraction``: scores once, bisects the local ratio until ``1 - F`` of the
  parameters are gone) or any other target :func:`detprune.prune` reaches itself (``macs=0.5``);
* eval: the six SOD metrics (MAE, max F, mean adaptive F, weighted F, S-measure, mean E-measure)
  in each row of ``metrics.json``, shown before/after in the report (:mod:`.saliency_report`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

import detprune
from detprune.pipeline import criteria as crit
from detprune.pipeline import steps
from detprune.pipeline.data import is_synthetic
from detprune.pipeline.recipe import EvalSpec, PruneSpec, Recipe, TrainSpec

DEFAULT_WIDTH = 0.25  # narrow VGG16 (1.2M parameters): trains on a CPU in minutes at 64 px
SYNTHETIC_IMG_SIZE = 64  # the size the synthetic set is meant for (objects of 0.2-10 % of the image)
Log = Any


# ----------------------------------------------------------------------------- model and data specs

def _model_name(spec: str) -> str:
    return spec.partition(":")[2] if spec.startswith("saliency:") else spec


def fresh_saliency_model(spec: str) -> bool:
    """Whether ``spec`` builds a new network (rather than loading a file)."""
    from detprune.saliency.model import SALIENCY_MODELS

    return _model_name(spec) in SALIENCY_MODELS


def saved_model_class(path: str) -> str | None:
    """``module.Class`` recorded in a file written by ``detprune.save`` (header only), else None."""
    from detprune.io import read_record

    try:
        return str(read_record(path).get("model_class"))
    except Exception:  # noqa: BLE001 - not ours to judge here: loading reports it with its reason
        return None


def is_saliency_file(path: str) -> bool:
    return (saved_model_class(path) or "").startswith("detprune.saliency.")


def check_saliency_model(spec: str) -> None:
    from detprune.saliency.model import SALIENCY_MODELS

    if fresh_saliency_model(spec):
        return
    if spec.endswith(".safetensors"):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"{spec} does not exist")
        kind = saved_model_class(spec)
        if kind is not None and not kind.startswith("detprune.saliency."):
            raise ValueError(f"{spec} holds a {kind.rsplit('.', 1)[-1]}, not a saliency model (drop --task saliency)")
        return
    raise ValueError(f"unknown saliency model {spec!r}; use {', '.join(SALIENCY_MODELS)} (with --width) or a "
                     ".safetensors saliency model")


def load_saliency_model(spec: str, width: float | None) -> nn.Module:
    """A fresh net (``vgg16`` / ``vgg16_bn`` at ``width``) or a saved one, in eval mode."""
    from detprune.saliency.model import SaliencyNet, build_saliency_model

    check_saliency_model(spec)
    if fresh_saliency_model(spec):
        return build_saliency_model(_model_name(spec), DEFAULT_WIDTH if width is None else width).eval()
    model = detprune.load(spec).float().eval()
    if not isinstance(model, SaliencyNet):
        raise ValueError(f"{spec} holds a {type(model).__name__}, not a saliency model (drop --task saliency)")
    return model


def check_saliency_data(spec: str) -> None:
    """``synthetic[:N]`` or a folder with ``images/`` + ``masks/`` (or split folders holding them)."""
    if spec.startswith("synthetic"):
        if not is_synthetic(spec) or spec.endswith(":0"):
            raise ValueError(f"bad synthetic spec {spec!r}: expected 'synthetic' or 'synthetic:N' with N >= 1")
        return
    root = Path(spec)
    if not root.exists():
        raise FileNotFoundError(f"{spec} does not exist (expected a folder of images/ + masks/ or synthetic[:N])")
    if not any((d / "images").is_dir() and (d / "masks").is_dir() for d in [root, *root.glob("*")] if d.is_dir()):
        raise ValueError(f"{spec} is not a saliency dataset: expected images/ + masks/*.png in it or in "
                         "split folders (train/, val/, test/)")


def default_img_size(data: str | None) -> int:
    """The ``--img-size`` of a saliency run when none is given."""
    return SYNTHETIC_IMG_SIZE if data is not None and is_synthetic(data) else 320


def saliency_dataset(data: str, split: str, img_size: int, *, augment: bool = False,
                     max_images: int | None = None) -> Dataset:
    """Image/mask pairs of one split at ``img_size`` px (the first ``max_images`` only)."""
    from detprune.saliency.data import SaliencyFolder

    if is_synthetic(data):
        from detprune.saliency.synthetic import synthetic_saliency

        root = synthetic_saliency(int(data.partition(":")[2] or 1000), split, size=img_size)
    else:
        base = Path(data)
        root = base / split if (base / split / "images").is_dir() else base
    ds: Dataset = SaliencyFolder(root, img_size, augment=augment)
    if max_images is not None and max_images < len(ds):  # type: ignore[arg-type]
        ds = Subset(ds, range(max_images))
    return ds


def saliency_loader(ds: Dataset, batch: int, *, shuffle: bool = False, workers: int = 0, seed: int = 0) -> DataLoader:
    from detprune.saliency.data import collate

    return DataLoader(ds, batch_size=batch, shuffle=shuffle, collate_fn=collate, num_workers=workers,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


# ----------------------------------------------------------------------------- stages

def train(model: nn.Module, data: str, spec: TrainSpec, *, img_size: int, run_dir: Path, workers: int = 0,
          seed: int = 0, log: Log = print) -> nn.Module:
    """Train with BCE + IoU through ``fit`` (no validation during training); returns the model in eval mode."""
    from detprune.detection.train import fit
    from detprune.saliency import SaliencyAdapter, saliency_train_config

    ds = saliency_dataset(data, "train", img_size, augment=spec.augment, max_images=spec.max_images)
    loader = saliency_loader(ds, spec.batch, shuffle=True, workers=workers, seed=seed)
    cfg = saliency_train_config(optimizer=spec.optimizer, lr=spec.lr, warmup_epochs=spec.warmup_epochs, seed=seed)
    adapter = steps.with_bn_sparsity(SaliencyAdapter(model), spec.bn_sparsity, log)
    log(f"training {len(ds)} images x {spec.epochs} epoch(s), batch {spec.batch}, {spec.optimizer} lr {spec.lr:g} "
        f"-> {run_dir}")
    fit(adapter, loader, spec.epochs, None, cfg=cfg, run_dir=run_dir)
    for name in ("last.pt", "best.pt"):  # state dicts of a pruned shape: the .safetensors is the checkpoint
        (run_dir / name).unlink(missing_ok=True)
    return adapter.model.eval()


def prune(model: nn.Module, criterion: str, spec: PruneSpec, *, img_size: int,
          calib: DataLoader | None) -> tuple[nn.Module, Any, dict[str, Any] | None]:
    """A pruned deep copy of ``model``, its ``PruneReport`` and, under a target, goal / achieved / base."""
    from detprune.api import count_params
    from detprune.pipeline.models import UnsupportedError
    from detprune.saliency import SaliencyAdapter
    from detprune.saliency.prune import prune_to_param_fraction
    from detprune.schedule.target import Target

    pruned = copy.deepcopy(model)
    data = None
    if crit.needs_data(criterion):
        if calib is None:
            raise ValueError(f"criterion {criterion!r} is data-driven: give --data for calibration images")
        data = calib
    kwargs = crit.criterion_kwargs(criterion, SaliencyAdapter(pruned), spec.calib_batches, spec.options, progress=False)
    example = torch.rand(1, 3, img_size, img_size)
    target = None
    try:
        if spec.target is not None and spec.schedule == "local" and spec.target.strip().startswith("params"):
            before = count_params(pruned)
            goal = Target.parse(spec.target).goal(before)
            if not 0 < goal < before:
                raise ValueError(f"--target {spec.target}: the model has {before:,} parameters; "
                                 f"a goal of {goal:,.0f} removes nothing")
            report = prune_to_param_fraction(pruned, example, 1.0 - goal / before, criterion, data=data,
                                             ignore=list(spec.ignore), round_to=spec.round_to, **kwargs)
            # prune_to_param_fraction stops within 0.5 % of the parameters of the goal, on either side
            target = {"metric": "params", "goal": goal, "achieved": report.params_after, "base": before,
                      "met": report.params_after <= goal + 0.005 * before}
        else:
            report = steps.prune_in_place(pruned, criterion, spec, img_size, spec.ratio, data, kwargs)
            target = steps.target_reached(report)
    except NotImplementedError as exc:
        raise UnsupportedError(f"criterion {criterion!r} cannot run on a saliency model: {exc}") from exc
    return pruned.eval(), report, target


def evaluate(model: nn.Module, ds: Dataset, spec: EvalSpec) -> dict[str, Any]:
    """The six metrics (plus max / adaptive E and the image count) of ``model`` on ``ds``."""
    from detprune.saliency import evaluate_saliency

    return evaluate_saliency(model, saliency_loader(ds, spec.batch)).as_dict()


# ----------------------------------------------------------------------------- the run

def run_saliency(recipe: Recipe, run_dir: Path, console: Any = None) -> dict[str, Any]:
    """Execute a saliency recipe into ``run_dir``; returns the content of ``metrics.json``.

    The skeleton of :func:`~detprune.pipeline.runner.run_recipe` with this module's data, train,
    prune, evaluate and report."""
    from detprune.pipeline.runner import Variant, finetune_alone, finish_run, pruned_variant, save_weights, start_run
    from detprune.pipeline.saliency_report import render_saliency_run

    t0, log, metrics = start_run(recipe, run_dir, console, task="saliency")
    model = load_saliency_model(recipe.model, recipe.width)
    spec = getattr(model, "spec", {})
    metrics["architecture"] = {"name": spec.get("name"), "width": spec.get("width")}
    base = Variant("baseline", model, "baseline")
    if recipe.train is not None:
        base.model = train(model, recipe.data, recipe.train, img_size=recipe.img_size,  # type: ignore[arg-type]
                           run_dir=run_dir / "train" / "baseline", workers=recipe.workers, seed=recipe.seed, log=log)
        base.info.update(trained_epochs=recipe.train.epochs, checkpoint=save_weights(base.model, run_dir, "baseline"))

    def tune(model: nn.Module, stem: str) -> nn.Module:
        return train(model, recipe.data, recipe.finetune, img_size=recipe.img_size,  # type: ignore[arg-type]
                     run_dir=run_dir / "finetune" / stem, workers=recipe.workers, seed=recipe.seed, log=log)

    if recipe.prune is None:
        variants = finetune_alone(recipe, base, run_dir, tune)
    else:
        p = recipe.prune
        names, missing = crit.split_available(p.criteria)
        if missing:
            why = "not registered in detprune.criteria.CRITERIA in this installation"
            metrics["skipped"] = {n: why for n in missing}
        calib = None
        if any(crit.needs_data(n) for n in names):
            ds = saliency_dataset(recipe.data, "train", recipe.img_size,  # type: ignore[arg-type]
                                  max_images=p.calib_batches * p.calib_batch)
            calib = saliency_loader(ds, p.calib_batch)
        variants = [pruned_variant(name, recipe, base, run_dir, log, metrics,
                                   lambda m, n: prune(m, n, p, img_size=recipe.img_size, calib=calib), tune)
                    for name in names]
    if not variants and recipe.train is None and recipe.finetune is None:
        base.name, base.role = "model", "model"
    models = [base] + variants

    val = None
    if recipe.eval is not None:
        e = recipe.eval
        val = saliency_dataset(recipe.data, e.split, recipe.img_size, max_images=e.max_images)  # type: ignore[arg-type]
        metrics["saliency_eval"] = {"split": e.split, "images": len(val)}  # type: ignore[arg-type]
    steps.measure_and_export(models, val, recipe, metrics, run_dir, evaluate, variants or [base], log)
    if val is not None and recipe.report.samples > 0:
        from detprune.atomic import atomic_write_bytes
        from detprune.pipeline.saliency_report import SAMPLES, saliency_grid

        atomic_write_bytes(run_dir / SAMPLES, saliency_grid([(v.name, v.model) for v in models], val,
                                                            recipe.report.samples))
    return finish_run(recipe, base.model, metrics, run_dir, t0, log, render_saliency_run)
