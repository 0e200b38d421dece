"""benchmarks/specialise_allocation.py: kept fractions are summarised per part of a YOLOv8."""

from __future__ import annotations

import pytest
from torch import nn


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("specialise_allocation")


def _yolo_like(widths: dict[str, int]) -> nn.Module:
    model = nn.Module()
    for path, out in widths.items():
        parent = model
        *parents, leaf = path.split(".")
        for part in parents:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, nn.Conv2d(1, out, 1, bias=False))
    return model


def test_parts_smallest_and_hardest_cut(bench) -> None:
    full = {"stage1.conv": 32, "td3.cv1.conv": 64, "head.cv2.a.conv": 64, "head.cv3.a.conv": 128, "head.cv3.b": 1}
    cut = {**full, "stage1.conv": 16, "td3.cv1.conv": 4, "head.cv2.a.conv": 48, "head.cv3.a.conv": 32}
    before = {n: p.shape[0] for n, p in _yolo_like(full).named_parameters()}
    kept = bench.kept_fractions(_yolo_like(cut), before)
    assert "head.cv3.b.weight" not in kept  # a one-channel output has nothing to cut
    s = bench.summary(kept)
    assert (s["backbone"], s["neck"], s["box"], s["cls"]) == (0.5, 0.0625, 0.75, 0.25)
    assert s["min"] == 0.0625 and s["emptied"] == "-"
    assert s["most_cut"] == "td3.cv1 0.06, head.cv3.a 0.25, stage1 0.50"
    assert bench.summary({**kept, "td3.cv1.conv.weight": 0.03})["emptied"] == "td3.cv1"
