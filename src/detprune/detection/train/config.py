"""Hyper-parameters of ``fit``, kept as plain fields so they can live inside a checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class TrainConfig:
    """Everything ``fit`` needs besides the model and the data.

    Defaults follow YOLO-style recipes (SGD 0.01, nesterov, wd 5e-4, cosine to 1% of the
    base LR, EMA with a 2000-update ramp); for fine-tuning a pruned model lower ``lr`` and
    ``warmup_epochs``. Only primitives are allowed so that ``asdict`` survives
    ``torch.load(weights_only=True)``.
    """

    optimizer: str = "sgd"  # "sgd" | "adamw"
    lr: float = 0.01
    momentum: float = 0.937  # SGD momentum, AdamW beta1
    nesterov: bool = True
    beta2: float = 0.999
    weight_decay: float = 5e-4  # not applied to biases nor normalisation parameters
    warmup_epochs: float = 1.0  # linear warm-up length, in epochs (fractions allowed)
    warmup_start_factor: float = 0.01  # LR factor at the very first iteration
    final_lr_ratio: float = 0.01  # cosine ends at lr * final_lr_ratio
    clip_grad_norm: float | None = 10.0
    ema: bool = True
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0  # EMA decay ramps as decay * (1 - exp(-updates / tau))
    ema_to_model: bool = True  # on return, adapter.model holds the EMA weights
    amp: bool = False  # mixed precision, CUDA only
    seed: int = 0
    deterministic: bool = False
    device: str | None = None  # None: cuda if available else cpu (cuda:LOCAL_RANK under DDP)
    val_interval: int = 1
    metric: str = "map"  # key of val_fn's dict that selects the ``best`` checkpoint
    metric_mode: str = "max"  # "max" | "min"
    progress: bool = True
    tensorboard: bool = False
    find_unused_parameters: bool = False  # DDP option for models with conditional branches

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.metric_mode not in ("max", "min"):
            raise ValueError(f"metric_mode must be 'max' or 'min', got {self.metric_mode!r}")
        if self.lr <= 0 or self.val_interval < 1 or self.warmup_epochs < 0:
            raise ValueError("lr must be > 0, val_interval >= 1 and warmup_epochs >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Primitive dict stored in checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys (from other versions) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
