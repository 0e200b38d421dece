"""Fixture: a run folder holding a metrics.json and config.yaml, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_helpers import METRICS

from detprune.pipeline.runs import write_json


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_json(tmp_path / "metrics.json", METRICS)
    (tmp_path / "config.yaml").write_text("model: yolov8n\nprune:\n  criteria: [l1]\n")
    return tmp_path
