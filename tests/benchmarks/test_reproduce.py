"""The ``Command:`` line benchmarks write: pasted into a shell, it reruns the benchmark for any user."""

from __future__ import annotations

import shlex
from pathlib import Path

from reproduce import command_line  # benchmarks/ is on sys.path (conftest)


def test_the_command_is_quoted_and_names_home_as_tilde() -> None:
    cmd = command_line("specialise.py", ["--baseline", str(Path.home() / ".cache/b.safetensors"),
                                         "--attribution", '{"tau": 0.0}'])
    assert cmd.startswith("uv run python benchmarks/specialise.py ")
    assert "--baseline ~/.cache/b.safetensors" in cmd and str(Path.home()) not in cmd
    assert """'{"tau": 0.0}'""" in cmd  # the JSON stays one argument
    assert shlex.split(cmd)[-1] == '{"tau": 0.0}'


def test_a_home_path_with_spaces_keeps_the_tilde_outside_the_quotes() -> None:
    cmd = command_line("latency.py", ["--out", str(Path.home() / "my runs/x")])
    assert cmd.endswith("--out ~/'my runs/x'")  # bash expands ~ before the quoted rest


def test_uv_args_go_before_python() -> None:
    assert command_line("graph.py", [], uv_args=["--group", "bench"]) == "uv run --group bench python benchmarks/graph.py"


def test_tilde_shortens_only_paths_under_home() -> None:
    from reproduce import tilde

    assert tilde(Path.home() / ".cache/x.safetensors") == "~/.cache/x.safetensors"
    assert tilde("/elsewhere/x") == "/elsewhere/x"
    assert tilde(str(Path.home()) + "other/x") == str(Path.home()) + "other/x"  # a sibling folder is not home
