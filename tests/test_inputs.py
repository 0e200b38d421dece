from collections import namedtuple

import pytest
import torch
from torch import nn

from detprune.inputs import call_model, flatten_tensors, split_inputs, to_device


class Echo(nn.Module):
    def forward(self, *args, **kwargs):
        return args, kwargs


def test_call_model_convention_and_strictness() -> None:
    x = torch.ones(1)
    assert call_model(Echo(), x) == ((x,), {})
    assert call_model(Echo(), [x]) == (([x],), {})
    assert call_model(Echo(), (x, 2)) == ((x, 2), {})
    assert call_model(Echo(), {"a": x}) == ((), {"a": x})
    assert call_model(Echo(), "other") == (("other",), {})  # the tracer's lenient default
    with pytest.raises(TypeError, match="example_inputs must be"):
        call_model(Echo(), "other", strict=True)
    with pytest.raises(TypeError, match="example_inputs must be"):
        split_inputs(None)


def test_flatten_tensors_in_order() -> None:
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    assert [t.item() for t in flatten_tensors({"x": [a, (b, 3)], "y": {"z": c}})] == [0.0, 1.0, 2.0]
    assert flatten_tensors(None) == []


def test_to_device_keeps_container_types() -> None:
    Pair = namedtuple("Pair", "images targets")
    moved = to_device(Pair(torch.ones(2), [torch.zeros(1)]), "meta", non_blocking=True)
    assert isinstance(moved, Pair) and moved.images.device.type == "meta" and isinstance(moved.targets, list)
    assert type(to_device((torch.ones(1),), "meta")) is tuple
