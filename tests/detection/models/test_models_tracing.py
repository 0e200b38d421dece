"""The pruning engine traces ``forward``: it must be FX/export traceable with the prediction convs as outputs."""

from __future__ import annotations

import pytest
import torch
from torch import fx

from detprune.detection.models import build_model


def _producers(graph: fx.Graph, node: fx.Node) -> list[str]:
    """Module targets of the call_module nodes feeding ``node`` through torch.cat (or itself)."""
    if node.op == "call_module":
        return [str(node.target)]
    return [t for arg in node.all_input_nodes for t in _producers(graph, arg)]


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov8n"])
def test_fx_trace_outputs_are_prediction_convs(name: str) -> None:
    m = build_model(name, 2, width=0.125).eval()
    traced = fx.symbolic_trace(m)
    x = torch.rand(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(m(x), traced(x), strict=True))
    (output,) = [n for n in traced.graph.nodes if n.op == "output"]
    produced = [t for out in output.args[0] for t in _producers(traced.graph, out)]
    names = {id(mod): n for n, mod in m.named_modules()}
    assert produced == [names[id(c)] for c in m.prediction_convs()]


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov8n"])
def test_torch_export(name: str) -> None:
    m = build_model(name, 2, width=0.125).eval()
    ep = torch.export.export(m, (torch.rand(1, 3, 64, 64),))
    assert len(ep.module()(torch.rand(1, 3, 64, 64))) == len(m.strides)
