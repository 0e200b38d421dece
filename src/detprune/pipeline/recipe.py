"""A recipe: one YAML file describing a whole pipeline, and the resolved config every run writes.

    model: yolov8n                  # a model spec (see detprune.zoo) or a .safetensors file
    data: synthetic:400             # a data.yaml, a COCO .json, a VOC root, or synthetic[:N]
    task: detection                 # or saliency: model vgg16 / vgg16_bn (width: 0.25), data = images/ + masks/
    img_size: 256
    train:    {epochs: 10}          # optional: train the model first
    prune:    {criterion: [attribution, l1], target: macs=0.5, round_to: 8}
    finetune: {epochs: 2, lr: 0.002}
    eval:     {split: val, max_images: 100}
    bench:    {runtimes: [torch, onnxruntime]}
    export:   {formats: [onnx]}

A section that is absent is a stage that does not run (``report`` always runs). Every CLI
command is a recipe too: its run folder's ``config.yaml`` is the resolved recipe (all defaults
written out), so ``detprune run runs/<command>/<name>/config.yaml`` repeats the run. Errors name
the offending key (``prune.ratio: must be in [0, 1), got 1.5``) so the CLI can map them to flags.

With ``task: saliency`` the same sections drive the salient-object network of
:mod:`detprune.saliency` (see :mod:`detprune.pipeline.saliency`); train/finetune keys a recipe
leaves out then take the saliency defaults of :data:`SALIENCY_DEFAULTS` (AdamW, lower rates).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detprune.pipeline.runs import write_yaml


class RecipeError(ValueError):
    """A recipe value is missing or wrong; ``key`` is its dotted path (``prune.ratio``)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


@dataclass
class TrainSpec:
    """Training from the model's current weights with :func:`detprune.detection.train.fit`."""

    epochs: int = 10
    batch: int = 16
    lr: float = 0.01
    optimizer: str = "sgd"
    warmup_epochs: float = 1.0
    augment: bool = True
    mosaic: float = 0.0
    max_images: int | None = None  # a subset of the training split (quick experiments)
    bn_sparsity: float = 0.0  # L1 penalty on BatchNorm scales (Network Slimming), added to the loss


@dataclass
class FinetuneSpec(TrainSpec):
    """Fine-tuning after pruning: gentler defaults than training from scratch."""

    epochs: int = 2
    lr: float = 0.002
    warmup_epochs: float = 0.2
    # knowledge distillation from the model before pruning (or ``teacher``), weight per image; 0: off
    distill: float = 0.0
    teacher: str | None = None  # the teacher model when fine-tuning without pruning first


@dataclass
class PruneSpec:
    criteria: list[str] = field(default_factory=lambda: ["l1"])
    ratio: float | None = None  # fraction of every group's prunable channels removed
    target: str | None = None  # or a cost goal: macs=0.5 / params=2.5M / latency=0.7@onnxruntime
    schedule: str = "local"  # local | global | layerwise (needs ratios) | cluster (latency staircases; needs a target)
    #                          | sequential (local ratio, groups cut one after another, each re-scored)
    ratios: str | None = None  # per-layer ratios YAML for the layerwise schedule (see detprune.schedule.layerwise)
    runtime: str | None = None  # runtime whose latency cluster pruning measures (default torch)
    lut: str | None = None  # cluster pruning: latency table to read/extend (e.g. from `detprune lut` on the device)
    pricing: str = "table"  # cluster pruning: how a step's saving is priced: table | layers | model | best
    margin: float = 0.01  # cluster pruning: a latency goal is aimed this fraction under itself
    round_to: int | None = None
    max_ratio: float = 0.9  # global / cluster schedules: most of one group's channels removed
    min_channels: int = 1  # global / cluster schedules: fewest channels a group, and each of its layers, keeps
    steps: int = 1  # > 1: iterative pruning, prune -> fine-tune (finetune.epochs per step) this many times
    step_schedule: str = "geometric"  # linear (equal slices of the cut) | geometric (same fraction of what is left)
    max_drop: float | None = None  # iterative: stop (and keep the previous step) when mAP50 falls more than this
    finetune_every: int | None = None  # cluster: re-score (and, with finetune, fine-tune 1 epoch) every N greedy steps
    stages: int | None = None  # sequential: runs of consecutive groups scored together (default: one per group)
    ignore: list[str] = field(default_factory=list)
    calib_batches: int = 4  # calibration batches for data-driven criteria
    calib_batch: int = 8
    options: dict[str, Any] = field(default_factory=dict)  # extra criterion keyword arguments
    skip_unavailable: bool = False  # skip criteria not registered (yet) instead of failing


@dataclass
class EvalSpec:
    split: str = "val"
    batch: int = 16
    max_images: int | None = None
    conf: float = 0.001
    iou: float = 0.6
    score_thres: float = 0.25  # operating point of precision / recall / F1


@dataclass
class BenchSpec:
    runtimes: list[str] = field(default_factory=lambda: ["torch"])
    runs: int = 30
    warmup: int = 5


@dataclass
class ExportSpec:
    formats: list[str] = field(default_factory=lambda: ["onnx"])
    opset: int = 17


@dataclass
class AnalyzeSpec:
    """Sensitivity: prune each group alone at each ratio and evaluate on a small subset."""

    criterion: str = "l1"
    ratios: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    max_groups: int = 12  # the largest groups (by channels x layers); 0 = all
    max_images: int = 32
    target: str | None = None  # macs=0.5 / params=...: propose per-layer ratios for it (run_dir/ratios.yaml)


@dataclass
class ReportSpec:
    samples: int = 4  # validation images drawn with detections before/after (0 = none)
    staircase: str | None = None  # optional latency-staircase data (JSON or CSV), see detprune.report.staircase
    title: str | None = None


TASKS = ("detection", "saliency")
SALIENCY_DEFAULTS: dict[str, dict[str, Any]] = {  # what detprune.saliency.train recommends for the VGG16 net
    "train": {"optimizer": "adamw", "lr": 1e-3, "warmup_epochs": 0.5},
    "finetune": {"optimizer": "adamw", "lr": 3e-4, "warmup_epochs": 0.2},
}


def task_defaults(task: str, section: str) -> dict[str, Any]:
    """Train / finetune values that differ from the dataclass defaults for ``task``."""
    return dict(SALIENCY_DEFAULTS.get(section, {})) if task == "saliency" else {}


@dataclass
class Recipe:
    model: str
    data: str | None = None
    task: str = "detection"  # detection | saliency
    command: str = "run"
    name: str | None = None
    project: str = "runs"
    num_classes: int | None = None  # for freshly built models without data (default: the data's classes, else 80)
    classes: list[str] | None = None  # specialise to these classes (names or indices): outputs sliced, data relabelled
    width: float | None = None  # saliency: width multiplier of a freshly built VGG16 net
    img_size: int = 320
    seed: int = 0
    threads: int | str = "auto"
    workers: int = 0
    train: TrainSpec | None = None
    prune: PruneSpec | None = None
    finetune: FinetuneSpec | None = None
    eval: EvalSpec | None = None
    bench: BenchSpec | None = None
    export: ExportSpec | None = None
    analyze: AnalyzeSpec | None = None
    report: ReportSpec = field(default_factory=ReportSpec)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config: every default written out, absent stages left out."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k in ("data", "name")}

    def save(self, path: str | Path) -> Path:
        return write_yaml(path, self.to_dict())


# ----------------------------------------------------------------------------- parsing

def load_recipe(path: str | Path) -> Recipe:
    """Read and type-check a recipe YAML (a ``config.yaml`` of a previous run works as is)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError("recipe", f"{path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError("recipe", f"{path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    return recipe_from_dict(data)


def recipe_from_dict(data: Any) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError("recipe", f"expected a mapping of keys, got {type(data).__name__}")
    data = dict(data)
    prune = data.get("prune")
    if isinstance(prune, dict) and "criterion" in prune:  # singular alias, str or list
        prune = dict(prune)
        value = prune.pop("criterion")
        if "criteria" in prune:
            raise RecipeError("prune.criterion", "give either criterion or criteria, not both")
        prune["criteria"] = [value] if isinstance(value, str) else value
        data["prune"] = prune
    for section in ("train", "finetune"):  # saliency defaults for keys the recipe leaves out
        defaults = task_defaults(str(data.get("task", "detection")), section)
        value = data.get(section, False)
        if defaults and (value is None or value is True or isinstance(value, dict)):
            data[section] = {**defaults, **(value if isinstance(value, dict) else {})}
    return _build(Recipe, data, "")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RecipeError(prefix + unknown[0], f"unknown key; allowed here: {', '.join(sorted(names))}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecipeError(key, "is required")
            continue
        kwargs[f.name] = _coerce(data[f.name], hints[f.name], key)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            sections = [a for a in args if dataclasses.is_dataclass(a)]
            return _build(sections[0], {}, key + ".") if sections else None  # ``finetune:`` = defaults
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # keep the inner key of a section's error
            return _coerce(value, options[0], key)
        errors = []
        for option in options:
            try:
                return _coerce(value, option, key)
            except RecipeError as exc:
                errors.append(str(exc).split(": ", 1)[1])
        raise RecipeError(key, " or ".join(dict.fromkeys(errors)))
    if dataclasses.is_dataclass(tp):
        if value is None or value is True:  # ``finetune:`` alone in YAML means "with defaults"
            value = {}
        if not isinstance(value, dict):
            raise RecipeError(key, f"expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is list:
        if not isinstance(value, list):
            value = [value]
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise RecipeError(key, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecipeError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(key, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(key, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise RecipeError(key, f"expected a string, got {value!r}")
        return str(value)
    raise RecipeError(key, f"unsupported type {tp}")  # pragma: no cover - schema bug
