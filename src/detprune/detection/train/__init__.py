"""Training and fine-tuning of detectors driven through a ``DetectorAdapter``.

``fit`` is the single loop (SGD/AdamW, warm-up + cosine, EMA, clipping, atomic resumable
checkpoints, CSV/TensorBoard logs, optional distillation, DDP under ``torchrun``).
"""

from detprune.detection.train.checkpoint import atomic_save, load_checkpoint, load_weights
from detprune.detection.train.config import TrainConfig
from detprune.detection.train.ddp import DistContext, distributed_loader, init_distributed
from detprune.detection.train.distill import DistillLoss
from detprune.detection.train.ema import ModelEMA
from detprune.detection.train.loop import TrainResult, fit, swapped_model
from detprune.detection.train.optim import build_optimizer, param_groups
from detprune.detection.train.schedule import build_scheduler, warmup_cosine_factor
from detprune.detection.train.seed import seed_everything

__all__ = [
    "DistContext",
    "DistillLoss",
    "ModelEMA",
    "TrainConfig",
    "TrainResult",
    "atomic_save",
    "build_optimizer",
    "build_scheduler",
    "distributed_loader",
    "fit",
    "init_distributed",
    "load_checkpoint",
    "load_weights",
    "param_groups",
    "seed_everything",
    "swapped_model",
    "warmup_cosine_factor",
]
