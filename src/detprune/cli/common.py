"""What every command shares: the Typer app, the console, one-line errors, running a recipe.

Wrong arguments end with a one-line reason naming the argument and exit code 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:  # the pipeline imports torch: keep `detprune --help` fast
    from detprune.pipeline.recipe import BenchSpec, Recipe

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Structured channel pruning for object detectors.")
console = Console(width=None if Console().is_terminal else 160)


def fail(message: str) -> NoReturn:
    """One-line error, exit code 2."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def split_values(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated option values -> one list."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def parse_options(values: list[str] | None) -> dict[str, object]:
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


def parse_threads(value: str) -> int | str:
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        fail(f"--threads: expected 'auto' or a positive integer, got {value!r}")
    return int(value)


def check_task(task: str) -> str:
    from detprune.pipeline.recipe import TASKS

    if task not in TASKS:
        fail(f"--task: must be one of {', '.join(TASKS)}, got {task!r}")
    return task


def img_size_for(value: int | None, task: str, data: str | None) -> int:
    """``--img-size``, else 320 (64 for saliency on synthetic data: the size it is generated for)."""
    if value is not None:
        return value
    if task == "saliency":
        from detprune.pipeline.saliency import default_img_size

        return default_img_size(data)
    return 320


def width_for(value: float | None, task: str, model: str) -> float | None:
    """A fresh saliency net's width, written out (so config.yaml holds it); ``None`` otherwise."""
    if value is None and task == "saliency":
        from detprune.pipeline.saliency import DEFAULT_WIDTH, fresh_saliency_model

        return DEFAULT_WIDTH if fresh_saliency_model(model) else None
    return value


def train_spec(cls: type, section: str, task: str, **values: Any) -> Any:
    """A TrainSpec / FinetuneSpec: given values over the task's defaults over the dataclass's."""
    from detprune.pipeline.recipe import task_defaults

    return cls(**{**task_defaults(task, section), **{k: v for k, v in values.items() if v is not None}})


@contextlib.contextmanager
def errors(flags: bool = True, run_dir: Path | None = None) -> Iterator[None]:
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

    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)  # KeyError's str() is a repr
    text = message.strip().splitlines()[0] if message.strip() else ""
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


def execute(recipe: Recipe, project: str | None = None, name: str | None = None, flags: bool = True) -> dict:
    """Validate, create the run folder, run, print the comparison and where the report is."""
    from detprune.pipeline.runner import run_recipe
    from detprune.pipeline.runs import new_run_dir
    from detprune.pipeline.validate import validate
    from detprune.report.format import rich_table

    with errors(flags):
        validate(recipe)  # before creating a folder: a typo leaves nothing behind
        run_dir = new_run_dir(recipe.command, project or recipe.project, name or recipe.name)
    with errors(flags, run_dir):
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


def make_recipe(**kwargs: Any) -> Recipe:
    from detprune.pipeline.recipe import Recipe

    return Recipe(**kwargs)


def target_runtimes(target: str | None) -> list[str] | None:
    """``latency=0.7@onnxruntime`` -> time torch and onnxruntime: the table shows the goal's runtime."""
    from detprune.schedule.target import Target

    try:
        goal = Target.parse(target) if target else None
    except ValueError:
        return None  # a bad target is --target's error, reported by the recipe check
    return ["torch", goal.runtime] if goal and goal.metric == "latency" and goal.runtime != "torch" else None


def bench_spec(runtime: list[str] | None, runs: int = 30, warmup: int = 5) -> BenchSpec:
    from detprune.pipeline.recipe import BenchSpec

    return BenchSpec(runtimes=split_values(runtime) or ["torch"], runs=runs, warmup=warmup)
