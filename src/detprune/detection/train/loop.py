"""The one training loop, for training from scratch and for fine-tuning pruned detectors.

Everything model-specific goes through the ``DetectorAdapter``: the loop only needs
``adapter.loss`` for training and hands the adapter (with the EMA weights swapped in) to
``val_fn`` for validation. Runs under ``torchrun`` become DDP runs without code changes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from detprune.detection.train import ddp
from detprune.detection.train.checkpoint import atomic_save
from detprune.detection.train.config import TrainConfig
from detprune.detection.train.distill import DistillLoss
from detprune.detection.train.logger import EpochLogger, progress
from detprune.detection.train.seed import seed_everything, set_rng_state
from detprune.detection.train.state import TrainState, load_last
from detprune.detection.types import DetectorAdapter, Target, total_loss
from detprune.inputs import to_device

__all__ = ["TrainResult", "fit", "swapped_model"]

log = logging.getLogger(__name__)

ValFn = Callable[[DetectorAdapter], dict[str, float]]


@dataclass
class TrainResult:
    """Outcome of ``fit``; ``history`` has one dict per epoch (the rows of ``results.csv``)."""

    epochs: int
    iters_per_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None

    @property
    def final_metrics(self) -> dict[str, float]:
        return dict(self.history[-1]) if self.history else {}


class _Objective(nn.Module):
    """``adapter.loss`` (+ distillation) as a module, so DDP can wrap the whole step.

    DDP must see the forward that produced the loss to synchronise gradients; wrapping the
    objective (which owns ``adapter.model``) keeps adapters free to call ``self.model`` however
    they like, including attribute access that a bare DDP wrapper would hide.
    """

    def __init__(self, adapter: DetectorAdapter, distill: DistillLoss | None) -> None:
        super().__init__()
        self.model = adapter.model
        self._adapter = [adapter]  # list: keep out of the module tree
        self._distill = [distill] if distill is not None else []

    def forward(self, images: Tensor | list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        for d in self._distill:
            d.reset()
        losses = dict(self._adapter[0].loss(images, targets))
        for d in self._distill:
            losses["distill"] = d.from_capture()
        return losses


@contextmanager
def swapped_model(adapter: DetectorAdapter, model: nn.Module) -> Iterator[DetectorAdapter]:
    """Temporarily point ``adapter.model`` at ``model`` (e.g. the EMA weights for validation)."""
    original = adapter.model
    adapter.model = model
    try:
        yield adapter
    finally:
        adapter.model = original


def _to_device(batch: Sequence[Any], device: torch.device) -> tuple[Any, list[Target]]:
    """``(images, targets, *ignored)`` -> images and targets on ``device``."""
    images, targets = batch[0], batch[1]
    nb = device.type == "cuda"
    images = to_device(images if isinstance(images, Tensor) else list(images), device, nb)
    targets = to_device(list(targets), device, nb)
    return images, targets


def _loader_generators(loader: Iterable) -> list[torch.Generator]:
    """Distinct torch generators that drive the loader's shuffling (saved for exact resume)."""
    found: list[torch.Generator] = []
    candidates = [
        getattr(loader, "generator", None),
        getattr(getattr(loader, "sampler", None), "generator", None),
        getattr(getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None),
    ]
    for g in candidates:
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def fit(
    adapter: DetectorAdapter,
    train_loader: Iterable,
    epochs: int,
    val_fn: ValFn | None = None,
    *,
    cfg: TrainConfig | None = None,
    run_dir: str | os.PathLike = "runs/train",
    resume: bool = False,
    distill: DistillLoss | None = None,
) -> TrainResult:
    """Train ``adapter.model`` for ``epochs`` epochs; return the run's history and checkpoints.

    * Batches are ``(images, targets, *ignored)`` with images [B, 3, H, W] (or a list) in [0, 1]
      and targets a list of ``Target``.
    * ``val_fn(adapter) -> {metric: value}`` is called on the main process every
      ``cfg.val_interval`` epochs and at the last epoch, with ``adapter.model`` temporarily set
      to the EMA weights; ``cfg.metric`` of its result selects ``best.pt``.
    * ``run_dir`` receives ``last.pt`` every epoch, ``best.pt``, ``results.csv`` (and ``tb/``).
      Checkpoints hold state dicts only (never the module): rebuild the architecture and load
      with ``checkpoint.load_weights``; ``detprune.save``/``detprune.load`` persist pruned
      architectures.
    * ``resume=True`` continues from ``run_dir/last.pt`` (model, optimiser, schedule, EMA,
      RNGs, data order), bit-exactly in a single process; starts fresh if there is none.
    * ``distill`` adds ``distill.from_capture()`` as a ``"distill"`` loss term.
    * Under ``torchrun`` (``WORLD_SIZE > 1``) the step runs in DDP, the loader gets a
      ``DistributedSampler``, only rank 0 validates and writes files. Per-rank RNG streams
      are restored from rank 0's snapshot on resume, so DDP resumes are not bit-exact.
    * All RNGs are seeded with ``cfg.seed + rank`` at the start (seed before building the
      model too, with ``seed_everything``, for a reproducible initialisation).
    * On return ``adapter.model`` holds the EMA weights if ``cfg.ema and cfg.ema_to_model``.
    """
    cfg = cfg or TrainConfig()
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    run_dir = Path(run_dir)
    ctx = ddp.init_distributed(cfg.device)
    try:
        return _fit(adapter, train_loader, epochs, val_fn, cfg, run_dir, resume, distill, ctx)
    finally:
        ddp.cleanup(ctx)


def _fit(
    adapter: DetectorAdapter,
    loader: Iterable,
    epochs: int,
    val_fn: ValFn | None,
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    distill: DistillLoss | None,
    ctx: ddp.DistContext,
) -> TrainResult:
    main = ctx.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    logger = EpochLogger(run_dir, tensorboard=cfg.tensorboard, enabled=main)  # fails early if TB is missing
    seed_everything(cfg.seed + ctx.rank, cfg.deterministic)
    model = adapter.model.to(ctx.device)
    loader = _shard(loader, cfg, ctx)
    iters = len(loader)  # type: ignore[arg-type]
    if iters == 0:
        raise ValueError("train_loader is empty")

    state = TrainState.build(model, epochs, iters, cfg, ctx.device)
    generators = _loader_generators(loader)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    rng = load_last(state, last_path, cfg, epochs, ctx) if resume else None
    objective = _build_objective(adapter, distill, cfg, ctx)
    if rng is not None:  # last, so nothing above consumes the restored random streams
        set_rng_state(rng, generators)

    if distill is not None:
        distill.attach()
    try:
        for epoch in range(state.completed, epochs):
            t0 = time.perf_counter()
            means, lr = _train_epoch(objective, state, loader, iters, epoch, epochs, cfg, ctx)
            metrics = _validate(adapter, val_fn, state, epoch, epochs, cfg) if main else {}
            row = {"epoch": epoch + 1, "lr": lr, **means, **metrics, "seconds": round(time.perf_counter() - t0, 3)}
            improved = state.end_epoch(row, metrics, cfg)
            if main:
                checkpoint = state.checkpoint(epochs, cfg, generators)
                atomic_save(checkpoint, last_path)
                if improved:
                    atomic_save(checkpoint, best_path)
                logger.log(state.history)
            ddp.barrier(ctx)
    finally:
        logger.close()
        if distill is not None:
            distill.detach()

    if state.ema is not None and cfg.ema_to_model:
        model.load_state_dict(state.ema.module.state_dict())
    return TrainResult(
        epochs=epochs,
        iters_per_epoch=iters,
        history=state.history,
        best_metric=state.best,
        best_epoch=state.best_epoch,
        last_checkpoint=last_path if last_path.exists() else None,
        best_checkpoint=best_path if best_path.exists() else None,
    )


def _shard(loader: Iterable, cfg: TrainConfig, ctx: ddp.DistContext) -> Iterable:
    """Under DDP each rank must see its own part of the data; only a DataLoader can be split here."""
    if not ctx.distributed:
        return loader
    if isinstance(loader, DataLoader):
        return ddp.distributed_loader(loader, seed=cfg.seed)
    if ctx.is_main:
        log.warning("train_loader is not a DataLoader: it is not sharded, make each rank yield its own shard")
    return loader


def _build_objective(
    adapter: DetectorAdapter, distill: DistillLoss | None, cfg: TrainConfig, ctx: ddp.DistContext
) -> nn.Module:
    """The module whose forward is the loss: DDP-wrapped under ``torchrun`` so gradients sync."""
    if distill is not None:
        distill.teacher.to(ctx.device)
    objective = _Objective(adapter, distill)
    if not ctx.distributed:
        return objective
    return DistributedDataParallel(
        objective,
        device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
        find_unused_parameters=cfg.find_unused_parameters,
    )


def _train_epoch(
    objective: nn.Module,
    state: TrainState,
    loader: Iterable,
    iters: int,
    epoch: int,
    epochs: int,
    cfg: TrainConfig,
    ctx: ddp.DistContext,
) -> tuple[dict[str, float], float]:
    """One pass over ``loader`` (``epoch`` counts from 0); the mean losses over all ranks and the last lr."""
    state.model.train()
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    show = ctx.is_main and cfg.progress
    sums: dict[str, float] = {}
    lr = state.optimizer.param_groups[0]["lr"]
    bar = progress(loader, iters, f"epoch {epoch + 1}/{epochs}", enabled=show)
    for i, batch in enumerate(bar):
        images, targets = _to_device(batch, ctx.device)
        with torch.autocast("cuda") if state.scaler.is_enabled() else nullcontext():
            losses = objective(images, targets)
            loss = total_loss(losses)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss at epoch {epoch + 1} iteration {i}: "
                + ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            )
        lr = state.step(loss, cfg.clip_grad_norm)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        if show:
            bar.set_postfix({k: f"{v / (i + 1):.4g}" for k, v in sums.items()}, refresh=False)
    bar.close()
    means = ddp.all_reduce_mean({k: v / iters for k, v in sums.items()}, ctx)
    ddp.broadcast_buffers(state.model, ctx)
    if state.ema is not None:
        ddp.broadcast_buffers(state.ema.module, ctx)
    return means, lr


def _validate(
    adapter: DetectorAdapter, val_fn: ValFn | None, state: TrainState, epoch: int, epochs: int, cfg: TrainConfig
) -> dict[str, float]:
    """``val_fn`` on the EMA weights (if any) every ``cfg.val_interval`` epochs and at the last; {} when not due."""
    if val_fn is None or not ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == epochs):
        return {}
    with swapped_model(adapter, state.ema.module if state.ema is not None else state.model):
        metrics = {k: float(v) for k, v in val_fn(adapter).items()}
    if cfg.metric not in metrics:
        raise KeyError(f"val_fn returned {sorted(metrics)}; cfg.metric={cfg.metric!r} is not among them")
    return metrics
