"""Commands that run a recipe into a run folder: demo, train, prune, finetune, eval, analyze, run, report.

Each builds a :class:`~detprune.pipeline.recipe.Recipe` from its flags and hands it to
:func:`~detprune.cli.common.execute`; the run folder's ``config.yaml`` re-runs it with ``detprune run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detprune.cli.common import (app, bench_spec, check_task, console, errors, execute, fail, img_size_for, make_recipe,
                                 parse_options, parse_threads, split_values, target_runtimes, train_spec, width_for)
from detprune.cli.options import (BatchOpt, BnSparsityOpt, CalibOpt, CriteriaOpt, DataOpt, DistillOpt, EpochsOpt,
                                  EvalImgOpt, FinetuneEveryOpt, IgnoreOpt, ImgOpt, KeepOpt, LrOpt, LutOpt, MarginOpt,
                                  MaxDropOpt, MaxImagesOpt, MaxRatioOpt, MinChannelsOpt, ModelOpt, NameOpt, NcOpt,
                                  OptDataOpt, OptimizerOpt, OptionOpt, PricingOpt, ProjectOpt, RatioOpt, RatiosOpt,
                                  RoundOpt, RuntimeOpt, ScheduleOpt, SeedOpt, StagesOpt, StepScheduleOpt, StepsOpt,
                                  TargetOpt, TaskImgOpt, TaskOpt, ThreadsOpt, WidthOpt)


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

    recipe = demo_recipe(quick, split_values(criterion) or None, target, epochs, split_values(runtime) or None, parse_threads(threads))
    execute(recipe, project, name)


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

    task = check_task(task)
    spec = train_spec(TrainSpec, "train", task, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer, mosaic=mosaic,
                       max_images=max_images, bn_sparsity=bn_sparsity)
    execute(make_recipe(command="train", model=model, data=data, task=task, img_size=img_size_for(img_size, task, data),
                     num_classes=num_classes, width=width_for(width, task, model), seed=seed, threads=parse_threads(threads),
                     train=spec, eval=EvalSpec(max_images=eval_images)), project, name)


@app.command()
def prune(model: ModelOpt, data: OptDataOpt = None, task: TaskOpt = "detection", criterion: CriteriaOpt = None,
          ratio: RatioOpt = None, target: TargetOpt = None, schedule: ScheduleOpt = "local", ratios: RatiosOpt = None,
          round_to: RoundOpt = None, ignore: IgnoreOpt = None, lut: LutOpt = None,
          epochs: Annotated[int, typer.Option("--epochs", help="fine-tune epochs after pruning (needs --data)")] = 0,
          lr: LrOpt = None, optimizer: OptimizerOpt = None, batch: BatchOpt = 16, distill: DistillOpt = 0.0,
          calib_batches: CalibOpt = 4,
          option: OptionOpt = None, eval_images: EvalImgOpt = None, runtime: RuntimeOpt = None,
          img_size: TaskImgOpt = None, classes: KeepOpt = None,
          steps: StepsOpt = 1, step_schedule: StepScheduleOpt = "geometric", max_drop: MaxDropOpt = None,
          max_ratio: MaxRatioOpt = 0.9, min_channels: MinChannelsOpt = 1, pricing: PricingOpt = "table",
          margin: MarginOpt = 0.01, finetune_every: FinetuneEveryOpt = None, stages: StagesOpt = None,
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
      detprune prune -m demo-baseline -d synthetic:300 -c l1 --target macs=0.3 --steps 3 --epochs 2 --max-drop 0.05
      detprune prune -m bccd.safetensors -d ../shared/data/bccd --classes WBC -c attribution --target macs=0.2 --epochs 5
      detprune prune --task saliency -m sal.safetensors -d synthetic:1500 -c wrg,hrank,l1,random --target params=0.4
    """
    from detprune.pipeline.recipe import EvalSpec, FinetuneSpec, PruneSpec

    task = check_task(task)
    if ratios is not None and schedule not in ("local", "layerwise"):
        fail(f"--ratios: per-layer ratios use the layerwise schedule, not --schedule {schedule}")
    spec = PruneSpec(criteria=split_values(criterion) or ["l1"],
                     ratio=ratio if ratio is not None or target or ratios is not None else 0.5,
                     target=target, schedule="layerwise" if ratios is not None else schedule,
                     ratios=None if ratios is None else str(ratios), round_to=round_to, ignore=split_values(ignore),
                     lut=None if lut is None else str(lut), calib_batches=calib_batches, options=parse_options(option),
                     steps=steps, step_schedule=step_schedule, max_drop=max_drop, max_ratio=max_ratio,
                     min_channels=min_channels, finetune_every=finetune_every, pricing=pricing,
                     margin=margin, stages=stages)
    if distill and not epochs:
        fail("--distill: distillation happens while fine-tuning; add --epochs N")
    tune = (train_spec(FinetuneSpec, "finetune", task, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer,
                       distill=distill)
            if epochs else None)
    execute(make_recipe(command="prune", model=model, data=data, task=task, img_size=img_size_for(img_size, task, data),
                     num_classes=num_classes, width=width_for(width, task, model), seed=seed, threads=parse_threads(threads),
                     classes=split_values(classes) or None, prune=spec, finetune=tune, eval=EvalSpec(max_images=eval_images) if data else None,
                     bench=bench_spec(runtime or target_runtimes(target))), project, name)


@app.command()
def finetune(model: ModelOpt, data: DataOpt, task: TaskOpt = "detection", epochs: EpochsOpt = 2, batch: BatchOpt = 16,
             lr: LrOpt = None, optimizer: OptimizerOpt = None, bn_sparsity: BnSparsityOpt = 0.0,
             distill: DistillOpt = 0.0,
             teacher: Annotated[str | None, typer.Option("--teacher", metavar="MODEL", help="the teacher of "
                                                         "--distill: the model before pruning")] = None,
             max_images: MaxImagesOpt = None, eval_images: EvalImgOpt = None, img_size: TaskImgOpt = None,
             classes: KeepOpt = None, seed: SeedOpt = 0, threads: ThreadsOpt = "auto", project: ProjectOpt = "runs",
             name: NameOpt = None) -> None:
    """Fine-tune a (pruned) model and compare before/after; writes weights/finetuned.safetensors.

    Examples:

    \b
      detprune finetune -m runs/prune/exp/weights/l1.safetensors -d synthetic:500 --epochs 5
      detprune finetune -m pruned.safetensors -d ../shared/data/bccd --epochs 20 --lr 0.005
      detprune finetune -m model.safetensors -d synthetic:500 --epochs 5 --bn-sparsity 1e-4
      detprune finetune -m pruned.safetensors -d synthetic:500 --epochs 5 --distill 4 --teacher baseline.safetensors
      detprune finetune -m bccd.safetensors -d ../shared/data/bccd --classes WBC --epochs 5   # the one-class reference
      detprune finetune --task saliency -m runs/prune/sal/weights/wrg.safetensors -d synthetic:1500 --epochs 4
    """
    from detprune.pipeline.recipe import EvalSpec, FinetuneSpec

    task = check_task(task)
    spec = train_spec(FinetuneSpec, "finetune", task, epochs=epochs, batch=batch, lr=lr, optimizer=optimizer,
                       max_images=max_images, bn_sparsity=bn_sparsity, distill=distill, teacher=teacher)
    execute(make_recipe(command="finetune", model=model, data=data, task=task, img_size=img_size_for(img_size, task, data),
                     seed=seed, threads=parse_threads(threads), classes=split_values(classes) or None, finetune=spec,
                     eval=EvalSpec(max_images=eval_images)),
             project, name)


@app.command("eval")
def eval_(model: ModelOpt, data: DataOpt, task: TaskOpt = "detection",
          split: Annotated[str, typer.Option("--split", help="dataset split")] = "val",
          batch: BatchOpt = 16, max_images: MaxImagesOpt = None, classes: KeepOpt = None,
          img_size: TaskImgOpt = None, num_classes: NcOpt = None, width: WidthOpt = None, threads: ThreadsOpt = "auto",
          project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Evaluate a model: COCO mAP50 / mAP50-95, precision, recall, F1 (saliency: the six SOD metrics).

    --task saliency reports MAE, max F, mean (adaptive) F, weighted F, S-measure and mean E-measure.

    Examples:

    \b
      detprune eval -m runs/prune/exp/weights/l1.safetensors -d synthetic:500
      detprune eval -m demo-baseline -d synthetic:300 --img-size 256
      detprune eval -m model.safetensors -d ../shared/data/bccd --split test
      detprune eval -m runs/prune/wbc/weights/attribution.safetensors -d ../shared/data/bccd --classes WBC
      detprune eval --task saliency -m runs/prune/sal/weights/wrg.safetensors -d synthetic:1500 --split test
    """
    from detprune.pipeline.recipe import EvalSpec, ReportSpec

    task = check_task(task)
    execute(make_recipe(command="eval", model=model, data=data, task=task, img_size=img_size_for(img_size, task, data),
                     num_classes=num_classes, width=width_for(width, task, model), threads=parse_threads(threads),
                     classes=split_values(classes) or None, eval=EvalSpec(split=split, batch=batch, max_images=max_images), report=ReportSpec(samples=4)),
             project, name)


@app.command()
def analyze(model: ModelOpt, data: DataOpt,
            criterion: Annotated[str, typer.Option("--criterion", "-c", help="criterion picking the channels")] = "l1",
            ratios: Annotated[str, typer.Option("--ratios", help="comma-separated ratios in (0, 1)")] = "0.25,0.5,0.75",
            max_groups: Annotated[int, typer.Option("--max-groups", help="largest N groups (0 = all)")] = 12,
            max_images: Annotated[int, typer.Option("--max-images", help="validation images per trial")] = 32,
            target: Annotated[str | None, typer.Option("--target", help="propose per-layer ratios for this MACs / "
                                                       "params target (writes ratios.yaml for prune --ratios)")] = None,
            img_size: ImgOpt = 320, num_classes: NcOpt = None, threads: ThreadsOpt = "auto",
            project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Sensitivity: prune each coupling group alone at a few ratios and evaluate on a small subset.

    Examples:

    \b
      detprune analyze -m demo-baseline -d synthetic:300 --img-size 256 --max-groups 8
      detprune analyze -m model.safetensors -d data.yaml --ratios 0.3,0.6 --max-images 64
      detprune analyze -m demo-baseline -d synthetic:300 --img-size 256 --target macs=0.6   # then prune --ratios
    """
    from detprune.pipeline.recipe import AnalyzeSpec, ReportSpec

    try:
        values = [float(x) for x in split_values([ratios])]
    except ValueError:
        fail(f"--ratios: expected comma-separated numbers, got {ratios!r}")
    spec = AnalyzeSpec(criterion=criterion, ratios=values, max_groups=max_groups, max_images=max_images, target=target)
    execute(make_recipe(command="analyze", model=model, data=data, img_size=img_size, num_classes=num_classes,
                     threads=parse_threads(threads), analyze=spec, report=ReportSpec(samples=0)), project, name)


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

    with errors(flags=False):
        loaded = load_recipe(recipe)
    execute(loaded, project, name, flags=False)


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

    with errors():
        if not (run_dir / "metrics.json").is_file():
            raise FileNotFoundError(f"RUN_DIR: {run_dir} is not a run folder (no metrics.json)")
        found = read_json(run_dir / "metrics.json")
        if not isinstance(found, dict) or not isinstance(found.get("rows", []), list):
            raise ValueError(f"{run_dir / 'metrics.json'}: not a detprune metrics file (expected an object with a rows list)")
        if staircase is not None:
            if not staircase.is_file():
                raise FileNotFoundError(f"--staircase: {staircase} does not exist")
            metrics = read_json(run_dir / "metrics.json")
            metrics["staircase"] = load_staircase(staircase)
            write_json(run_dir / "metrics.json", metrics)
        html, md = render_any(run_dir)
    console.print(f"report: {html}\nmarkdown: {md}")
