"""The ``detprune`` command line (Typer + Rich).

Wrong arguments end with a one-line reason and exit code 2, never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Structured channel pruning for object detectors.")
console = Console(width=None if Console().is_terminal else 160)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="yolov3-tiny | yolov8n | ultralytics:yolov8n.yaml | "
                                       "torchvision:fasterrcnn_resnet50_fpn | path/to/model.safetensors")]
SizeOpt = Annotated[int, typer.Option("--size", help="example input size (square) used to trace the model")]
ClassesOpt = Annotated[int, typer.Option("--num-classes", help="classes of a freshly built model")]


def fail(message: str) -> None:
    """One-line error, exit code 2."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


@app.command()
def inspect(model: ModelOpt, size: SizeOpt = 320, num_classes: ClassesOpt = 80,
            all_groups: Annotated[bool, typer.Option("--all", help="also list fully pinned groups")] = True) -> None:
    """Print the coupling groups of a model and which channels are pinned, by which op.

    Examples:
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
def version() -> None:
    """Print the detprune version."""
    import detprune

    console.print(detprune.__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
