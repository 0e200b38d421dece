"""Deployment side of pruning: cost (params, MACs), ONNX / OpenVINO export, CPU latency."""

from detprune.deploy.export import OnnxParityError, check_onnx_parity, export_onnx, export_openvino
from detprune.deploy.flops import count_macs, count_params
from detprune.deploy.latency import RUNTIMES, LatencyResult, measure_latency

__all__ = [
    "RUNTIMES",
    "LatencyResult",
    "OnnxParityError",
    "check_onnx_parity",
    "count_macs",
    "count_params",
    "export_onnx",
    "export_openvino",
    "measure_latency",
]
