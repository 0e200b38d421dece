"""One cache root for everything detprune can rebuild, moved by one variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from detprune.cache import cache_root
from detprune.detection.data.synthetic import cache_root as synthetic_root
from detprune.saliency.synthetic import saliency_cache_root
from detprune.schedule.lut import cache_dir as lut_dir


def test_one_variable_moves_every_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETPRUNE_CACHE", str(tmp_path))
    assert cache_root() == tmp_path and cache_root("baselines", "x.safetensors") == tmp_path / "baselines/x.safetensors"
    assert (lut_dir(), synthetic_root(), saliency_cache_root()) == (
        tmp_path / "latency", tmp_path / "synthetic", tmp_path / "saliency")


def test_default_follows_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DETPRUNE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root("latency") == tmp_path / "xdg" / "detprune" / "latency"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "detprune"
