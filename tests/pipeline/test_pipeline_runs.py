"""Run folders and atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from detprune.pipeline.runs import RunLog, atomic_write_text, new_run_dir, read_json, write_json


def test_run_dirs_increment_like_ultralytics(tmp_path: Path) -> None:
    a = new_run_dir("prune", tmp_path, "exp")
    b = new_run_dir("prune", tmp_path, "exp")
    c = new_run_dir("prune", tmp_path, "exp", exist_ok=True)
    assert a == tmp_path / "prune" / "exp" and b == tmp_path / "prune" / "exp2" and c == a
    stamped = new_run_dir("eval", tmp_path)
    assert stamped.parent == tmp_path / "eval" and stamped.name[:8].isdigit()
    with pytest.raises(ValueError, match="--name"):
        new_run_dir("eval", tmp_path, "a/b")


@pytest.mark.parametrize("command", ["../../escape", "/abs", "..", ""])
def test_recipe_command_cannot_leave_the_project(tmp_path: Path, command: str) -> None:
    project = tmp_path / "p"
    with pytest.raises(ValueError, match="command must be a plain folder name"):
        new_run_dir(command, project, "x")
    assert not (tmp_path / "escape").exists() and not project.exists()


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "sub" / "a.txt", "one")
    atomic_write_text(tmp_path / "sub" / "a.txt", "two")
    assert (tmp_path / "sub" / "a.txt").read_text() == "two"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.txt"]


def test_json_is_strict(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"map": math.nan, "p": Path("x/y"), "t": (1, 2.5), "inf": math.inf})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert read_json(tmp_path / "m.json") == {"map": None, "p": "x/y", "t": [1, 2.5], "inf": None}
    json.loads(text)


def test_run_log_appends(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    log("first")
    log("second", echo=False)
    lines = (tmp_path / "logs" / "run.log").read_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith(" first") and lines[1].endswith(" second")
