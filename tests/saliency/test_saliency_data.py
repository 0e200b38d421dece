"""Folder loader (bad masks: strict errors naming the file, lenient skips) and the synthetic generator."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detprune.detection.data.report import DataError
from detprune.saliency.data import SaliencyFolder, check_mask, resolve_loader, saliency_loader
from detprune.saliency.synthetic import render_sample, synthetic_saliency


def _pair(root: Path, stem: str, mask: np.ndarray | None, size: tuple[int, int] = (16, 12)) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
    if mask is not None:
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")


def _binary(h: int = 12, w: int = 16) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[3:8, 4:10] = 255
    return m


def _antialiased() -> np.ndarray:
    m = _binary()
    m[2, 4:10] = 100  # a grey row just outside the object's top edge: on the boundary
    m[3:8, 10] = 180
    return m


def _soft() -> np.ndarray:
    return np.tile(np.linspace(0, 255, 16).astype(np.uint8), (12, 1))  # a gradient: grey everywhere


@pytest.mark.parametrize(
    "stem, mask, size, words",
    [
        ("nomask", None, (16, 12), ["nomask.png", "no mask"]),
        ("small", _binary(6, 8), (16, 12), ["small.png", "8x6", "16x12"]),
        ("soft", _soft(), (16, 12), ["soft.png", "not a binary mask"]),
    ],
)
def test_strict_errors_name_the_file(tmp_path, stem, mask, size, words):
    _pair(tmp_path, "good", _binary())
    _pair(tmp_path, stem, mask, size)
    with pytest.raises(DataError) as err:
        SaliencyFolder(tmp_path, strict=True)
    for w in words:
        assert w in str(err.value)


def test_lenient_skips_and_counts(tmp_path):
    _pair(tmp_path, "a_good", _binary())
    _pair(tmp_path, "b_aa", _antialiased())
    _pair(tmp_path, "c_nomask", None)
    _pair(tmp_path, "d_small", _binary(6, 8))
    _pair(tmp_path, "e_soft", _soft())
    _pair(tmp_path, "f_broken", None)
    (tmp_path / "masks" / "f_broken.png").write_bytes(b"not a png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SaliencyFolder(tmp_path, strict=False)
    assert [p.stem for p, _ in ds.items] == ["a_good", "b_aa"]
    assert ds.report.num_errors == 4
    assert ds.report.counts == {"missing_file": 1, "size_mismatch": 1, "label_format": 1, "bad_image": 1}
    assert ds.antialiased == 1
    text = " ".join(str(w.message) for w in caught)
    assert "e_soft.png" in text and "c_nomask" in text
    image, target = ds[1]
    mask = target["mask"]
    assert image.shape == (3, 12, 16) and mask.shape == (1, 12, 16)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask.sum() == 5 * 6 + 5  # the 180 column is >= 128 -> object; the 100 row is background


def test_check_mask_rule():
    assert check_mask(_binary()) == (None, False)
    noisy = _binary()
    noisy[0, 0], noisy[5, 5] = 10, 245  # compression noise within the tolerance
    assert check_mask(noisy) == (None, False)
    assert check_mask(_antialiased()) == (None, True)
    stray = _binary()
    stray[10, 1] = 128  # grey speck far from any object edge
    problem, _ = check_mask(stray)
    assert problem is not None and "1 pixels" in problem
    ramp = np.zeros((8, 12), np.uint8)
    ramp[:, 4:] = [85, 170, 255, 255, 255, 255, 255, 255]  # a 2-pixel resize ramp: still an edge
    assert check_mask(ramp) == (None, True)
    assert check_mask(_soft())[0] is not None


def test_loader_batches_and_resize(tmp_path):
    for i in range(5):
        _pair(tmp_path / "train", f"{i:02d}", _binary())
    loader = resolve_loader(tmp_path, "train", size=8, batch_size=2)
    images, targets = next(iter(loader))
    assert images.shape == (2, 3, 8, 8) and targets[0]["mask"].shape == (1, 8, 8)
    assert len(saliency_loader(tmp_path / "train", batch_size=4)) == 2
    with pytest.raises(DataError):
        SaliencyFolder(tmp_path)  # no images/ + masks/ directly under it


def test_generator_is_deterministic():
    a_img, a_mask = render_sample(3, 7, 32)
    b_img, b_mask = render_sample(3, 7, 32)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    c_img, _ = render_sample(4, 7, 32)
    d_img, _ = render_sample(3, 7, 32, split="val")
    assert not np.array_equal(a_img, c_img) and not np.array_equal(a_img, d_img)
    assert a_img.shape == (32, 32, 3) and a_img.dtype == np.uint8
    assert set(np.unique(a_mask)) <= {0, 255}


def test_generator_object_sizes():
    fractions = np.array([(render_sample(0, i, 64)[1] > 0).mean() for i in range(60)])
    assert fractions.min() > 0.001 and fractions.max() < 0.12  # asked: 0.2 % .. 10 % of the image
    assert (fractions < 0.01).mean() > 0.2  # many images with objects well under 1 %
    assert fractions.max() > 0.03


def test_synthetic_cache(tmp_path):
    root = synthetic_saliency(8, "val", size=24, cache_dir=tmp_path)
    assert len(list((root / "images").glob("*.png"))) == 8 and len(list((root / "masks").glob("*.png"))) == 8
    stamp = (root / "images" / "000000.png").stat().st_mtime_ns
    assert synthetic_saliency(8, "val", size=24, cache_dir=tmp_path) == root
    assert (root / "images" / "000000.png").stat().st_mtime_ns == stamp  # reused, not regenerated
    assert not list(root.parent.glob(".tmp-*"))
    ds = SaliencyFolder(root)
    assert len(ds) == 8 and ds.report.num_errors == 0
    with pytest.raises(ValueError):
        synthetic_saliency(8, "holdout", cache_dir=tmp_path)


def test_resolve_synthetic_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("DETPRUNE_CACHE", str(tmp_path))
    loader = resolve_loader("synthetic:8", "val", size=24, batch_size=4)
    images, targets = next(iter(loader))
    assert images.shape == (4, 3, 24, 24) and len(targets) == 4
    assert (tmp_path / "saliency").is_dir()
