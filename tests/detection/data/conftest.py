"""Fixtures of the dataset-layer tests: the shared real datasets and tiny on-disk datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from datatest_helpers import write_image

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available: {SHARED_DATA.resolve()} is absent")
    return SHARED_DATA.resolve()


YoloFactory = Callable[..., Path]


@pytest.fixture
def make_yolo(tmp_path: Path) -> YoloFactory:
    """``make_yolo({"a": "0 0.5 0.5 0.2 0.2\\n", "b": None}, split="train")`` -> data.yaml path.

    Each key is an image (64x48 JPEG); its value is the label file text, or ``None`` for
    no label file. Extra splits can be added by calling the factory again.
    """

    def factory(labels: dict[str, str | None], split: str = "train", names: list[str] | None = None) -> Path:
        root = tmp_path / "yolo"
        for i, (stem, text) in enumerate(labels.items()):
            write_image(root / "images" / split / f"{stem}.jpg", seed=i)
            if text is not None:
                label = root / "labels" / split / f"{stem}.txt"
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(text)
        data_yaml = root / "data.yaml"
        cfg = yaml.safe_load(data_yaml.read_text()) if data_yaml.is_file() else {"path": "."}
        cfg[split] = f"images/{split}"
        cfg["names"] = names or ["a", "b", "c"]
        data_yaml.write_text(yaml.safe_dump(cfg))
        return data_yaml

    return factory


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir shared by the synthetic tests, so each split is generated once."""
    return tmp_path_factory.mktemp("synthetic-cache")
