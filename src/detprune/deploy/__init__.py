"""Deployment side of pruning: cost (params, MACs), ONNX / OpenVINO export, latency on CPU or GPU (alone or
side by side)."""

from detprune.deploy.backend import Backend, parse_runtime
from detprune.deploy.export import OnnxParityError, check_onnx_parity, export_onnx, export_openvino
from detprune.deploy.flops import count_macs, count_params
from detprune.deploy.latency import RUNTIMES, LatencyResult, measure_latency
from detprune.deploy.side_by_side import compare

__all__ = [
    "RUNTIMES",
    "Backend",
    "LatencyResult",
    "OnnxParityError",
    "check_onnx_parity",
    "compare",
    "count_macs",
    "count_params",
    "export_onnx",
    "export_openvino",
    "measure_latency",
    "parse_runtime",
]
