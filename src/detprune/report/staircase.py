"""Latency-staircase data for a report: measured latency of a layer against its channel count.

Cluster (latency-aware) pruning keeps channel counts at the right edge of a latency step; a
report shows the measured staircase it used. Accepted files:

* JSON ``{"runtime": "openvino", "series": [{"label": "stage3.0", "channels": [...],
  "latency_ms": [...], "chosen": [48]}]}``, or a single series object, or a list of series;
* CSV with a header ``channels,latency_ms`` and optionally ``label`` (one series per label);
* a latency LUT of cluster pruning (``{"format": "detprune-latency-lut/1", "runtime": ...,
  "entries": {sig: {"label", "points": {width: ms}, "cluster"}}}``, :mod:`detprune.schedule.lut`).

Everything is normalised to ``{"runtime": str | None, "series": [{label, channels, latency_ms, chosen, cluster}]}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


class StaircaseError(ValueError):
    pass


def _series(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or "channels" not in obj or "latency_ms" not in obj:
        raise StaircaseError(f"{where}: a series needs 'channels' and 'latency_ms' lists")
    ch, lat = list(obj["channels"]), list(obj["latency_ms"])
    if len(ch) != len(lat) or not ch:
        raise StaircaseError(f"{where}: 'channels' and 'latency_ms' must be non-empty and of equal length")
    try:
        pairs = sorted((int(c), float(t)) for c, t in zip(ch, lat))
    except (TypeError, ValueError) as exc:
        raise StaircaseError(f"{where}: channels must be integers and latency_ms numbers ({exc})") from exc
    return {"label": obj.get("label") or obj.get("layer"), "channels": [c for c, _ in pairs],
            "latency_ms": [t for _, t in pairs], "chosen": [int(c) for c in obj.get("chosen") or []],
            "cluster": int(obj["cluster"]) if obj.get("cluster") else None}


def load_staircase(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise StaircaseError(f"{path} does not exist")
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"channels", "latency_ms"} <= set(reader.fieldnames):
                raise StaircaseError(f"{path}: the CSV header needs channels,latency_ms (and optionally label)")
            by_label: dict[str, dict[str, list]] = {}
            for row in reader:
                s = by_label.setdefault(row.get("label") or "", {"channels": [], "latency_ms": []})
                s["channels"].append(row["channels"])
                s["latency_ms"].append(row["latency_ms"])
        return {"runtime": None, "series": [_series({**s, "label": k or None}, str(path)) for k, s in by_label.items()]}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StaircaseError(f"{path}: not valid JSON ({exc})") from exc
    runtime = data.get("runtime") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(data.get("entries"), dict):  # a cluster-pruning latency LUT
        # group staircases only: per-layer entries ("layer:...", keys "cin x cout") are not series
        widths = {sig: {k: v for k, v in e.get("points", {}).items() if str(k).isdigit()}
                  for sig, e in data["entries"].items() if not str(sig).startswith("layer:")}
        items = [{"label": data["entries"][sig].get("label") or sig[:8], "channels": list(pts),
                  "latency_ms": list(pts.values()), "cluster": data["entries"][sig].get("cluster")}
                 for sig, pts in widths.items() if len(pts) > 1]
    elif isinstance(data, dict) and "series" in data:
        items = data["series"]
    elif isinstance(data, list):
        items = data
    else:
        items = [data]
    return {"runtime": runtime, "series": [_series(s, f"{path} series {i}") for i, s in enumerate(items)]}
