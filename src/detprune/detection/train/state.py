"""What a training run carries from step to step and keeps in ``last.pt``, and how a resume restores it.

Kept apart from the loop so that the loop reads as an outline: the optimiser, schedule, EMA and
scaler are built, stepped, checkpointed and restored here as one object.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from detprune.detection.train import ddp
from detprune.detection.train.checkpoint import check_safe, load_checkpoint
from detprune.detection.train.config import TrainConfig
from detprune.detection.train.ema import ModelEMA
from detprune.detection.train.optim import build_optimizer
from detprune.detection.train.schedule import build_scheduler
from detprune.detection.train.seed import rng_state

log = logging.getLogger(__name__)


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


@dataclass
class TrainState:
    """What training updates and ``last.pt`` holds (with the config and RNGs): a resume restores all of it."""

    model: nn.Module
    params: list[nn.Parameter]  # the trainable ones, for gradient clipping
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    ema: ModelEMA | None
    scaler: torch.amp.GradScaler  # enabled iff AMP is on (CUDA only)
    completed: int = 0  # epochs finished
    history: list[dict[str, float]] = field(default_factory=list)
    best: float | None = None
    best_epoch: int | None = None

    @classmethod
    def build(cls, model: nn.Module, epochs: int, iters: int, cfg: TrainConfig, device: torch.device) -> TrainState:
        optimizer = build_optimizer(model, cfg)
        scheduler = build_scheduler(
            optimizer, epochs * iters, round(cfg.warmup_epochs * iters), cfg.final_lr_ratio, cfg.warmup_start_factor
        )
        ema = ModelEMA(model, cfg.ema_decay, cfg.ema_tau) if cfg.ema else None  # before hooks are attached
        scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp and device.type == "cuda")
        params = [p for p in model.parameters() if p.requires_grad]
        return cls(model, params, optimizer, scheduler, ema, scaler)

    def load(self, ckpt: dict[str, Any]) -> None:
        """Everything but the RNGs: those are restored once nothing else will draw from them."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.ema is not None and ckpt.get("ema"):
            self.ema.load_state_dict(ckpt["ema"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.completed, self.best, self.best_epoch = int(ckpt["epoch"]), ckpt["best_metric"], ckpt["best_epoch"]
        self.history = list(ckpt["history"])

    def step(self, loss: Tensor, clip_grad_norm: float) -> float:
        """Backward, (clip,) step, then advance the schedule and the EMA; the lr this step used."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return lr

    def checkpoint(self, epochs: int, cfg: TrainConfig, generators: list[torch.Generator]) -> dict[str, Any]:
        """State dicts only (never modules), so loading runs no pickled code."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.completed,
            "epochs": epochs,
            "config": cfg.to_dict(),
            "best_metric": self.best,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "rng": rng_state(generators),
            "spec": safe_spec(self.model),
        }

    def end_epoch(self, row: dict[str, float], metrics: dict[str, float], cfg: TrainConfig) -> bool:
        """Record the finished epoch's ``row``; True if its ``metrics`` are a new best (``best.pt`` is due)."""
        self.completed = int(row["epoch"])
        improved = bool(metrics) and _is_better(metrics[cfg.metric], self.best, cfg.metric_mode)
        if improved:
            self.best, self.best_epoch = metrics[cfg.metric], self.completed
        self.history.append(row)
        return improved


def load_last(
    state: TrainState, last_path: Path, cfg: TrainConfig, epochs: int, ctx: ddp.DistContext
) -> dict[str, Any] | None:
    """Restore ``state`` from ``last.pt`` if it exists; its RNG snapshot, which the caller restores last."""
    if not last_path.exists():
        if ctx.is_main:
            log.warning("resume=True but %s does not exist: starting from scratch", last_path)
        return None
    ckpt = load_checkpoint(last_path, map_location=ctx.device)
    state.load(ckpt)
    warn_config_drift(ckpt, cfg, epochs)
    if ctx.is_main:
        log.info("resuming %s from epoch %d", last_path.parent, state.completed)
    return ckpt["rng"]


def safe_spec(model: nn.Module) -> dict[str, Any]:
    """``model.spec`` (rebuild recipe) if it is checkpoint-safe, else empty."""
    spec = dict(getattr(model, "spec", None) or {})
    try:
        check_safe(spec, "model.spec")
    except TypeError as e:
        log.warning("not storing model.spec in the checkpoint: %s", e)
        return {}
    return spec


def warn_config_drift(ckpt: dict[str, Any], cfg: TrainConfig, epochs: int) -> None:
    """A resume with different hyper-parameters is allowed but no longer reproduces the run."""
    old = ckpt.get("config", {})
    changed = sorted(k for k, v in cfg.to_dict().items() if k in old and old[k] != v and k != "progress")
    if ckpt.get("epochs") not in (None, epochs):
        changed.append(f"epochs ({ckpt['epochs']} -> {epochs})")
    if changed:
        log.warning("resuming with changed settings: %s", ", ".join(changed))
