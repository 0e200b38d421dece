"""Shared fixtures of the pipeline tests: one torch thread, tiny recipes."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every test here runs with one intra-op thread (see tests/conftest.py)."""
