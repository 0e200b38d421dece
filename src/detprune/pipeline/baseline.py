"""The demo's baseline detector: what it is, where the shipped checkpoint lives, how to load it.

Training a detector from scratch takes far longer than the demo's 5-minute budget on a CPU, and
a baseline trained for a couple of epochs would make every pruning comparison noise. So the demo
starts from a small checkpoint shipped in the package, produced by the committed script
``scripts/make_demo_baseline.py`` from the built-in synthetic data (no download, reproducible).
It is stored in float16 to stay under 2 MB; :func:`load_baseline` returns a float32 model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

ASSETS = Path(__file__).parent / "assets"
BASELINE_PATH = ASSETS / "demo_baseline.safetensors"

# Architecture of the shipped baseline: YOLOv8-style, half the channels of yolov8n (width 0.125).
BASELINE_MODEL: dict[str, Any] = {"name": "yolov8n", "width": 0.125}
BASELINE_IMG_SIZE = 256
DATA_SEED = 0  # synthetic scenes are a function of (seed, split, index): the demo's val images are never trained on


def has_baseline() -> bool:
    return BASELINE_PATH.is_file()


def load_baseline() -> nn.Module:
    """The shipped baseline as a float32 eval-mode model (raises FileNotFoundError when absent)."""
    if not has_baseline():
        raise FileNotFoundError(f"{BASELINE_PATH} is missing; run scripts/make_demo_baseline.py")
    from detprune.io import load

    return load(BASELINE_PATH).float().eval()
