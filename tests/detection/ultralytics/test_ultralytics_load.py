"""Loading a local Ultralytics ``.pt`` never runs code a pickle carries (the default Ultralytics load does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest.importorskip("ultralytics")

from ultralytics.nn.tasks import DetectionModel  # noqa: E402

from detprune.detection.adapters.ultralytics import load_ultralytics  # noqa: E402
from detprune.zoo import load_model  # noqa: E402


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("load", [load_ultralytics, lambda p: load_model(f"ultralytics:{p}")])
def test_pickle_payload_is_refused_not_run(tmp_path: Path, load) -> None:
    marker = tmp_path / "ran"
    torch.save({"model": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(TypeError, match="outside the supported"):
        load(tmp_path / "evil.pt")
    assert not marker.exists(), "the checkpoint's pickle payload was executed"


def test_plain_checkpoint_still_loads(tmp_path: Path) -> None:
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    torch.save({"model": model.half(), "train_args": {"imgsz": 64}}, tmp_path / "m.pt")
    loaded = load_ultralytics(tmp_path / "m.pt")
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
    assert all(p.requires_grad for p in loaded.parameters())
