"""Dataset layer: YOLO / COCO / VOC readers, validation, transforms, synthetic scenes.

Every source ends in a :class:`DetectionDataset` yielding ``(image, target)`` pairs with
the shared :class:`~detprune.detection.types.Target` contract; see :func:`build_dataset`.
"""

from .build import build_dataset, read_split
from .coco import read_coco, to_coco_json
from .dataset import DetectionDataset, DetTarget, collate_fn
from .records import ImageRecord, SplitIndex
from .report import DataError, DataReport, DataWarning
from .synthetic import SYNTHETIC_NAMES, render_scene, synthetic_data_yaml
from .transforms import LetterboxParams, letterbox, unletterbox_boxes
from .voc import read_voc
from .yolo import read_yolo

__all__ = [
    "SYNTHETIC_NAMES",
    "DataError",
    "DataReport",
    "DataWarning",
    "DetTarget",
    "DetectionDataset",
    "ImageRecord",
    "LetterboxParams",
    "SplitIndex",
    "build_dataset",
    "collate_fn",
    "letterbox",
    "read_coco",
    "read_split",
    "read_voc",
    "read_yolo",
    "render_scene",
    "synthetic_data_yaml",
    "to_coco_json",
    "unletterbox_boxes",
]
