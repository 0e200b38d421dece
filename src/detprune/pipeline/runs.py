"""Run folders (``runs/<command>/<name>``, Ultralytics-style) and atomic file writes.

Every CLI command writes one folder holding its resolved config, logs, checkpoints, metrics,
plots and report, so that a result can be inspected, shared and re-run later. Files are
written with :mod:`detprune.atomic` (a temporary sibling moved into place): a killed run never
leaves a half-written ``metrics.json`` or report that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

import yaml

from detprune.atomic import atomic_write_text


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def new_run_dir(command: str, project: str | Path | None = None, name: str | None = None,
                exist_ok: bool = False) -> Path:
    """Create ``<project>/<command>/<name>`` (default ``runs``, a timestamp); ``name2``, ``name3``...
    when it exists and ``exist_ok`` is off, as Ultralytics does."""
    base = Path(project) if project else Path("runs")
    stem = name or timestamp()
    if "/" in stem or stem in ("", ".", ".."):
        raise ValueError(f"--name must be a plain folder name, got {stem!r}")
    if "/" in command or command in ("", ".", ".."):  # a recipe's ``command`` would put the run outside project
        raise ValueError(f"command must be a plain folder name, got {command!r}")
    path = base / command / stem
    if not exist_ok:
        n = 2
        while path.exists():
            path = base / command / f"{stem}{n}"
            n += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def jsonable(obj: Any) -> Any:
    """Plain JSON values: NaN/inf become ``null`` (strict JSON), paths and tuples become str/list."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return jsonable(obj.item())
    return obj


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # a bare JSONDecodeError does not say which file
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_yaml(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(jsonable(data), sort_keys=False))


class RunLog:
    """Append-only ``logs/run.log`` of one run (timestamped lines), also echoed to a console."""

    def __init__(self, run_dir: Path, console: Any = None) -> None:
        self.path = Path(run_dir) / "logs" / "run.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.console = console

    def __call__(self, message: str, echo: bool = True) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{_dt.datetime.now().isoformat(timespec='seconds')} {message}\n")
        if echo and self.console is not None:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)
