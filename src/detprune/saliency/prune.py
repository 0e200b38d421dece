"""Prune a saliency network to a parameter budget ("60 % fewer parameters").

``detprune.prune`` takes a *local* ratio: every coupling group loses that fraction of its
channels. Which fraction of the *parameters* that removes depends on the architecture (a
channel of a 512-wide stage costs far more than one of a 16-wide stage) and, where a group
spans a concatenation (the decoder's ``cat([upsampled, skip])``), on which channels go, since
its channels come from producers of different sizes. So :func:`prune_to_param_fraction` scores
the channels once with the real criterion (the costly part for wrg / hrank: calibration
passes), freezes those scores, and bisects the ratio by pruning deep copies with them: every
trial removes exactly the channels the final call removes.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from detprune.api import PruneReport, count_params, groups, prune
from detprune.criteria import CRITERIA, Criterion, get_criterion
from detprune.graph.groups import Group, Member
from detprune.saliency.adapter import SaliencyAdapter, as_adapter
from detprune.saliency.data import resolve_loader
from detprune.saliency.loss import saliency_loss_fn

__all__ = ["FrozenScores", "prune_saliency", "prune_to_param_fraction", "removed_fraction"]

log = logging.getLogger(__name__)

_GRADIENT_CRITERIA = ("wrg", "taylor")


def _key(group: Group) -> tuple[int, tuple[str, ...], int]:
    return group.index, tuple(group.modules()), group.size


class FrozenScores(Criterion):
    """Group scores computed once by another criterion, reusable on deep copies of the model.

    Groups are matched by index, member modules and size (tracing a copy yields the same groups).
    """

    def __init__(self, name: str, scores: dict[tuple, np.ndarray]) -> None:
        super().__init__()
        self.name, self.scores = name, scores

    @classmethod
    def compute(cls, model: nn.Module, example_inputs: Any, criterion: str | Criterion, data: Any = None,
                ignore: Any = (), **criterion_kwargs: Any) -> "FrozenScores":
        crit = get_criterion(criterion, **criterion_kwargs)
        found = groups(model, example_inputs, ignore)
        crit.prepare(model, found, data=data, example_inputs=example_inputs)
        return cls(crit.name, {_key(g): crit.group_scores(g) for g in found})

    def member_scores(self, member: Member) -> np.ndarray | None:
        return None

    def group_scores(self, group: Group) -> np.ndarray:
        try:
            return self.scores[_key(group)]
        except KeyError:
            raise ValueError(f"group {group.index} ({', '.join(group.modules()[:2])}) was not scored: "
                             "frozen scores only apply to the model they were computed on") from None


def removed_fraction(model: nn.Module, example_inputs: Any, ratio: float, criterion: str | Criterion = "l1",
                     **prune_kwargs: Any) -> float:
    """Fraction of parameters a local ``ratio`` removes, measured by pruning a deep copy."""
    if ratio == 0:
        return 0.0
    trial = copy.deepcopy(model)
    report = prune(trial, example_inputs, criterion=criterion, ratio=ratio, measure=False, **prune_kwargs)
    return 1.0 - report.params_after / report.params_before


def prune_to_param_fraction(model: nn.Module, example_inputs: Any, fraction: float, criterion: str = "l1", *,
                            data: Any = None, tol: float = 0.005, max_ratio: float = 0.95, max_iter: int = 20,
                            ignore: Any = (), round_to: int | None = None, **criterion_kwargs: Any) -> PruneReport:
    """Prune ``model`` in place so that about ``fraction`` of its parameters are removed.

    Scores channels once with ``criterion`` (``data`` and ``criterion_kwargs`` as for
    ``detprune.prune``), then bisects the local ratio on deep copies until the removed fraction is
    within ``tol`` of ``fraction`` (or ``max_iter`` steps; the closest ratio seen wins) and prunes
    ``model`` at that ratio. ``report.ratio`` is the local ratio used. Raises ``ValueError`` if even
    ``max_ratio`` removes less than ``fraction``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    frozen = FrozenScores.compute(model, example_inputs, criterion, data, ignore, **criterion_kwargs)
    shape = dict(ignore=ignore, round_to=round_to)
    lo, hi = 0.0, max_ratio
    top = removed_fraction(model, example_inputs, hi, frozen, **shape)
    if top < fraction - tol:
        raise ValueError(f"a local ratio of {max_ratio} removes only {top:.1%} of the parameters; "
                         f"{fraction:.1%} is out of reach (pinned layers, or raise max_ratio)")
    best = (abs(top - fraction), hi)
    for _ in range(max_iter):
        mid = (lo + hi) / 2
        got = removed_fraction(model, example_inputs, mid, frozen, **shape)
        best = min(best, (abs(got - fraction), mid))
        if abs(got - fraction) <= tol:
            break
        lo, hi = (mid, hi) if got < fraction else (lo, mid)
    ratio = best[1]
    report = prune(model, example_inputs, criterion=frozen, ratio=ratio, **shape)
    log.info("%s: local ratio %.4f removes %.1f%% of parameters (asked %.1f%%)", frozen.name, ratio,
             100 * (1 - report.params_after / report.params_before), 100 * fraction)
    return report


def prune_saliency(model: nn.Module | SaliencyAdapter | str, data: Any = "synthetic", criterion: str = "wrg",
                   fraction: float = 0.6, *, size: int | None = None, batch_size: int = 8, max_batches: int = 8,
                   save_to: Any = None, **criterion_kwargs: Any) -> tuple[nn.Module, PruneReport]:
    """Prune a saliency model (module, adapter or saved file) to ``1 - fraction`` of its parameters.

    Calibration batches come from ``data``'s train split (a DataLoader, ``"synthetic[:N]"`` or a
    dataset directory), unshuffled and unaugmented, at most ``max_batches``. Gradient criteria
    (``wrg``, ``taylor``) get the BCE + IoU loss unless ``loss_fn`` is given. ``save_to`` writes
    the pruned model with ``detprune.save``. Returns the pruned module and the report.
    """
    module = as_adapter(model).model
    loader = resolve_loader(data, "train", size=size, batch_size=batch_size, shuffle=False, augment=False)
    images = next(iter(loader))[0]
    example = torch.rand(1, *images.shape[1:])
    if criterion in _GRADIENT_CRITERIA:
        criterion_kwargs.setdefault("loss_fn", saliency_loss_fn)
    needs_data = bool(getattr(CRITERIA.get(criterion), "needs_data", False))
    if needs_data:
        criterion_kwargs.setdefault("max_batches", max_batches)
    before = count_params(module)
    report = prune_to_param_fraction(module, example, fraction, criterion, data=loader if needs_data else None,
                                     **criterion_kwargs)
    log.info("pruned %s: %d -> %d parameters", criterion, before, report.params_after)
    if save_to is not None:
        from detprune.io import save

        save(module, save_to)
    return module, report
