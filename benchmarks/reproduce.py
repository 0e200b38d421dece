"""The ``Command:`` line each benchmark writes into its results, so a table says how to remake it.

Scripts import this as a sibling module (``python benchmarks/x.py`` puts ``benchmarks/`` on the path).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path


def tilde(path: str | Path) -> str:
    """``path`` with the home folder written as ``~`` (a results file should not name one user's home)."""
    home, text = str(Path.home()) + "/", str(path)
    return "~/" + text[len(home):] if text.startswith(home) and len(text) > len(home) else text


def command_line(script: str, argv: Sequence[str], *, uv_args: Sequence[str] = ()) -> str:
    """``uv run python benchmarks/<script> <argv>``, shell-quoted, the home folder written as ``~``.

    ``~`` is left outside the quotes so a shell still expands it: the line works for any user.
    """
    words = ["uv", "run", *uv_args, "python", f"benchmarks/{script}"]
    quoted = [shlex.quote(w) for w in words]
    for arg in argv:
        short = tilde(arg)
        quoted.append("~/" + shlex.quote(short[2:]) if short != arg else shlex.quote(arg))
    return " ".join(quoted)
