"""Metrics of a fictitious run, for report tests (the report layer only reads data)."""

from __future__ import annotations


def _groups(kept: float) -> list[dict]:
    return [{"index": i, "modules": [f"layer{i}.conv (Conv2d)"], "before": 32, "after": int(32 * kept)} for i in range(6)]


METRICS = {
    "command": "prune", "name": "exp", "model": "yolov8n", "data": "synthetic:16", "img_size": 64, "threads": 1,
    "created": "2025-01-01T12:00:00", "seconds": 12.3, "title": None,
    "eval": {"split": "val", "images": 8, "score_thres": 0.25},
    "target": {"text": "macs=0.5", "metric": "macs", "goal": 5.0e6, "base": 1.0e7},
    "rows": [
        {"name": "baseline", "role": "baseline", "params": 3_000_000, "macs": 10_000_000, "map50": 0.61, "map": 0.40,
         "f1": 0.55, "latency_ms": {"torch": 10.0, "onnxruntime": 5.0}},
        {"name": "l1", "role": "finetuned", "criterion": "l1", "ratio": 0.31, "finetune_epochs": 2, "params": 1_500_000,
         "macs": 4_900_000, "map50": 0.52, "map": 0.31, "f1": 0.47, "latency_ms": {"torch": 6.0, "onnxruntime": None},
         "groups": _groups(0.7), "checkpoint": "weights/l1.safetensors"},
        {"name": "attribution", "role": "finetuned", "criterion": "attribution", "ratio": 0.29, "finetune_epochs": 2,
         "params": 1_400_000, "macs": 4_950_000, "map50": 0.58, "map": 0.36, "f1": 0.51,
         "latency_ms": {"torch": 6.2, "onnxruntime": 3.1}, "groups": _groups(0.6)},
    ],
    "skipped": {"coupling": "not registered"},
    "latency_errors": {"onnxruntime": "RuntimeError: boom"},
}
