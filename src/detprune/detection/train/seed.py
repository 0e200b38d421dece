"""Seeding and RNG snapshots, so runs are reproducible and resumes are exact."""

from __future__ import annotations

import os
import random
import warnings
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally request deterministic kernels.

    ``deterministic`` trades speed for bit-exact reruns on GPU (cuDNN autotuning off,
    deterministic algorithms where available, warning otherwise).
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state(generators: list[torch.Generator] | None = None) -> dict[str, Any]:
    """Snapshot of every RNG a training epoch may consume, as tensors and primitives only.

    ``generators`` are extra torch generators (e.g. a DataLoader's shuffling generator).
    """
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_py, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [g.get_state() for g in generators or []],
    }


def set_rng_state(state: dict[str, Any], generators: list[torch.Generator] | None = None) -> None:
    """Inverse of ``rng_state``."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("generators", [])
    gens = generators or []
    if len(saved) != len(gens):  # the loader changed: keep going, but the data order will differ
        warnings.warn(
            f"checkpoint holds {len(saved)} data-loader generator states but the loader has {len(gens)}; "
            "not restoring them (the data order will differ from the interrupted run)",
            stacklevel=2,
        )
        return
    for g, s in zip(gens, saved):
        g.set_state(s)


def _py(x: Any) -> Any:
    """NumPy scalar -> Python scalar (weights_only loading rejects NumPy objects)."""
    return x.item() if hasattr(x, "item") else x
