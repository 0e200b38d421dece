"""Random scores: the floor every real criterion must beat, and the engine's test workhorse."""

from __future__ import annotations

from typing import Any

import numpy as np

from detprune.criteria.base import Criterion, register_criterion
from detprune.graph.groups import Group, Member


@register_criterion("random")
class Random(Criterion):
    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rng = np.random.default_rng(seed)

    def member_scores(self, member: Member) -> np.ndarray | None:
        return None

    def group_scores(self, group: Group) -> np.ndarray:
        return self.rng.random(group.size)
