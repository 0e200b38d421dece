"""Built-in detectors (YOLOv3-tiny, YOLOv8-style), their losses, decoding and adapter."""

from .adapter import BuiltinAdapter
from .registry import available_models, build_model
from .yolov3_tiny import YOLOv3Tiny
from .yolov8 import YOLOv8

__all__ = ["BuiltinAdapter", "YOLOv3Tiny", "YOLOv8", "available_models", "build_model"]
