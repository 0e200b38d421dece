"""Commands around a model file: bench, export, inspect, lut (latency tables for the device), version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from detprune.cli.common import (app, bench_spec, console, errors, execute, fail, make_recipe, parse_threads,
                                 split_values)
from detprune.cli.options import (ClassesOpt, FormatOpt, ImgOpt, ModelOpt, NameOpt, ProjectOpt, RuntimeOpt, SizeOpt,
                                  ThreadsOpt)


@app.command()
def bench(model: ModelOpt, runtime: RuntimeOpt = None,
          runs: Annotated[int, typer.Option("--runs", help="timed runs per runtime")] = 50,
          warmup: Annotated[int, typer.Option("--warmup", help="untimed warm-up runs")] = 10,
          img_size: ImgOpt = 320, num_classes: ClassesOpt = 80, threads: ThreadsOpt = "auto",
          project: ProjectOpt = "runs", name: NameOpt = None) -> None:
    """Params, MACs and batch-1 latency under torch, ONNX Runtime and OpenVINO (CPU; a GPU with e.g. torch:cuda).

    Examples:

    \b
      detprune bench -m yolov8n
      detprune bench -m runs/prune/exp/weights/l1.safetensors --runtime openvino --img-size 640
      detprune bench -m yolov8n --runtime torch,torch:cuda,onnxruntime:cuda
    """
    rts = split_values(runtime) or ["torch", "onnxruntime", "openvino"]
    execute(make_recipe(command="bench", model=model, img_size=img_size, num_classes=num_classes,
                     threads=parse_threads(threads), bench=bench_spec(rts, runs, warmup)), project, name)


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

    spec = ExportSpec(formats=split_values(format) or ["onnx"], opset=opset)
    metrics = execute(make_recipe(command="export", model=model, img_size=img_size, num_classes=num_classes,
                               threads=parse_threads(threads), export=spec), project, name)
    for files in (metrics.get("exports") or {}).values():
        for fmt, path in files.items():
            console.print(f"{fmt}: {path}")


@app.command()
def inspect(model: ModelOpt, size: SizeOpt = 320, num_classes: ClassesOpt = 80,
            all_groups: Annotated[bool, typer.Option("--all/--prunable-only",
                                                     help="list fully pinned groups too, or only groups with "
                                                     "prunable channels")] = True) -> None:
    """Print the coupling groups of a model and which channels are pinned, by which op.

    Examples:

    \b
      detprune inspect --model yolov3-tiny
      detprune inspect --model ultralytics:yolov8n.yaml --size 256
      detprune inspect --model torchvision:fasterrcnn_resnet50_fpn
      detprune inspect --model yolov8n --prunable-only
    """
    import detprune
    from detprune.report.groups import groups_summary, groups_table
    from detprune.zoo import example_inputs_for, load_model

    if size < 32 or size % 32:
        fail(f"--size: must be a multiple of 32 (>= 32), got {size}")
    if num_classes < 1:
        fail(f"--num-classes: must be >= 1, got {num_classes}")
    try:
        net = load_model(model, num_classes=num_classes)
    except (ValueError, FileNotFoundError, KeyError, TypeError, ImportError) as exc:
        fail(f"--model {model}: {exc}")
    with errors():  # a forward that fails on the example input (TraceError): one line, no traceback
        found = detprune.groups(net, example_inputs_for(net, size))
    console.print(groups_table(found, show_pinned=all_groups))
    console.print(groups_summary(found))


@app.command()
def lut(model: ModelOpt, runtime: Annotated[str, typer.Option("--runtime", help="onnxruntime | openvino | torch, "
                                                                            "or on a GPU e.g. onnxruntime:cuda")],
        output: Annotated[Path, typer.Option("--output", "-o", help="table to write (extended if it exists)")],
        img_size: ImgOpt = 320, num_classes: ClassesOpt = 80,
        threads: Annotated[int, typer.Option("--threads", help="threads the deployment will use")] = 1,
        window: Annotated[int, typer.Option("--window", help="staircase probe: widths below the full width")] = 48,
        max_ratio: Annotated[float, typer.Option("--max-ratio", help="deepest cut to time, fraction of a group")] = 0.9,
        rounds: Annotated[int, typer.Option("--rounds", help="interleaved timing rounds per batch (more on a "
                                            "noisy device)")] = 5,
        round_to: Annotated[int | None, typer.Option("--round-to", help="cluster sizes at multiples of N, as "
                                                     "`prune --schedule cluster --round-to N` will use (default: "
                                                     "the SIMD block on onnxruntime / openvino CPU)")] = None,
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
    from detprune.deploy.backend import check_device, parse_runtime
    from detprune.zoo import example_inputs_for, load_model

    try:
        check_device(parse_runtime(runtime))
    except ValueError as exc:
        fail(f"--runtime: {exc}")
    if not 0 < max_ratio < 1:
        fail(f"--max-ratio: must be in (0, 1), got {max_ratio}")
    if threads < 1:
        fail(f"--threads: must be a positive integer, got {threads}")
    if rounds < 1:
        fail(f"--rounds: must be a positive integer, got {rounds}")
    if round_to is not None and round_to < 1:
        fail(f"--round-to: must be a positive integer, got {round_to}")
    with errors():
        net = load_model(model, num_classes=num_classes)
        table = build_lut(net, example_inputs_for(net, img_size), runtime, output, threads=threads, window=window,
                          max_ratio=max_ratio, rounds=rounds, min_cluster=round_to)
    layers = sum(1 for sig in table.entries if sig.startswith("layer:"))
    console.print(f"latency table: {output} ({runtime}, {threads} thread(s)): "
                  f"{len(table.entries) - layers} group staircases, {layers} layer shapes")


@app.command()
def version() -> None:
    """Print the detprune version."""
    import detprune

    console.print(detprune.__version__)
