"""Synthetic orchard scenes: determinism, variety, on-disk cache, atomic generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detprune.detection.data import SYNTHETIC_NAMES, build_dataset, read_yolo, render_scene, synthetic_data_yaml
from detprune.detection.data import synthetic
from detprune.detection.data.synthetic_draw import leaf


def test_same_seed_same_scene_different_seed_different() -> None:
    a_img, a_boxes, a_labels = render_scene(seed=0, index=3)
    b_img, b_boxes, b_labels = render_scene(seed=0, index=3)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_boxes, b_boxes)
    np.testing.assert_array_equal(a_labels, b_labels)
    c_img, _, _ = render_scene(seed=1, index=3)
    d_img, _, _ = render_scene(seed=0, index=4)
    e_img, _, _ = render_scene(seed=0, index=3, split="val")
    for other in (c_img, d_img, e_img):
        assert np.abs(a_img.astype(int) - other.astype(int)).mean() > 10


def test_scenes_have_variety() -> None:
    scenes = [render_scene(0, i, img_size=320) for i in range(60)]
    labels = np.concatenate([s[2] for s in scenes])
    boxes = np.concatenate([s[1] for s in scenes])
    assert len(SYNTHETIC_NAMES) >= 5
    assert set(labels.tolist()) == set(range(len(SYNTHETIC_NAMES)))  # every class shows up
    sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    assert sides.min() < 16 and sides.max() > 100  # small and large objects
    assert ((boxes >= 0) & (boxes <= 320)).all()
    assert all(s[0].shape == (320, 320, 3) and s[0].dtype == np.uint8 for s in scenes)
    assert np.std([s[0].mean() for s in scenes]) > 5  # backgrounds differ
    # occlusion: some pairs of labelled boxes overlap
    overlaps = 0
    for _, b, _ in scenes:
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                w = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0])
                h = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1])
                overlaps += w > 0 and h > 0
    assert overlaps >= 10


def test_classes_differ_in_mean_colour() -> None:
    """Each class has its own colour signature inside its boxes (not only shape)."""
    means: dict[int, list[np.ndarray]] = {}
    for i in range(80):
        img, boxes, labels = render_scene(0, i)
        for (x1, y1, x2, y2), c in zip(boxes.astype(int), labels, strict=True):
            if (x2 - x1) * (y2 - y1) >= 400:
                cx, cy, hw, hh = (x1 + x2) // 2, (y1 + y2) // 2, (x2 - x1) // 6, (y2 - y1) // 6
                means.setdefault(int(c), []).append(img[cy - hh : cy + hh + 1, cx - hw : cx + hw + 1].reshape(-1, 3).mean(0))
    centres = np.stack([np.median(np.stack(means[c]), 0) for c in sorted(means)])
    assert len(centres) == len(SYNTHETIC_NAMES)
    dists = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(len(centres)) * 1e9
    assert dists.min() > 15


def test_leaf_distractor_is_thin_and_green() -> None:
    alpha, rgb = leaf(np.random.default_rng(0), 20.0)
    assert alpha.shape == rgb.shape[1:] and rgb.shape[0] == 3
    area = (alpha > 0.5).sum()
    assert 0.15 * np.pi * 20**2 < area < 0.45 * np.pi * 20**2  # much thinner than a disc of its length
    assert rgb[1][alpha > 0.5].mean() > rgb[0][alpha > 0.5].mean()  # green


def test_generate_cache_and_read_back(synthetic_cache: Path) -> None:
    ds = build_dataset("synthetic:200", "train", img_size=320, cache_dir=synthetic_cache)
    assert len(ds) == 200 and ds.names == SYNTHETIC_NAMES and ds.report.num_errors == 0
    data_yaml = synthetic_data_yaml(200, ["train"], cache_dir=synthetic_cache)
    root = data_yaml.parent
    assert root.parent == synthetic_cache and len(root.name) == 16  # <cache>/<params-hash>/
    assert not list(root.glob(".tmp-*"))
    # the files hold exactly the rendered scenes (boxes up to label rounding)
    for i in (0, 57, 199):
        _, boxes, labels = render_scene(0, i, 320, "train")
        rec = ds.records[i]
        assert rec.path.name == f"{i:06d}.jpg"
        np.testing.assert_array_equal(rec.labels, labels)
        np.testing.assert_allclose(rec.boxes, boxes, atol=1e-3)
    image, target = ds[0]
    assert image.shape == (3, 320, 320) and target["pad"] == (0, 0)
    # a second request reuses the cache instead of regenerating
    stamp = (root / "train" / "images" / "000000.jpg").stat().st_mtime_ns
    again = build_dataset("synthetic:200", "train", img_size=320, cache_dir=synthetic_cache)
    assert (root / "train" / "images" / "000000.jpg").stat().st_mtime_ns == stamp and len(again) == 200


def test_val_split_generated_on_demand(synthetic_cache: Path) -> None:
    ds = build_dataset("synthetic:32", "val", img_size=160, cache_dir=synthetic_cache)
    assert len(ds) == 8  # val and test are a quarter of N, at least 8
    root = ds.records[0].path.parents[2]
    assert (root / "val").is_dir() and not (root / "train").exists()
    assert read_yolo(root / "data.yaml", "val").names == SYNTHETIC_NAMES


def test_env_var_sets_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETPRUNE_CACHE", str(tmp_path / "envcache"))
    data_yaml = synthetic_data_yaml(8, ["test"])
    assert data_yaml.parent.parent == tmp_path / "envcache" / "synthetic"
    assert len(list((data_yaml.parent / "test" / "labels").glob("*.txt"))) == 8


def test_interrupted_generation_leaves_no_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synthetic._write_images

    def dying(args):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # like a Ctrl-C half-way through
        real(args)

    monkeypatch.setattr(synthetic, "_write_images", dying)
    with pytest.raises(KeyboardInterrupt):
        synthetic_data_yaml(40, ["train"], cache_dir=tmp_path, workers=1)
    root = tmp_path / synthetic.params_hash(40, 0, 320)
    assert not (root / "train").exists() and not list(root.glob(".tmp-*"))
    monkeypatch.setattr(synthetic, "_write_images", real)
    data_yaml = synthetic_data_yaml(40, ["train"], cache_dir=tmp_path, workers=1)
    assert len(read_yolo(data_yaml, "train").records) == 40


def test_pool_and_single_process_write_identical_files(tmp_path: Path) -> None:
    synthetic.generate_split(tmp_path / "one", "train", 64, workers=1)
    synthetic.generate_split(tmp_path / "two", "train", 64, workers=2)
    for name in ("000000", "000031", "000063"):
        assert (tmp_path / "one/labels" / f"{name}.txt").read_text() == (tmp_path / "two/labels" / f"{name}.txt").read_text()
        assert (tmp_path / "one/images" / f"{name}.jpg").read_bytes() == (tmp_path / "two/images" / f"{name}.jpg").read_bytes()
