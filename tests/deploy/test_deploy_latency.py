"""measure_latency: structure and sanity of the result for every runtime (never a timing threshold)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from detprune.deploy import RUNTIMES, LatencyResult, export_onnx, export_openvino, measure_latency


class SmallNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = torch.relu(self.a(x))
        return self.b(f), f.mean((2, 3))


X = torch.rand(1, 3, 32, 32)


def _sane(r: LatencyResult, runtime: str, runs: int, threads: int) -> None:
    assert r.runtime == runtime and r.runs == runs and r.threads == threads
    assert all(math.isfinite(v) and v > 0 for v in (r.median_ms, r.p10_ms, r.p90_ms, r.mean_ms))
    assert r.p10_ms <= r.median_ms <= r.p90_ms
    assert set(r.as_dict()) >= {"median_ms", "p10_ms", "p90_ms", "threads", "runtime"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_each_runtime_from_module(runtime: str) -> None:
    before = torch.get_num_threads()
    net = SmallNet().train()
    r = measure_latency(net, X, runtime=runtime, warmup=2, runs=7, threads=1)
    _sane(r, runtime, runs=7, threads=1)
    assert r.warmup == 2
    assert torch.get_num_threads() == before and net.training  # torch state restored


def test_torch_threads_default_and_restore() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        r = measure_latency(SmallNet(), X, warmup=0, runs=3)
        _sane(r, "torch", runs=3, threads=1)  # default: torch's current count
        if before >= 2:
            r = measure_latency(SmallNet(), X, warmup=0, runs=3, threads=2)
            _sane(r, "torch", runs=3, threads=2)
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_from_files(tmp_path: Path) -> None:
    onnx_path = export_onnx(SmallNet(), X, tmp_path / "net.onnx")
    _sane(measure_latency(onnx_path, X, "onnxruntime", warmup=1, runs=3, threads=1), "onnxruntime", 3, 1)
    _sane(measure_latency(str(onnx_path), X, "openvino", warmup=1, runs=3, threads=1), "openvino", 3, 1)
    xml = export_openvino(onnx_path, tmp_path / "ir")
    _sane(measure_latency(xml, X, "openvino", warmup=1, runs=3, threads=1), "openvino", 3, 1)


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown runtime 'tensorrt'; choose from torch, onnxruntime, openvino"):
        measure_latency(SmallNet(), X, runtime="tensorrt")
    with pytest.raises(ValueError, match="batch size 1"):
        measure_latency(SmallNet(), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"needs an nn\.Module"):
        measure_latency(tmp_path / "net.onnx", X, runtime="torch")
    with pytest.raises(ValueError, match=r"existing \.onnx file"):
        measure_latency(tmp_path / "missing.onnx", X, runtime="onnxruntime")
    with pytest.raises(ValueError, match="runs >= 1"):
        measure_latency(SmallNet(), X, runs=0)
