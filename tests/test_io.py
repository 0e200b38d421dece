"""Saved pruned models load in a fresh process as the same architecture, without unpickling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import detprune
from detprune.detection.models import build_model
from detprune.io import CheckpointError


@pytest.fixture
def pruned(tmp_path):
    torch.manual_seed(0)
    model = build_model("yolov8n", num_classes=3).eval()
    x = torch.rand(1, 3, 128, 128)
    detprune.prune(model, x, criterion="l1", ratio=0.5, measure=False)
    path = detprune.save(model, tmp_path / "pruned.safetensors")
    return model, x, path


def test_fresh_process_loads_same_outputs(pruned, tmp_path) -> None:
    model, x, path = pruned
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = model(x)
    torch.save([t for t in expected], tmp_path / "expected.pt")
    code = f"""
import torch, detprune
m = detprune.load({str(path)!r}).eval()
x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)
exp = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True)
with torch.no_grad():
    out = m(x)
assert all(torch.equal(a, b) for a, b in zip(out, exp)), "outputs differ"
print(sum(p.numel() for p in m.parameters()))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip().splitlines()[-1]) == sum(p.numel() for p in model.parameters())


def test_loaded_model_prunes_again(pruned) -> None:
    _, x, path = pruned
    model = detprune.load(path).eval()
    before = sum(p.numel() for p in model.parameters())
    detprune.prune(model, x, ratio=0.3, measure=False)
    assert sum(p.numel() for p in model.parameters()) < before


def test_file_holds_only_tensors_and_json(pruned) -> None:
    _, _, path = pruned
    record = detprune.io.read_record(path)
    assert record["spec"]["source"] == "builtin" and record["spec"]["args"]["name"] == "yolov8n"
    json.dumps(record)  # plain data


def test_mismatched_model_is_refused(pruned) -> None:
    _, _, path = pruned
    with pytest.raises(CheckpointError, match="checkpoint of a .*YOLOv8, cannot load into a .*YOLOv3Tiny"):
        detprune.load(path, model=build_model("yolov3-tiny", num_classes=3))
    with pytest.raises(CheckpointError, match="different model"):
        detprune.load(path, model=build_model("yolov8n", num_classes=3, reg_max=8))



@pytest.mark.parametrize("other, words", [
    (dict(name="yolov8s", num_classes=3), "name 'yolov8n' vs 'yolov8s'"),
    (dict(name="yolov8n", num_classes=5), "num_classes 3 vs 5")])
def test_a_larger_model_is_not_taken_for_a_pruned_one(pruned, other, words) -> None:
    """Every tensor of a yolov8n (3 classes) fits inside a yolov8s / 5-class one, like a pruned model's."""
    _, _, path = pruned
    with pytest.raises(CheckpointError, match=f"different model .*{words}"):
        detprune.load(path, model=build_model(**other))
    assert detprune.load(path, model=build_model("yolov8n", num_classes=3)) is not None


def test_class_names_do_not_make_a_different_model(pruned, tmp_path) -> None:
    """A checkpoint of a model that knows its class names loads into the same architecture built without them."""
    model, _, _ = pruned
    model.spec = {**model.spec, "names": ["a", "b", "c"]}
    path = detprune.save(model, tmp_path / "named.safetensors")
    assert detprune.load(path, model=build_model("yolov8n", num_classes=3)) is not None


@pytest.mark.parametrize("record, words", [
    ("{not json", "unreadable detprune record"), ("[1, 2]", "unsupported format"),
    ('{"format": "detprune/1"}', "record without model_class, spec, shapes")])
def test_broken_record_is_a_checkpoint_error(pruned, tmp_path, record, words) -> None:
    _, _, path = pruned
    from safetensors.torch import load_file

    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(path)), bad, metadata={"detprune": record})
    with pytest.raises(CheckpointError, match=words):
        detprune.load(bad)


def test_not_a_detprune_file(tmp_path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="without a detprune record"):
        detprune.load(plain)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a safetensors file"):
        detprune.load(junk)


def test_save_is_atomic(pruned, tmp_path, monkeypatch) -> None:
    model, _, path = pruned
    good = path.read_bytes()

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(detprune.io, "save_file", crash)
    with pytest.raises(OSError):
        detprune.save(model, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_model_without_spec_needs_a_base(tmp_path) -> None:
    from blocks_for_io import tiny

    model = tiny()
    detprune.prune(model, torch.rand(1, 3, 8, 8), ratio=0.5, measure=False)
    path = detprune.save(model, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="saved without a spec"):
        detprune.load(path)
    loaded = detprune.load(path, model=tiny())
    assert loaded[0].out_channels == model[0].out_channels < 8


def test_state_dict_versions_survive_save_and_load(tmp_path) -> None:
    # safetensors keeps no state_dict._metadata: MNASNet's loader refuses a state dict without its
    # version ("version should be set to 1 or 2 instead of None"), so its checkpoints could not be loaded
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mnasnet0_5(weights=None, num_classes=4).eval()
    x = torch.rand(1, 3, 64, 64)
    detprune.prune(model, x, criterion="l1", ratio=0.5, measure=False)
    path = detprune.save(model, tmp_path / "mnasnet.safetensors")
    loaded = detprune.load(path, model=torchvision.models.mnasnet0_5(weights=None, num_classes=4)).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.state_dict()._metadata[""]["version"] == 2
