"""Per-node runtime profiles: every node timed, convolutions told apart from the rest."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detprune.deploy.profile import KINDS, by_kind, kind_of, profile_module


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(32, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(self.conv(x))
        return self.pw(torch.cat([a, self.dw(a)], 1))


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_profile_times_every_kind_of_node(runtime: str) -> None:
    nodes = profile_module(Net(), torch.rand(1, 3, 32, 32), runtime, runs=3, warmup=1)
    assert nodes and all(n.ms >= 0 and n.kind in KINDS for n in nodes)
    kinds = by_kind(nodes)
    assert set(kinds) == set(KINDS)
    assert sum(kinds.values()) == pytest.approx(sum(n.ms for n in nodes))
    assert kinds["conv"] > 0  # the dense convolutions ran and were classified
    if runtime == "onnxruntime":  # ORT keeps the graph's nodes: the grouped conv is recognised
        assert kinds["depthwise conv"] > 0
        assert any(n.op == "Concat" and n.kind == "data movement" for n in nodes)


def test_kinds_of_both_runtimes_ops() -> None:
    assert kind_of("Conv") == "conv" and kind_of("Conv", depthwise=True) == "depthwise conv"
    assert kind_of("GroupConvolution") == "depthwise conv" and kind_of("Convolution") == "conv"
    assert kind_of("QuickGelu") == kind_of("Sigmoid") == "activation / elementwise"
    assert kind_of("Reorder") == kind_of("Concat") == kind_of("ReorderOutput") == "data movement"
    assert kind_of("NonMaxSuppression") == "other"
    with pytest.raises(ValueError, match="onnxruntime or openvino"):
        profile_module(Net(), torch.rand(1, 3, 32, 32), "torch")
