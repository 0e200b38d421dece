"""Train or fine-tune a saliency network through the shared ``fit`` loop and run folders.

``fit`` (``detection.train``) needs an adapter with ``.model`` and ``.loss(images, targets)``,
batches ``(images, [{"mask": ...}, ...])`` and, for validation, ``val_fn(adapter) -> dict``
holding ``cfg.metric``. The defaults here differ from the detectors' YOLO recipe because a
VGG encoder-decoder trained from scratch on a few thousand images converges far better with
AdamW than with SGD at lr 0.01, and validation selects ``best.pt`` by S-measure.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from detprune.detection.train import TrainConfig, TrainResult, fit, load_weights
from detprune.saliency.adapter import SaliencyAdapter, as_adapter
from detprune.saliency.data import resolve_loader
from detprune.saliency.evaluate import evaluate_saliency
from detprune.saliency.metrics import SaliencyMetrics
from detprune.saliency.model import SALIENCY_MODELS, build_saliency_model

__all__ = ["saliency_train_config", "train_saliency"]

log = logging.getLogger(__name__)

_METRICS = {f.name for f in dataclasses.fields(SaliencyMetrics)}


def saliency_train_config(**overrides: Any) -> TrainConfig:
    """TrainConfig defaults for saliency: AdamW 1e-3, short warm-up, best checkpoint by S-measure.

    For fine-tuning a pruned model pass e.g. ``lr=3e-4, warmup_epochs=0.2``.
    """
    base: dict[str, Any] = dict(optimizer="adamw", lr=1e-3, momentum=0.9, nesterov=False, weight_decay=1e-4,
                                warmup_epochs=0.5, final_lr_ratio=0.05, ema_tau=200.0, metric="sm", metric_mode="max")
    return TrainConfig(**{**base, **overrides})


def train_saliency(model: nn.Module | SaliencyAdapter | str = "vgg16", data: Any = "synthetic", epochs: int = 10,
                   *, width: float = 1.0, val_data: Any = None, size: int | None = None, batch_size: int = 8,
                   cfg: TrainConfig | None = None, run_dir: str | os.PathLike = "runs/saliency", resume: bool = False,
                   save_to: str | os.PathLike | None = None, restore_best: bool = False
                   ) -> tuple[nn.Module, TrainResult]:
    """Train ``model`` on ``data`` for ``epochs``; returns the trained module and the run's result.

    * ``model``: a module, an adapter, a saved ``.safetensors`` (fine-tuning a pruned model) or a
      name in ``SALIENCY_MODELS`` built at ``width``.
    * ``data`` / ``val_data``: a DataLoader, ``"synthetic[:N]"`` or a dataset directory (train split
      ``<dir>/train`` if present; ``val_data`` defaults to ``data``'s ``val`` split when it has one;
      without validation ``best.pt`` is not written).
    * ``cfg``: a :class:`TrainConfig` (default :func:`saliency_train_config`); a ``cfg.metric`` that is
      not a saliency metric (e.g. the detectors' ``"map"``) is replaced by ``"sm"``.
    * ``run_dir`` gets ``last.pt``/``best.pt``/``results.csv`` as for detectors (``resume`` continues
      it); ``save_to`` writes the final model with ``detprune.save`` (pruned widths kept).
    * ``restore_best``: end with the weights of ``best.pt`` (best validation ``cfg.metric``) instead of
      the last epoch's.
    """
    if isinstance(model, str) and model in SALIENCY_MODELS:
        model = build_saliency_model(model, width)
    adapter = as_adapter(model)
    cfg = cfg or saliency_train_config()
    if cfg.metric not in _METRICS:
        log.info("cfg.metric=%r is not a saliency metric: selecting the best checkpoint by S-measure", cfg.metric)
        cfg = dataclasses.replace(cfg, metric="sm", metric_mode="max")
    train_loader = resolve_loader(data, "train", size=size, batch_size=batch_size, seed=cfg.seed)
    if val_data is None and isinstance(data, (str, os.PathLike)):
        text = str(data)
        if text.startswith("synthetic") or (Path(text) / "val" / "images").is_dir():
            val_data = data
    val_fn = None
    if val_data is not None:
        val_loader = resolve_loader(val_data, "val", size=size, batch_size=batch_size)
        val_fn = lambda a: evaluate_saliency(a, val_loader).as_dict()  # noqa: E731
    result = fit(adapter, train_loader, epochs, val_fn, cfg=cfg, run_dir=run_dir, resume=resume)
    if restore_best and result.best_checkpoint is not None:
        load_weights(adapter.model, result.best_checkpoint, ema=cfg.ema)
    if save_to is not None:
        from detprune.io import save

        save(adapter.model, save_to)
    return adapter.model, result
