"""Equivalence contract on the building blocks of every DCODP structure, then a second round."""

from __future__ import annotations

import pytest
import torch

import detprune
from detprune.graph.verify import check_equivalence, randomize_norm_stats

from blocks import BLOCKS


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_pruning_equals_masking(name: str, ratio: float) -> None:
    ctor, shape = BLOCKS[name]
    torch.manual_seed(0)
    model = randomize_norm_stats(ctor().eval())
    x = torch.rand(*shape)
    params = sum(p.numel() for p in model.parameters())
    err, removed = check_equivalence(model, x, ratio)
    assert removed > 0
    assert err < 1e-5
    assert sum(p.numel() for p in model.parameters()) < params
    # the pruned model is traceable again and survives a second round
    err2, removed2 = check_equivalence(model, x, 0.3, seed=1)
    assert err2 < 1e-5


def test_groups_follow_structure() -> None:
    ctor, shape = BLOCKS["chunk_slice"]
    found = detprune.groups(ctor().eval(), torch.rand(*shape))
    by_first = {g.members[0].label: g for g in found}
    cv1 = by_first["cv1.0.weight[0]"]
    labels = [m.label for m in cv1.members]
    # chunk(2) ties position p of both halves: 16 classes for cv1's 32 outputs, plus m's 16 outputs
    assert cv1.size == 32 and "cv2.0.weight[1]" in labels and "m.0.weight[0]" in labels
    cv2 = by_first["cv2.0.weight[0]"]
    # y[:, 4:12] is a constant slice: channels 0..11 are pinned, 12..15 stay prunable
    assert cv2.prunable == 4
    assert any("constant slice" in r for r in cv2.reasons())


def test_residual_ties_both_branches() -> None:
    ctor, shape = BLOCKS["bottleneck"]
    found = detprune.groups(ctor().eval(), torch.rand(*shape))
    stem = next(g for g in found if g.members[0].label == "stem.0.weight[0]")
    labels = {m.label for m in stem.members}
    assert {"cv2.0.weight[0]", "cv1.0.weight[1]", "cv3.0.weight[1]", "stem.1.weight[0]"} <= labels
    assert stem.size == 16 and stem.prunable == 16


def test_grouped_and_groupnorm_structure() -> None:
    ctor, shape = BLOCKS["grouped_gn_prelu_frozenbn_convT"]
    found = detprune.groups(ctor().eval(), torch.rand(*shape))
    stem = next(g for g in found if g.members[0].label == "stem.0.weight[0]")
    # conv with groups=4 and 4 inputs per group: position p is tied across groups -> 4 classes
    assert stem.size == 4 and {"stem.1.weight[0]", "stem.2.weight[0]", "grouped.0.weight[1]"} <= {m.label for m in stem.members}
