"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("detprune-cache")


@pytest.fixture(autouse=True)
def _private_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What detprune caches (generated data sets, latency tables, baselines) goes to one temporary
    directory per test session, never the user's: tests neither read a developer's tables nor leave theirs."""
    monkeypatch.setenv("DETPRUNE_CACHE", str(session_cache))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test with one intra-op thread, restoring the count after.

    The CI box has 2 shared cores: tiny tensors gain nothing from intra-op threads and oversubscribed
    threads made conv nets up to 10x slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
