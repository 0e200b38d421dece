"""Score a saliency model on a dataset with the six metrics (:mod:`detprune.saliency.metrics`).

Predictions are compared with the masks at the loader's resolution (``size``); for the
field's usual protocol (maps resized back to each original image) use a loader without
``size`` and batch size 1 on datasets of mixed sizes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from detprune.saliency.adapter import SaliencyAdapter, as_adapter
from detprune.saliency.data import resolve_loader
from detprune.saliency.loss import masks_of
from detprune.saliency.metrics import SaliencyEvaluator, SaliencyMetrics

__all__ = ["evaluate_saliency"]


def evaluate_saliency(model: nn.Module | SaliencyAdapter | str, data: Any, *, split: str = "test",
                      size: int | None = None, batch_size: int = 8, max_batches: int | None = None,
                      device: str | torch.device | None = None, normalize: bool = True,
                      progress: bool = False) -> SaliencyMetrics:
    """Six metrics of ``model`` (module, adapter or saved ``.safetensors``) on ``data``.

    ``data``: a DataLoader, ``"synthetic[:N]"`` or a dataset directory (see
    :func:`detprune.saliency.data.resolve_loader`; ``split`` picks ``<dir>/<split>``).
    ``normalize``: min-max normalise each map first (the field's protocol, see the metrics module).
    """
    adapter = as_adapter(model)
    loader = resolve_loader(data, split, size=size, batch_size=batch_size, shuffle=False, augment=False)
    if device is None:
        params = list(adapter.model.parameters())
        device = params[0].device if params else torch.device("cpu")
    evaluator = SaliencyEvaluator(normalize)
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    for i, batch in enumerate(tqdm(loader, total=total, desc="saliency eval", disable=not progress, leave=False)):
        if max_batches is not None and i >= max_batches:
            break
        images, targets = batch[0], batch[1]
        probs = adapter.predict(images.to(device))
        evaluator.update_batch(probs, masks_of(targets))
    return evaluator.result()
