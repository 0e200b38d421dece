"""Adapters that drive third-party detectors through detprune's ``DetectorAdapter`` contract."""

from detprune.detection.adapters.torchvision import (
    TORCHVISION_DETECTORS,
    TorchvisionAdapter,
    build_torchvision,
    label_offset_of,
)

__all__ = ["TORCHVISION_DETECTORS", "TorchvisionAdapter", "build_torchvision", "label_offset_of"]
