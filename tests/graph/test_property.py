"""Property: on random architectures with adds, concats, chunks and grouped convs, pruning
any random set of removable channels equals masking them."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from detprune.graph.verify import check_equivalence, randomize_norm_stats

OPS = ["conv", "dwconv", "gconv", "add", "cat", "chunk", "bnrelu"]
instruction = st.tuples(st.sampled_from(OPS), st.integers(0, 99), st.integers(0, 99), st.sampled_from([4, 6, 8, 12]))


class RandomNet(nn.Module):
    """Interprets a list of instructions into a DAG of feature maps (all at one resolution)."""

    def __init__(self, program: list[tuple[str, int, int, int]]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.steps: list[tuple[str, int, int, int | None]] = []
        widths = [8]
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        for op, a, b, w in program:
            i, j = a % len(widths), b % len(widths)
            cw = widths[i]
            if op == "add" and widths[j] == cw and i != j:
                self.steps.append(("add", i, j, None))
                widths.append(cw)
                continue
            if op == "cat" and i != j:
                self.steps.append(("cat", i, j, None))
                widths.append(cw + widths[j])
                continue
            if op == "chunk" and cw % 2 == 0:
                self.steps.append(("chunk", i, b % 2, None))
                widths.append(cw // 2)
                continue
            if op == "bnrelu":
                layer: nn.Module = nn.Sequential(nn.BatchNorm2d(cw), nn.ReLU())
                out = cw
            elif op == "dwconv":
                layer, out = nn.Conv2d(cw, cw * 2, 3, padding=1, groups=cw), cw * 2
            elif op == "gconv" and cw % 2 == 0 and w % 2 == 0:
                layer, out = nn.Conv2d(cw, w, 3, padding=1, groups=2), w
            else:
                layer, out = nn.Sequential(nn.Conv2d(cw, w, 1), nn.BatchNorm2d(w), nn.SiLU()), w
            self.steps.append(("layer", i, len(self.layers), None))
            self.layers.append(layer)
            widths.append(out)
        self.widths = widths
        self.head = nn.Conv2d(widths[-1], 5, 1)

    def forward(self, x):
        feats = [self.stem(x)]
        for op, i, j, _ in self.steps:
            if op == "add":
                feats.append(feats[i] + feats[j])
            elif op == "cat":
                feats.append(torch.cat([feats[i], feats[j]], 1))
            elif op == "chunk":
                feats.append(feats[i].chunk(2, 1)[j])
            else:
                feats.append(self.layers[j](feats[i]))
        return self.head(feats[-1])


@settings(max_examples=int(__import__("os").environ.get("DETPRUNE_PROPERTY_EXAMPLES", 30)), deadline=None)
@given(program=st.lists(instruction, min_size=1, max_size=12), ratio=st.sampled_from([0.3, 0.5, 0.7]),
       seed=st.integers(0, 1000))
def test_random_architectures_prune_exactly(program, ratio, seed) -> None:
    torch.manual_seed(seed)
    model = randomize_norm_stats(RandomNet(program).eval(), seed)
    err, _ = check_equivalence(model, torch.rand(1, 3, 6, 6), ratio, seed=seed)
    assert err < 1e-5
