"""Batch-1 latency of a model under torch, ONNX Runtime or OpenVINO, on the CPU or a GPU.

Pruning is judged on real speed, so every runtime is measured the same way: thread count
pinned (and reported), ``warmup`` untimed calls, then ``runs`` timed calls summarised by
median and p10/p90 (robust to the scheduler noise of a shared machine). The ONNX runtimes
measure the model exported by ``detprune.deploy.export`` unless given a file. A runtime may name
a device (``torch:cuda``, ``onnxruntime:cuda``, ``openvino:gpu``; see :mod:`detprune.deploy.backend`).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from detprune.deploy.backend import RUNTIMES, Backend, check_device, parse_runtime, synchronizer
from detprune.deploy.export import export_onnx, onnx_feeds
from detprune.inputs import ExampleInputs, call_model, to_device

__all__ = ["RUNTIMES", "LatencyResult", "file_runner", "measure_latency", "torch_runner"]


@dataclass(frozen=True)
class LatencyResult:
    """Timing summary of ``runs`` batch-1 calls, in milliseconds."""

    runtime: str  # with its device when not the CPU, e.g. "onnxruntime:cuda:0"
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    runs: int
    warmup: int
    threads: int  # as reported by the runtime after pinning

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latency(
    model_or_path: nn.Module | str | os.PathLike[str],
    example_input: ExampleInputs,
    runtime: str | Backend = "torch",
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
) -> LatencyResult:
    """Latency of one forward on ``example_input`` (batch 1) under ``runtime``.

    ``threads`` defaults to ``torch.get_num_threads()`` for every runtime so runtimes are
    compared at equal parallelism; torch's own setting is restored afterwards. A path must be
    an ``.onnx`` file (or an OpenVINO ``.xml`` for ``runtime="openvino"``); a module is exported
    to ONNX in a temporary directory for the ONNX runtimes. OpenVINO is pinned to f32 inference
    precision (its CPU plugin would silently switch to bf16 on AMX/AVX512-BF16 CPUs), so all
    runtimes time the same fp32 computation. A GPU device that is not present is an error.
    """
    backend = parse_runtime(runtime)
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    _check_batch_one(example_input)
    threads = torch.get_num_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    check_device(backend)

    if backend.runtime == "torch":
        if not isinstance(model_or_path, nn.Module):
            raise ValueError(f"runtime='torch' needs an nn.Module, got model_or_path={model_or_path!r}")
        return _measure_torch(model_or_path, example_input, backend, warmup, runs, threads)
    if isinstance(model_or_path, nn.Module):
        with tempfile.TemporaryDirectory(prefix="detprune-latency-") as tmp:
            path = export_onnx(model_or_path, example_input, Path(tmp) / "model.onnx")
            return _measure_file(path, example_input, backend, warmup, runs, threads)
    path = Path(model_or_path)
    allowed = {".onnx", ".xml"} if backend.runtime == "openvino" else {".onnx"}
    if path.suffix not in allowed or not path.is_file():
        raise ValueError(
            f"model_or_path must be an existing {'/'.join(sorted(allowed))} file for {backend}, got {path}"
        )
    return _measure_file(path, example_input, backend, warmup, runs, threads)


def torch_runner(model: nn.Module, example_input: ExampleInputs, backend: Backend) -> Callable[[], Any]:
    """A zero-argument eval-mode forward of ``model`` on ``backend``'s device, waiting for the GPU.

    On a GPU the model and inputs are copied there, so the caller's (CPU) model is left as it was.
    """
    if backend.on_gpu:
        model, example_input = copy.deepcopy(model).to(backend.device), to_device(example_input, backend.device)
    model.eval()
    sync = synchronizer(backend)

    def run() -> Any:
        with torch.inference_mode():
            out = call_model(model, example_input, strict=True)
        sync()
        return out

    return run


def _measure_torch(model: nn.Module, example_input: ExampleInputs, backend: Backend, warmup: int, runs: int,
                   threads: int) -> LatencyResult:
    prev_threads, was_training = torch.get_num_threads(), model.training
    torch.set_num_threads(threads)
    try:
        run = torch_runner(model, example_input, backend)
        return _time(run, str(backend), warmup, runs, torch.get_num_threads())
    finally:
        torch.set_num_threads(prev_threads)
        model.train(was_training)


def _measure_file(path: Path, example_input: ExampleInputs, backend: Backend, warmup: int, runs: int,
                  threads: int) -> LatencyResult:
    run, used = file_runner(path, example_input, backend, threads)
    return _time(run, str(backend), warmup, runs, used)


def file_runner(path: Path, example_input: ExampleInputs, runtime: str | Backend,
                threads: int) -> tuple[Callable[[], Any], int]:
    """A zero-argument callable running ``path`` (ONNX, or OpenVINO IR) once on ``runtime``, and the
    thread count the runtime reports after pinning. Sequential, one inference request: batch-1 latency."""
    backend = parse_runtime(runtime)
    check_device(backend)
    if backend.runtime == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers: list[Any] = ["CPUExecutionProvider"]
        if backend.on_gpu:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": backend.device_index}))
        sess = ort.InferenceSession(str(path), opts, providers=providers)
        if backend.on_gpu and sess.get_providers()[0] != "CUDAExecutionProvider":
            raise ValueError(f"runtime {backend}: ONNX Runtime could not load its CUDA provider for {path} "
                             f"(session providers: {', '.join(sess.get_providers())}); not timing the CPU instead")
        feeds = onnx_feeds([i.name for i in sess.get_inputs()], example_input, path)
        return (lambda: sess.run(None, feeds)), sess.get_session_options().intra_op_num_threads
    if backend.runtime != "openvino":
        raise ValueError(f"file_runner runs onnxruntime or openvino, got runtime={str(runtime)!r}")
    import openvino as ov

    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if not backend.on_gpu:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(str(path), backend.device.upper(), config)
    feeds = onnx_feeds([p.any_name for p in compiled.inputs], example_input, path)
    request = compiled.create_infer_request()
    used = threads if backend.on_gpu else int(compiled.get_property("INFERENCE_NUM_THREADS"))
    return (lambda: request.infer(feeds)), used


def _time(fn: Callable[[], Any], runtime: str, warmup: int, runs: int, threads: int) -> LatencyResult:
    for _ in range(warmup):
        fn()
    ms = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        ms[i] = (time.perf_counter_ns() - t0) / 1e6
    p10, median, p90 = np.percentile(ms, [10, 50, 90])
    return LatencyResult(runtime, float(median), float(p10), float(p90), float(ms.mean()), runs, warmup, threads)


def _check_batch_one(example_input: ExampleInputs) -> None:
    """Latency is reported per image: a batched tensor or a multi-image list would misreport it."""
    if isinstance(example_input, Tensor) and example_input.ndim == 4 and example_input.shape[0] != 1:
        raise ValueError(f"example_input must have batch size 1, got shape {tuple(example_input.shape)}")
    if isinstance(example_input, list) and len(example_input) != 1:
        raise ValueError(f"example_input list must hold one image, got {len(example_input)}")
