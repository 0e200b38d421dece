"""Shared fixtures of the pipeline tests: one torch thread, tiny recipes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from detprune.pipeline.recipe import Recipe
from detprune.pipeline.runner import run_recipe


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs with one intra-op thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def run() -> Callable[[Recipe, Path], dict]:
    """:func:`run_recipe`, then torch's thread count as it was (a run applies the recipe's ``threads``)."""
    def run_restoring_threads(recipe: Recipe, run_dir: Path) -> dict:
        n = torch.get_num_threads()
        try:
            return run_recipe(recipe, run_dir)
        finally:
            torch.set_num_threads(n)

    return run_restoring_threads
