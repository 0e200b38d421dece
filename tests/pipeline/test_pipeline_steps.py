"""check_classes: labels are matched by index, so the model's class names must line up with the data's."""

from __future__ import annotations

import warnings

import pytest

from detprune.detection.models import build_model
from detprune.pipeline.steps import check_classes

BCCD = ["Platelets", "RBC", "WBC"]


def test_reordered_classes_are_refused() -> None:
    model = build_model("yolov3-tiny", 3, names=BCCD)
    with pytest.raises(ValueError, match=r"--data: the dataset lists its classes as \['WBC', 'RBC', 'Platelets'\]"):
        check_classes(model, ["WBC", "RBC", "Platelets"])


def test_other_names_matching_or_unnamed_pass() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_classes(build_model("yolov3-tiny", 3, names=BCCD), BCCD)
        check_classes(build_model("yolov3-tiny", 3, names=BCCD), ["a", "b", "c"])  # e.g. Ultralytics' 'item'
        check_classes(build_model("yolov3-tiny", 3), ["WBC", "RBC", "Platelets"])  # default names '0', '1', '2'


def test_count_mismatch_lists_the_data_classes() -> None:
    with pytest.raises(ValueError, match=r"4 classes but the model predicts 3 \(the dataset's: \['Monocyte', 'Platelets'"):
        check_classes(build_model("yolov3-tiny", 3, names=BCCD), ["Monocyte", *BCCD])
