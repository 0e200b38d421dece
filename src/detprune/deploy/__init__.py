"""Deployment side of pruning: cost (params, MACs), ONNX / OpenVINO export, CPU latency (alone or side by side)."""

from detprune.deploy.export import OnnxParityError, check_onnx_parity, export_onnx, export_openvino
from detprune.deploy.flops import count_macs, count_params
from detprune.deploy.latency import RUNTIMES, LatencyResult, measure_latency
from detprune.deploy.side_by_side import compare

__all__ = [
    "RUNTIMES",
    "LatencyResult",
    "OnnxParityError",
    "check_onnx_parity",
    "compare",
    "count_macs",
    "count_params",
    "export_onnx",
    "export_openvino",
    "measure_latency",
]
