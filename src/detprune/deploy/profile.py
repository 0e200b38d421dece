"""Where a runtime spends a model's time: per-node profiles from ONNX Runtime and OpenVINO.

MACs count only multiply-accumulates, which scale with (input x output) channels; activations,
additions, concatenations and resizes scale with the channels they move, and a runtime adds
layout conversions of its own. Pruning to half the MACs therefore never halves latency, and how
far it falls short depends on how much of the time those other nodes take. This module asks the
runtime itself (ONNX Runtime's ``enable_profiling``, OpenVINO's ``PERF_COUNT``) for every node's
time in the whole model and sums it by kind, so a benchmark can say where the missing speed-up goes.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from detprune.inputs import ExampleInputs

KINDS = ("conv", "depthwise conv", "activation / elementwise", "data movement", "other")
_ELEMENTWISE = {"relu", "sigmoid", "mul", "add", "sub", "div", "hardswish", "hardsigmoid", "clip", "swish", "silu",
                "eltwise", "exp", "softmax", "leakyrelu", "prelu", "batchnormalization", "multiply", "subtract",
                "divide", "hswish", "hsigmoid", "power", "sqrt", "math", "quickgelu", "subgraph"}
_MOVEMENT = {"concat", "split", "slice", "stridedslice", "resize", "interpolate", "reshape", "transpose", "gather",
             "reorder", "flatten", "squeeze", "unsqueeze", "expand", "tile", "pad", "shapeof", "convert",
             "variadicsplit", "identity", "copy", "reorderinput", "reorderoutput", "upsample"}
_POOL = {"maxpool", "averagepool", "globalaveragepool", "pooling", "reducemean", "avgpool", "reduce"}  # ~elementwise


@dataclass(frozen=True)
class NodeTime:
    """One node's median time over the profiled runs."""

    name: str
    op: str  # the runtime's operation type (ONNX op, or OpenVINO layer type)
    kind: str  # one of KINDS
    ms: float


def kind_of(op: str, depthwise: bool = False) -> str:
    """Coarse class of an operation type, named the same for both runtimes."""
    key = op.lower().replace("_", "")
    if key in ("conv", "convolution", "groupconvolution", "fusedconv", "gemm", "matmul", "fullyconnected"):
        return "depthwise conv" if depthwise or key == "groupconvolution" else "conv"
    if key in _ELEMENTWISE or key in _POOL:
        return "activation / elementwise"
    return "data movement" if key in _MOVEMENT else "other"


def profile_onnx(path: str | Path, inputs: ExampleInputs, runtime: str, threads: int = 1, runs: int = 20,
                 warmup: int = 5) -> list[NodeTime]:
    """Per-node median times (ms) of the ONNX model at ``path`` run ``runs`` times on ``runtime``."""
    if runtime == "onnxruntime":
        return _profile_ort(Path(path), inputs, threads, runs, warmup)
    if runtime == "openvino":
        return _profile_openvino(Path(path), inputs, threads, runs, warmup)
    raise ValueError(f"profiling needs runtime onnxruntime or openvino, got {runtime!r}")


def profile_module(module: nn.Module, inputs: ExampleInputs, runtime: str, threads: int = 1, runs: int = 20,
                   warmup: int = 5) -> list[NodeTime]:
    """Export ``module`` to ONNX and profile it (see :func:`profile_onnx`)."""
    from detprune.deploy.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="detprune-profile-") as tmp:
        path = Path(tmp) / "m.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(module.eval(), inputs, path)
        return profile_onnx(path, inputs, runtime, threads, runs, warmup)


def by_kind(nodes: list[NodeTime]) -> dict[str, float]:
    """Milliseconds per kind (every kind present, 0.0 when absent)."""
    out = dict.fromkeys(KINDS, 0.0)
    for n in nodes:
        out[n.kind] += n.ms
    return out


def _profile_ort(path: Path, inputs: ExampleInputs, threads: int, runs: int, warmup: int) -> list[NodeTime]:
    import onnxruntime as ort

    from detprune.deploy.export import onnx_feeds

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    with tempfile.TemporaryDirectory(prefix="detprune-ortprof-") as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = onnx_feeds([i.name for i in sess.get_inputs()], inputs, path)
        for _ in range(warmup + runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    times: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, tuple[str, bool]] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        times[node].append(e["dur"] / 1000.0)
        if node not in ops:
            args = e.get("args", {})
            ops[node] = (args.get("op_name", "?"), _ort_depthwise(args))
    return [NodeTime(n, ops[n][0], kind_of(*ops[n]), statistics.median(t[warmup:] or t)) for n, t in times.items()]


def _ort_depthwise(args: dict) -> bool:
    """A Conv whose weight has one input channel per group while the input has several."""
    if args.get("op_name") not in ("Conv", "FusedConv"):
        return False
    shapes = [next(iter(s.values())) for s in args.get("input_type_shape", []) if s]
    return len(shapes) >= 2 and len(shapes[1]) == 4 and shapes[1][1] == 1 and shapes[0][1] > 1


def _profile_openvino(path: Path, inputs: ExampleInputs, threads: int, runs: int, warmup: int) -> list[NodeTime]:
    import openvino as ov

    from detprune.deploy.export import onnx_feeds

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
              "PERF_COUNT": True}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    feeds = onnx_feeds([p.any_name for p in compiled.inputs], inputs, path)
    request = compiled.create_infer_request()
    times: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    for i in range(warmup + runs):
        request.infer(feeds)
        if i < warmup:
            continue
        for p in request.get_profiling_info():
            if str(p.status).endswith("EXECUTED"):  # not NOT_RUN / OPTIMIZED_OUT
                times[p.node_name].append(p.real_time.total_seconds() * 1000.0)
                ops[p.node_name] = p.node_type
    return [NodeTime(n, ops[n], kind_of(ops[n]), statistics.median(t)) for n, t in times.items()]
