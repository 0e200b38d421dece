"""runtime[:device]: parsing, GPU presence checks that refuse to time the CPU instead, GPU plumbing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from detprune.deploy import measure_latency
from detprune.inputs import to_device
from detprune.deploy.backend import Backend, check_device, gpu_name, parse_runtime, synchronizer
from detprune.deploy.export import export_onnx
from detprune.deploy.latency import file_runner, torch_runner
from detprune.deploy.side_by_side import clock_of, make_runner
from detprune.schedule.lut import LatencyLUT, fingerprint, fingerprint_id
from detprune.schedule.target import Target


@pytest.mark.parametrize("text, runtime, device, canonical", [
    ("torch", "torch", "cpu", "torch"),
    ("torch:cpu", "torch", "cpu", "torch"),
    ("torch:cuda", "torch", "cuda:0", "torch:cuda:0"),
    ("torch:CUDA:1", "torch", "cuda:1", "torch:cuda:1"),
    ("torch:gpu", "torch", "cuda:0", "torch:cuda:0"),
    ("torch:mps", "torch", "mps", "torch:mps"),
    ("onnxruntime:cuda", "onnxruntime", "cuda:0", "onnxruntime:cuda:0"),
    ("onnxruntime:gpu:2", "onnxruntime", "cuda:2", "onnxruntime:cuda:2"),
    ("openvino:gpu", "openvino", "gpu", "openvino:gpu"),
    ("openvino:GPU.1", "openvino", "gpu.1", "openvino:gpu.1"),
    ("openvino:gpu:1", "openvino", "gpu.1", "openvino:gpu.1"),
    ("openvino:gpu.0", "openvino", "gpu", "openvino:gpu"),  # OpenVINO names a lone GPU "GPU"
    ("torch:cuda:01", "torch", "cuda:1", "torch:cuda:1"),
])
def test_parse_runtime(text: str, runtime: str, device: str, canonical: str) -> None:
    backend = parse_runtime(text)
    assert (backend.runtime, backend.device, str(backend)) == (runtime, device, canonical)
    assert backend.on_gpu == (device != "cpu")
    assert parse_runtime(str(backend)) == backend  # the canonical spelling reads back


@pytest.mark.parametrize("text, words", [
    ("tensorrt", "unknown runtime 'tensorrt'; choose from torch, onnxruntime, openvino"),
    ("openvino:cuda", "unknown device 'cuda' for openvino; choose from cpu, gpu, gpu.N"),
    ("onnxruntime:mps", "unknown device 'mps' for onnxruntime"),
    ("torch:cuda:x", "unknown device 'cuda:x' for torch"),
])
def test_parse_runtime_rejects(text: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_runtime(text)
    assert words in str(info.value)


def test_device_index() -> None:
    assert parse_runtime("torch:cuda:3").device_index == 3
    assert parse_runtime("openvino:gpu.1").device_index == 1
    assert parse_runtime("openvino:gpu").device_index == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_absent_cuda_is_an_error_not_a_cpu_timing() -> None:
    model = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"runtime torch:cuda:0: no such device on this machine \(torch sees 0"):
        measure_latency(model, torch.randn(1, 3, 16, 16), "torch:cuda", warmup=0, runs=1)
    with pytest.raises(ValueError, match="no such device"):
        make_runner(model, torch.randn(1, 3, 16, 16), "torch:gpu", threads=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_that_cannot_be_asked_is_named_unknown() -> None:
    """A table's fingerprint must still be writable when the runtime cannot name its GPU."""
    assert gpu_name(parse_runtime("torch:cuda")) == "unknown"
    assert gpu_name(parse_runtime("onnxruntime:cuda:1")) == "unknown"


def test_absent_onnxruntime_cuda_provider_names_what_there_is() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(ValueError, match=r"onnxruntime:cuda:0: no such device.*CPUExecutionProvider"):
        check_device(parse_runtime("onnxruntime:cuda"))


def test_absent_openvino_gpu_names_the_devices() -> None:
    import openvino as ov

    if any(d.startswith("GPU") for d in ov.Core().available_devices):
        pytest.skip("OpenVINO sees a GPU")
    with pytest.raises(ValueError, match=r"openvino:gpu: no such device.*OpenVINO devices: CPU"):
        check_device(parse_runtime("openvino:gpu"))


def test_onnxruntime_falling_back_to_cpu_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime drops a provider it cannot load with a warning and runs on the CPU; a CUDA timing
    must not silently become a CPU one. Here the CUDA provider is claimed available but is not."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    x = torch.randn(1, 3, 16, 16)
    path = export_onnx(nn.Conv2d(3, 4, 3).eval(), x, tmp_path / "m.onnx")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    check_device.cache_clear()  # the device check is cached per backend: make it see the claimed provider
    try:
        with pytest.warns(UserWarning), pytest.raises(ValueError, match="could not load its CUDA provider"):
            file_runner(path, x, "onnxruntime:cuda", threads=1)
    finally:
        check_device.cache_clear()  # and do not let the claim outlive this test


def test_to_device_moves_nested_inputs_and_keeps_their_shape() -> None:
    inputs = {"images": [torch.ones(3, 8, 8), torch.zeros(3, 4, 4)], "scale": (torch.ones(1), 2.0)}
    moved = to_device(inputs, "meta")
    assert isinstance(moved["images"], list) and isinstance(moved["scale"], tuple)
    assert all(t.device.type == "meta" for t in moved["images"]) and moved["scale"][1] == 2.0
    assert moved["images"][1].shape == (3, 4, 4) and inputs["images"][0].device.type == "cpu"


def test_gpu_torch_timing_waits_for_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels on a GPU run asynchronously: the runner must synchronise, or it times the launch."""
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(str(device)))
    synchronizer(parse_runtime("torch:cuda:1"))()
    assert calls == ["cuda:1"]
    synchronizer(parse_runtime("torch"))()
    synchronizer(parse_runtime("onnxruntime:cuda"))()  # sess.run returns host arrays: already synchronous
    assert calls == ["cuda:1"]


def test_torch_runner_on_the_cpu_uses_the_model_itself() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).train()
    x = torch.randn(1, 3, 16, 16)
    out = torch_runner(model, x, Backend("torch"))()
    assert not model.training and torch.allclose(out, model(x))


def test_gpu_timing_uses_the_wall_clock() -> None:
    assert clock_of("torch:cuda") == "wall" and clock_of("openvino:gpu") == "wall"
    assert clock_of("onnxruntime") == "auto"


def test_latency_targets_name_a_device() -> None:
    assert Target.parse("latency=0.5@onnxruntime:cuda").runtime == "onnxruntime:cuda:0"
    assert Target.parse("latency=12ms@openvino:gpu").describe() == "latency 12 ms on openvino:gpu"
    assert Target.parse("latency=0.7", runtime="torch:gpu").runtime == "torch:cuda:0"
    with pytest.raises(ValueError, match=r"target 'latency=0.7@openvino:cuda': runtime 'openvino:cuda': unknown dev"):
        Target.parse("latency=0.7@openvino:cuda")


def test_cpu_table_fingerprints_are_unchanged_and_gpu_tables_get_their_own_file() -> None:
    """Adding devices must not orphan the CPU tables already cached (their file name hashes the fingerprint)."""
    fp = fingerprint("onnxruntime", 1)
    assert "device" not in fp and "gpu" not in fp and fp["runtime"] == "onnxruntime"
    gpu_fp = dict(fp, runtime="onnxruntime:cuda:0", device="cuda:0", gpu="Some GPU")
    table = LatencyLUT("onnxruntime:cuda", 1, fp=gpu_fp)
    assert table.runtime == "onnxruntime:cuda:0"
    assert table.default_path().name == f"onnxruntime-cuda-0-t1-{fingerprint_id(gpu_fp)}.json"
    assert fingerprint_id(gpu_fp) != fingerprint_id(fp)


def test_a_table_for_one_device_is_not_read_for_another(tmp_path: Path) -> None:
    path = LatencyLUT("onnxruntime", 1).save(tmp_path / "cpu.json")
    with pytest.raises(ValueError, match="table for runtime 'onnxruntime', asked for 'onnxruntime:cuda'"):
        LatencyLUT.load(path, "onnxruntime:cuda", 1)
    assert LatencyLUT.load(path, "onnxruntime:cpu", 1).runtime == "onnxruntime"
