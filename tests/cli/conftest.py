"""Shared fixtures of the CLI tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_threads():
    """Commands set torch's thread count (--threads); keep other tests unaffected."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
