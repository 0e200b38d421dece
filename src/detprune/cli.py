"""The ``detprune`` command line (Typer + Rich).

Every command that computes something is a recipe (:mod:`detprune.pipeline.recipe`) run into a
run folder ``<project>/<command>/<name>`` holding ``config.yaml`` (re-run it with
``detprune run``), logs, checkpoints, ``metrics.json`` and ``report.html``/``report.md``.
Wrong arguments end with a one-line reason naming the argument and exit code 2, never a traceback.
``train``, ``prune``, ``finetune`` and ``eval`` take ``--task saliency`` for the VGG16 salient-object
network of :mod:`detprune.saliency` (six SOD metrics instead of mAP; see :mod:`detprune.pipeline.saliency`).
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Iterator, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:  # the pipeline imports torch: keep `detprune --help` fast
    from detprune.pipeline.recipe import BenchSpec, Recipe

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Structured channel pruning for object detectors.")
console = Console(width=None if Console().is_terminal else 160)

MODEL_HELP = ("yolov3-tiny | yolov8n | ultralytics:yolov8n.yaml | torchvision:fasterrcnn_resnet50_fpn | "
              "path/to/model.safetensors | demo-baseline; with --task saliency: vgg16 | vgg16_bn | a .safetensors")
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]
DataOpt = Annotated[str, typer.Option("--data", "-d", help="data.yaml | COCO .json | VOC root | synthetic[:N]; "
                                      "with --task saliency: a folder of images/ + masks/ | synthetic[:N]")]
OptDataOpt = Annotated[str | None, typer.Option("--data", "-d", help=DataOpt.__metadata__[0].help)]
SizeOpt = Annotated[int, typer.Option("--size", help="example input size (square) used to trace the model")]
ImgOpt = Annotated[int, typer.Option("--img-size", help="square input size (multiple of 32)")]
TaskImgOpt = Annotated[int | None, typer.Option("--img-size", help="square input size (multiple of 32; default 320, "
                                                "64 for --task saliency on synthetic data)")]
TaskOpt = Annotated[str, typer.Option("--task", help="detection | saliency (VGG16 salient-object net: BCE+IoU, "
                                      "six SOD metrics)")]
WidthOpt = Annotated[float | None, typer.Option("--width", help="--task saliency: width multiplier of a fresh "
                                                "vgg16 / vgg16_bn (default 0.25)")]
BnSparsityOpt = Annotated[float, typer.Option("--bn-sparsity", help="L1 penalty on BatchNorm scales added to the "
                                              "loss (Network Slimming, e.g. 1e-4; then prune with -c bn_scale)")]
DistillOpt = Annotated[float, typer.Option("--distill", metavar="W", help="fine-tune with knowledge distillation "
                                           "from the model before pruning (or --teacher), weight W per image "
                                           "(e.g. 4; built-in detectors)")]
ClassesOpt = Annotated[int, typer.Option("--num-classes", help="classes of a freshly built model")]
NcOpt = Annotated[int | None, typer.Option("--num-classes", help="classes of a fresh model (default: the data's)")]
ProjectOpt = Annotated[str, typer.Option("--project", help="parent folder of run folders")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run folder name (default: a timestamp; name2.. if taken)")]
ThreadsOpt = Annotated[str, typer.Option("--threads", help="torch threads: auto (idle cores) or a number")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="training epochs")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="learning rate (default: 0.01 train, 0.002 fine-tune; "
                                             "saliency 1e-3 / 3e-4)")]
BatchOpt = Annotated[int, typer.Option("--batch", help="batch size")]
EvalImgOpt = Annotated[int | None, typer.Option("--eval-images", help="evaluate on the first N validation images")]
RuntimeOpt = Annotated[list[str] | None, typer.Option("--runtime", metavar="RUNTIME",
                                                      help="torch | onnxruntime | openvino (repeat or comma-separate)")]
MaxImagesOpt = Annotated[int | None, typer.Option("--max-images", help="use the first N images only")]
OptimizerOpt = Annotated[str | None, typer.Option("--optimizer", help="sgd | adamw (default sgd; saliency adamw)")]
CriteriaOpt = Annotated[list[str] | None, typer.Option("--criterion", "-c", metavar="NAME",
                                                       help="criterion (repeat or comma-separate to compare)")]
RatioOpt = Annotated[float | None, typer.Option("--ratio", help="fraction of each group's channels removed, in [0, 1)")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="cost target instead of a ratio: macs=0.5, "
                                               "params=2.5M, latency=0.7@onnxruntime (params=0.4: keep 40%)")]
ScheduleOpt = Annotated[str, typer.Option("--schedule", help="local (same ratio per group) | global (one ranking) | "
                                          "layerwise (set by --ratios) | cluster (latency staircases; needs --target)")]
RatiosOpt = Annotated[Path | None, typer.Option("--ratios", metavar="FILE.yaml", help="per-layer ratios (module path "
                                                "prefix or group index -> ratio; schedule layerwise)")]
RoundOpt = Annotated[int | None, typer.Option("--round-to", help="keep channel counts multiples of this")]
IgnoreOpt = Annotated[list[str] | None, typer.Option("--ignore", metavar="MODULE",
                                                     help="module path to leave unpruned (repeatable)")]
LutOpt = Annotated[Path | None, typer.Option("--lut", metavar="FILE.json", help="--schedule cluster: latency table "
                                             "to read and extend (e.g. built on the device with `detprune lut`)")]
CalibOpt = Annotated[int, typer.Option("--calib-batches", help="calibration batches for data-driven criteria")]
OptionOpt = Annotated[list[str] | None, typer.Option("--option", "-o", metavar="KEY=VALUE",
                                                     help="criterion option, e.g. tau=0.05 (repeatable)")]
FormatOpt = Annotated[list[str] | None, typer.Option("--format", "-f", metavar="FORMAT",
                                                     help="onnx | openvino (repeat or comma-separate)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed")]


def fail(message: str) -> NoReturn:
    """One-line error, exit code 2."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _split(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated option values -> one list."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _options(values: list[str] | None) -> dict[str, object]:
    """``["tau=0.05", "use_labels=true"]`` -> ``{"tau": 0.05, "use_labels": True}`` (values read as YAML)."""
    import yaml

    out: dict[str, object] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--option: expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _threads(value: str) -> int | str:
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        fail(f"--threads: expected 'auto' or a positive integer, got {value!r}")
    return int(value)


def _task(task: str) -> str:
    from detprune.pipeline.recipe import TASKS

    if task not in TASKS:
        fail(f"--task: must be one of {', '.join(TASKS)}, got {task!r}")
    return task


def _img_size(value: int | None, task: str, data: str | None) -> int:
    """``--img-size``, else 320 (64 for saliency on synthetic data: the size it is generated for)."""
    if value is not None:
        return value
    if task == "saliency":
        from detprune.pipeline.saliency import default_img_size

        return default_img_size(data)
    return 320


def _width(value: float | None, task: str, model: str) -> float | None:
    """A fresh saliency net's width, written out (so config.yaml holds it); ``None`` otherwise."""
    if value is None and task == "saliency":
        from detprune.pipeline.saliency import DEFAULT_WIDTH, fresh_saliency_model

        return DEFAULT_WIDTH if fresh_saliency_model(model) else None
    return value


def _train_spec(cls: type, section: str, task: str, **values: Any) -> Any:
    """A TrainSpec / FinetuneSpec: given values over the task's defaults over the dataclass's."""
    from detprune.pipeline.recipe import task_defaults

    return cls(**{**task_defaults(task, section), **{k: v for k, v in values.items() if v is not None}})


@contextlib.contextmanager
def _errors(flags: bool = True, run_dir: Path | None = None) -> Iterator[None]:
    """Any failure -> one line and exit 2 (130 on Ctrl-C); recipe keys become CLI flags when ``flags``.
    Inside a run, the traceback goes to the run's ``logs/run.log`` instead of the terminal."""
    try:
        yield
    except typer.Exit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the CLI never shows a traceback
        if run_dir is not None:
            log = run_dir / "logs" / "run.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a") as f:
                f.write(traceback.format_exc())
        _fail_for(exc, flags, run_dir)


def _fail_for(exc: BaseException, flags: bool, run_dir: Path | None) -> NoReturn:
    from detprune.detection.data import DataError
    from detprune.io import CheckpointError
    from detprune.pipeline.models import UnsupportedError
    from detprune.pipeline.recipe import RecipeError
    from detprune.pipeline.validate import flag_for
    from detprune.report.staircase import StaircaseError

    text = str(exc).strip("'\"").splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, KeyboardInterrupt):
        console.print("interrupted")
        raise typer.Exit(130)
    if isinstance(exc, RecipeError):
        fail(f"{flag_for(exc.key) if flags else exc.key}: {str(exc).split(': ', 1)[1]}")
    expected = (UnsupportedError, DataError, CheckpointError, StaircaseError, ValueError, FileNotFoundError,
                ImportError, KeyError)
    if isinstance(exc, expected):
        fail(text or type(exc).__name__)
    where = f" (traceback in {run_dir / 'logs' / 'run.log'})" if run_dir is not None else ""
    fail(f"{type(exc).__name__}: {text}{where}")


def _execute(recipe: Recipe, project: str | None = None, name: str | None = None, flags: bool = True) -> dict:
    """Validate, create the run folder, run, print the comparison and where the report is."""
    from detprune.pipeline.runner import run_recipe
    from detprune.pipeline.runs import new_run_dir
    from detprune.pipeline.validate import validate
    from detprune.report.format import rich_table

    with _errors(flags):
        validate(recipe)  # before creating a folder: a typo leaves nothing behind
        run_dir = new_run_dir(recipe.command, project or recipe.project, name or recipe.name)
    with _errors(flags, run_dir):
        metrics = run_recipe(recipe, run_dir, console)
    if metrics.get("rows") and metrics.get("task") == "saliency":
        from detprune.pipeline.saliency_report import rich_saliency_table

        console.print(rich_saliency_table(metrics["rows"], title=f"{recipe.command} (saliency): {run_dir.name}"))
    elif metrics.get("rows"):
        console.print(rich_table(metrics["rows"], title=f"{recipe.command}: {run_dir.name}"))
    for crit, why in (metrics.get("skipped") or {}).items():
        console.print(f"skipped criterion {crit}: {why}")
    console.print(f"report: {run_dir / 'report.html'}")
    return metrics


def _recipe(**kwargs: Any) -> Recipe:
    from detprune.pipeline.recipe import Recipe

    return Recipe(**kwargs)


# ----------------------------------------------------------------------------- commands


@app.command()
def demo(quick: Annotated[bool, typer.Option("--quick", help="tiny sizes for tests; numbers mean nothing")] = False,
         criterion: Annotated[list[str] | None, typer.Option("--criterion", metavar="NAME",
                                                             help="default: attribution, coupling, l1")] = None,
         target: Annotated[str, typer.Option("--target", help="common cost target, e.g. macs=0.5")] = "macs=0.5",
         epochs: Annotated[int | None, typer.Option("--epochs", help="fine-tune epochs (default 2, quick 1)")] = None,
         runtime: RuntimeOpt = None, threads: ThreadsOpt = "auto", project: ProjectOpt = "runs",
         name: NameOpt = None) -> None:
    """Prune the shipped baseline with several criteria to the same MACs target, fine-tune, compare.

    Builds synthetic data, loads the baseline shipped with detprune, prunes it with attribution,
    coupling and l1 (criteria not registered yet are skipped and named), fine-tunes each briefly,
    evaluates, prints the table and writes runs/demo/<name>/report.html. About 70 s of CPU time
    (measured 1.5-2 min wall on a busy 2-core machine; longer when other jobs take the cores).

    Examples:

    \b
      detprune demo
      detprune demo --quick
      detprune demo --criterion l1,l2 --target macs=0.6 --runtime torch,onnxruntime
    """
    from detprune.pipeline.demo import demo_recipe

    recipe = demo_recipe(quick, _split(criterion) or None, target, epochs, _split(runtime) or None, _threads(threads))
    _execute(recipe, project, name)


@app.command()
def train(model: ModelOpt, data: DataOpt, task: TaskOpt = "detection", epochs: EpochsOpt = 10, batch: BatchOpt = 16,
          lr: LrOpt = None, optimizer: OptimizerOpt = None,
          mosaic: Annotated[float, typer.Option("--mosaic", help="mosaic probability")] = 0.0,
          bn_sparsity: BnSparsityOpt = 0.0, max_images: MaxImagesOpt = None, eval_images: EvalImgOpt = None,
          img_size: TaskImgOpt = None, num_classes: NcOpt = None, width: WidthOpt = None, seed: SeedOpt = 0,
          threads: ThreadsOpt = "auto", project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Train a detector (built-in or torchvision; Ultralytics via its own trainer) or a saliency net; evaluate it.

    Writes weights/baseline.safetensors, train/ logs (results.csv), metrics.json and the report.
    With --task saliency: the VGG16 encoder-decoder (-m vgg16, --width) on images + binary masks,
    BCE + IoU loss, evaluated with MAE, max F, mean F, weighted F, S-measure and E-measure.

    Examples:

    \b
      detprune train -m yolov8n -d synthetic:500 --epochs 20 --img-size 256
      detprune train -m yolov3-tiny -d ../shared/data/bccd --epochs 50 --bn-sparsity 1e-4
      detprune train -m torchvision:ssdlite320_mobilenet_v3_large -d data.yaml --epochs 5
      detprune train --task saliency -m vgg16 --width 0.25 -d synthetic:1500 --epochs 12 --name sal
      detprune train --task saliency -m vgg16 -d path/to/DUTS --img-size 320 --epochs 20
    """
    from detprune.pipeline.recipe import EvalSpec, TrainSpec

    task = _task(task)
    spec = _train_spec(TrainSpec, "train", task, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer, mosaic=mosaic,
                       max_images=max_images, bn_sparsity=bn_sparsity)
    _execute(_recipe(command="train", model=model, data=data, task=task, img_size=_img_size(img_size, task, data),
                     num_classes=num_classes, width=_width(width, task, model), seed=seed, threads=_threads(threads),
                     train=spec, eval=EvalSpec(max_images=eval_images)), project, name)


@app.command()
def prune(model: ModelOpt, data: OptDataOpt = None, task: TaskOpt = "detection", criterion: CriteriaOpt = None,
          ratio: RatioOpt = None, target: TargetOpt = None, schedule: ScheduleOpt = "local", ratios: RatiosOpt = None,
          round_to: RoundOpt = None, ignore: IgnoreOpt = None, lut: LutOpt = None,
          epochs: Annotated[int, typer.Option("--epochs", help="fine-tune epochs after pruning (needs --data)")] = 0,
          lr: LrOpt = None, batch: BatchOpt = 16, distill: DistillOpt = 0.0, calib_batches: CalibOpt = 4,
          option: OptionOpt = None, eval_images: EvalImgOpt = None, runtime: RuntimeOpt = None,
          img_size: TaskImgOpt = None,
          num_classes: NcOpt = None, width: WidthOpt = None, seed: SeedOpt = 0, threads: ThreadsOpt = "auto",
          project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Prune a model (optionally fine-tune), and compare it with the original.

    With --data the models are evaluated before/after; without, only params/MACs/latency.
    Pruned models are written to weights/<criterion>.safetensors (load with detprune.load).
    --ratios FILE.yaml gives per-layer ratios (module path prefix or group index -> ratio, plus an
    optional default; see `detprune inspect` for the names). With --task saliency, --target params=0.4
    keeps 40% of the parameters (the ratio is bisected on the criterion's scores).

    Examples:

    \b
      detprune prune -m yolov8n --ratio 0.3
      detprune prune -m runs/train/exp/weights/baseline.safetensors -d synthetic:500 -c l1 -c l2 --target macs=0.5 --epochs 2
      detprune prune -m baseline.safetensors -d ../shared/data/bccd -c l1 --target macs=0.3 --epochs 5 --distill 4
      detprune prune -m ultralytics:yolov8n.yaml -c l1 --ratio 0.4 --round-to 8 --runtime torch,onnxruntime
      detprune prune -m demo-baseline -d synthetic:300 -c attribution -o tau=0.05 --target macs=0.5 --img-size 256
      detprune prune -m yolov8n -c l1 --schedule cluster --target latency=0.8@onnxruntime --img-size 256
      detprune prune -m yolov8n -c l1 --schedule cluster --target macs=0.5 --runtime openvino --lut device.json
      detprune prune -m yolov3-tiny -c l1 --ratios ratios.yaml
      detprune prune --task saliency -m sal.safetensors -d synthetic:1500 -c wrg,hrank,l1,random --target params=0.4
    """
    from detprune.pipeline.recipe import EvalSpec, FinetuneSpec, PruneSpec

    task = _task(task)
    if ratios is not None and schedule not in ("local", "layerwise"):
        fail(f"--ratios: per-layer ratios use the layerwise schedule, not --schedule {schedule}")
    spec = PruneSpec(criteria=_split(criterion) or ["l1"],
                     ratio=ratio if ratio is not None or target or ratios is not None else 0.5,
                     target=target, schedule="layerwise" if ratios is not None else schedule,
                     ratios=None if ratios is None else str(ratios), round_to=round_to, ignore=_split(ignore),
                     lut=None if lut is None else str(lut), calib_batches=calib_batches, options=_options(option))
    if distill and not epochs:
        fail("--distill: distillation happens while fine-tuning; add --epochs N")
    tune = (_train_spec(FinetuneSpec, "finetune", task, epochs=epochs, batch=batch, lr=lr, distill=distill)
            if epochs else None)
    _execute(_recipe(command="prune", model=model, data=data, task=task, img_size=_img_size(img_size, task, data),
                     num_classes=num_classes, width=_width(width, task, model), seed=seed, threads=_threads(threads),
                     prune=spec, finetune=tune, eval=EvalSpec(max_images=eval_images) if data else None,
                     bench=_bench(runtime or _target_runtime(target))), project, name)


def _target_runtime(target: str | None) -> list[str] | None:
    """``latency=0.7@onnxruntime`` -> time torch and onnxruntime: the table shows the goal's runtime."""
    from detprune.schedule.target import Target

    try:
        goal = Target.parse(target) if target else None
    except ValueError:
        return None  # a bad target is --target's error, reported by the recipe check
    return ["torch", goal.runtime] if goal and goal.metric == "latency" and goal.runtime != "torch" else None


def _bench(runtime: list[str] | None, runs: int = 30, warmup: int = 5) -> BenchSpec:
    from detprune.pipeline.recipe import BenchSpec

    return BenchSpec(runtimes=_split(runtime) or ["torch"], runs=runs, warmup=warmup)


@app.command()
def finetune(model: ModelOpt, data: DataOpt, task: TaskOpt = "detection", epochs: EpochsOpt = 2, batch: BatchOpt = 16,
             lr: LrOpt = None, optimizer: OptimizerOpt = None, bn_sparsity: BnSparsityOpt = 0.0,
             distill: DistillOpt = 0.0,
             teacher: Annotated[str | None, typer.Option("--teacher", metavar="MODEL", help="the teacher of "
                                                         "--distill: the model before pruning")] = None,
             max_images: MaxImagesOpt = None, eval_images: EvalImgOpt = None, img_size: TaskImgOpt = None,
             seed: SeedOpt = 0, threads: ThreadsOpt = "auto", project: ProjectOpt = "runs",
             name: NameOpt = None) -> None:
    """Fine-tune a (pruned) model and compare before/after; writes weights/finetuned.safetensors.

    Examples:

    \b
      detprune finetune -m runs/prune/exp/weights/l1.safetensors -d synthetic:500 --epochs 5
      detprune finetune -m pruned.safetensors -d ../shared/data/bccd --epochs 20 --lr 0.005
      detprune finetune -m model.safetensors -d synthetic:500 --epochs 5 --bn-sparsity 1e-4
      detprune finetune -m pruned.safetensors -d synthetic:500 --epochs 5 --distill 4 --teacher baseline.safetensors
      detprune finetune --task saliency -m runs/prune/sal/weights/wrg.safetensors -d synthetic:1500 --epochs 4
    """
    from detprune.pipeline.recipe import EvalSpec, FinetuneSpec

    task = _task(task)
    spec = _train_spec(FinetuneSpec, "finetune", task, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer,
                       max_images=max_images, bn_sparsity=bn_sparsity, distill=distill, teacher=teacher)
    _execute(_recipe(command="finetune", model=model, data=data, task=task, img_size=_img_size(img_size, task, data),
                     seed=seed, threads=_threads(threads), finetune=spec, eval=EvalSpec(max_images=eval_images)),
             project, name)


@app.command("eval")
def eval_(model: ModelOpt, data: DataOpt, task: TaskOpt = "detection",
          split: Annotated[str, typer.Option("--split", help="dataset split")] = "val",
          batch: BatchOpt = 16, max_images: MaxImagesOpt = None,
          img_size: TaskImgOpt = None, num_classes: NcOpt = None, width: WidthOpt = None, threads: ThreadsOpt = "auto",
          project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Evaluate a model: COCO mAP50 / mAP50-95, precision, recall, F1 (saliency: the six SOD metrics).

    --task saliency reports MAE, max F, mean (adaptive) F, weighted F, S-measure and mean E-measure.

    Examples:

    \b
      detprune eval -m runs/prune/exp/weights/l1.safetensors -d synthetic:500
      detprune eval -m demo-baseline -d synthetic:300 --img-size 256
      detprune eval -m model.safetensors -d ../shared/data/bccd --split test
      detprune eval --task saliency -m runs/prune/sal/weights/wrg.safetensors -d synthetic:1500 --split test
    """
    from detprune.pipeline.recipe import EvalSpec, ReportSpec

    task = _task(task)
    _execute(_recipe(command="eval", model=model, data=data, task=task, img_size=_img_size(img_size, task, data),
                     num_classes=num_classes, width=_width(width, task, model), threads=_threads(threads),
                     eval=EvalSpec(split=split, batch=batch, max_images=max_images), report=ReportSpec(samples=4)),
             project, name)


@app.command()
def bench(model: ModelOpt, runtime: RuntimeOpt = None,
          runs: Annotated[int, typer.Option("--runs", help="timed runs per runtime")] = 50,
          warmup: Annotated[int, typer.Option("--warmup", help="untimed warm-up runs")] = 10,
          img_size: ImgOpt = 320, num_classes: ClassesOpt = 80, threads: ThreadsOpt = "auto",
          project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Params, MACs and batch-1 CPU latency under torch, ONNX Runtime and OpenVINO.

    Examples:

    \b
      detprune bench -m yolov8n
      detprune bench -m runs/prune/exp/weights/l1.safetensors --runtime openvino --img-size 640
    """
    rts = _split(runtime) or ["torch", "onnxruntime", "openvino"]
    _execute(_recipe(command="bench", model=model, img_size=img_size, num_classes=num_classes,
                     threads=_threads(threads), bench=_bench(rts, runs, warmup)), project, name)


@app.command()
def export(model: ModelOpt, format: FormatOpt = None,
           opset: Annotated[int, typer.Option("--opset", help="ONNX opset")] = 17,
           img_size: ImgOpt = 320, num_classes: ClassesOpt = 80, threads: ThreadsOpt = "auto",
           project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Export a model to ONNX and/or OpenVINO IR (files under weights/ of the run folder).

    Examples:

    \b
      detprune export -m runs/prune/exp/weights/l1.safetensors
      detprune export -m yolov8n -f onnx,openvino --img-size 640
    """
    from detprune.pipeline.recipe import ExportSpec

    spec = ExportSpec(formats=_split(format) or ["onnx"], opset=opset)
    metrics = _execute(_recipe(command="export", model=model, img_size=img_size, num_classes=num_classes,
                               threads=_threads(threads), export=spec), project, name)
    for files in (metrics.get("exports") or {}).values():
        for fmt, path in files.items():
            console.print(f"{fmt}: {path}")


@app.command()
def analyze(model: ModelOpt, data: DataOpt,
            criterion: Annotated[str, typer.Option("--criterion", "-c", help="criterion picking the channels")] = "l1",
            ratios: Annotated[str, typer.Option("--ratios", help="comma-separated ratios in (0, 1)")] = "0.25,0.5,0.75",
            max_groups: Annotated[int, typer.Option("--max-groups", help="largest N groups (0 = all)")] = 12,
            max_images: Annotated[int, typer.Option("--max-images", help="validation images per trial")] = 32,
            img_size: ImgOpt = 320, num_classes: NcOpt = None, threads: ThreadsOpt = "auto",
            project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Sensitivity: prune each coupling group alone at a few ratios and evaluate on a small subset.

    Examples:

    \b
      detprune analyze -m demo-baseline -d synthetic:300 --img-size 256 --max-groups 8
      detprune analyze -m model.safetensors -d data.yaml --ratios 0.3,0.6 --max-images 64
    """
    from detprune.pipeline.recipe import AnalyzeSpec, ReportSpec

    try:
        values = [float(x) for x in _split([ratios])]
    except ValueError:
        fail(f"--ratios: expected comma-separated numbers, got {ratios!r}")
    spec = AnalyzeSpec(criterion=criterion, ratios=values, max_groups=max_groups, max_images=max_images)
    _execute(_recipe(command="analyze", model=model, data=data, img_size=img_size, num_classes=num_classes,
                     threads=_threads(threads), analyze=spec, report=ReportSpec(samples=0)), project, name)


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="recipe YAML (or a run folder's config.yaml)")],
        project: Annotated[str | None, typer.Option("--project", help="override the recipe's project")] = None,
        name: NameOpt = None) -> None:
    """Run a whole pipeline from a YAML recipe; every run folder's config.yaml re-runs it.

    Examples:

    \b
      detprune run recipe.yaml
      detprune run runs/prune/exp/config.yaml --name rerun
    """
    from detprune.pipeline.recipe import load_recipe

    with _errors(flags=False):
        loaded = load_recipe(recipe)
    _execute(loaded, project, name, flags=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run folder (holding metrics.json)")],
           staircase: Annotated[Path | None, typer.Option("--staircase", help="latency staircase data (JSON/CSV)")] = None,
           ) -> None:
    """Re-render a run's report.html / report.md, optionally adding latency-staircase data.

    Examples:

    \b
      detprune report runs/demo/20250101-120000
      detprune report runs/prune/exp --staircase staircase.json
    """
    from detprune.pipeline.runs import read_json, write_json
    from detprune.pipeline.saliency_report import render_any
    from detprune.report.staircase import load_staircase

    with _errors():
        if not (run_dir / "metrics.json").is_file():
            raise FileNotFoundError(f"RUN_DIR: {run_dir} is not a run folder (no metrics.json)")
        if staircase is not None:
            if not staircase.is_file():
                raise FileNotFoundError(f"--staircase: {staircase} does not exist")
            metrics = read_json(run_dir / "metrics.json")
            metrics["staircase"] = load_staircase(staircase)
            write_json(run_dir / "metrics.json", metrics)
        html, md = render_any(run_dir)
    console.print(f"report: {html}\nmarkdown: {md}")


@app.command()
def inspect(model: ModelOpt, size: SizeOpt = 320, num_classes: ClassesOpt = 80,
            all_groups: Annotated[bool, typer.Option("--all", help="also list fully pinned groups")] = True) -> None:
    """Print the coupling groups of a model and which channels are pinned, by which op.

    Examples:

    \b
      detprune inspect --model yolov3-tiny
      detprune inspect --model ultralytics:yolov8n.yaml --size 256
      detprune inspect --model torchvision:fasterrcnn_resnet50_fpn
    """
    import detprune
    from detprune.report.groups import groups_summary, groups_table
    from detprune.zoo import example_inputs_for, load_model

    try:
        net = load_model(model, num_classes=num_classes)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        fail(f"--model {model}: {exc}")
    found = detprune.groups(net, example_inputs_for(net, size))
    console.print(groups_table(found, show_pinned=all_groups))
    console.print(groups_summary(found))


@app.command()
def lut(model: ModelOpt, runtime: Annotated[str, typer.Option("--runtime", help="onnxruntime | openvino | torch")],
        output: Annotated[Path, typer.Option("--output", "-o", help="table to write (extended if it exists)")],
        img_size: ImgOpt = 320, num_classes: ClassesOpt = 80,
        threads: Annotated[int, typer.Option("--threads", help="threads the deployment will use")] = 1,
        window: Annotated[int, typer.Option("--window", help="staircase probe: widths below the full width")] = 48,
        max_ratio: Annotated[float, typer.Option("--max-ratio", help="deepest cut to time, fraction of a group")] = 0.9,
        rounds: Annotated[int, typer.Option("--rounds", help="interleaved timing rounds per batch (more on a "
                                            "noisy device)")] = 5,
        ) -> None:
    """Measure a cluster-pruning latency table on this machine (run it on the deployment device).

    The table holds each coupling group's latency staircase and its layers' latencies at every
    width cluster pruning may choose, with this machine's fingerprint. `detprune prune --schedule
    cluster --lut FILE` on a workstation then prunes for the device without measuring again.

    Examples:

    \b
      detprune lut -m yolov8n --runtime onnxruntime -o rpi4-ort.json --img-size 320
      detprune lut -m runs/train/exp/weights/baseline.safetensors --runtime openvino -o nuc.json
    """
    from detprune.schedule.cluster_prune import build_lut
    from detprune.schedule.runners import RUNTIMES
    from detprune.zoo import example_inputs_for, load_model

    if runtime not in RUNTIMES:
        fail(f"--runtime: must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if not 0 < max_ratio < 1:
        fail(f"--max-ratio: must be in (0, 1), got {max_ratio}")
    if threads < 1:
        fail(f"--threads: must be a positive integer, got {threads}")
    if rounds < 1:
        fail(f"--rounds: must be a positive integer, got {rounds}")
    with _errors():
        net = load_model(model, num_classes=num_classes)
        table = build_lut(net, example_inputs_for(net, img_size), runtime, output, threads=threads, window=window,
                          max_ratio=max_ratio, rounds=rounds)
    layers = sum(1 for sig in table.entries if sig.startswith("layer:"))
    console.print(f"latency table: {output} ({runtime}, {threads} thread(s)): "
                  f"{len(table.entries) - layers} group staircases, {layers} layer shapes")


@app.command()
def version() -> None:
    """Print the detprune version."""
    import detprune

    console.print(detprune.__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
