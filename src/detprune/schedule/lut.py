"""Latency lookup tables: measured layer latencies per width, cached per runtime and machine.

Measuring staircases is the slow part of cluster pruning, and the numbers only hold for the
machine, runtime version and thread count they were taken on. A table records that
*fingerprint* next to its entries; loading a table whose fingerprint differs from the current
machine warns (that is expected and intended when the table was built on the deployment
device, e.g. with ``detprune lut``, and pruning runs on a workstation).

File layout (JSON)::

    {"format": "detprune-latency-lut/1", "runtime": "onnxruntime",
     "fingerprint": {"cpu": ..., "cores": 2, "arch": "x86_64", "isa": [...], "threads": 1,
                     "runtime": "onnxruntime", "runtime_version": "1.22.0", "torch": "2.13.0"},
     "entries": {"<signature>": {"label": "backbone.conv3", "points": {"96": 0.81, ...},
                                 "cluster": 16, "cluster_source": "staircase"}}}

Entry signatures hash the measured layers' shapes, so a table built for one model width is never
applied to another. A GPU table (runtime ``onnxruntime:cuda:0`` etc.) also records the device and its
name; CPU fingerprints have no device keys, so tables built before devices existed still match.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any

from detprune.atomic import atomic_write_text
from detprune.cache import cache_root
from detprune.deploy.backend import Backend, gpu_name, parse_runtime

FORMAT = "detprune-latency-lut/1"
_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "neon", "asimd")


class LatencyLUTWarning(UserWarning):
    """A latency table was built on a different machine / runtime / thread count."""


def _cpu_info() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.lower().startswith(("model name", "hardware", "cpu model"))), platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.lower().startswith(("flags", "features"))), [])
    return model or platform.machine(), sorted(f for f in _ISA if f in flags)


def runtime_version(runtime: str | Backend) -> str:
    runtime = parse_runtime(runtime).runtime
    if runtime == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    if runtime == "openvino":
        import openvino

        return openvino.__version__
    import torch

    return torch.__version__


def fingerprint(runtime: str | Backend, threads: int) -> dict[str, Any]:
    """What latency numbers depend on: CPU, core count, ISA, runtime and its version, threads; and the
    GPU's name when the runtime runs on one."""
    import torch

    backend = parse_runtime(runtime)
    cpu, isa = _cpu_info()
    fp = {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(), "isa": isa, "threads": int(threads),
          "runtime": str(backend), "runtime_version": runtime_version(backend), "torch": torch.__version__}
    if backend.on_gpu:
        fp.update(device=backend.device, gpu=gpu_name(backend))
    return fp


def fingerprint_id(fp: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    return cache_root("latency")


def _point_key(width: int | str) -> str:
    """A group's width (``96``) or a layer's ``"96x80"`` (input x output channels)."""
    return width if isinstance(width, str) else str(int(width))


class LatencyLUT:
    """Width -> milliseconds per layer-set signature, plus the cluster size derived from it."""

    def __init__(self, runtime: str | Backend, threads: int, entries: dict[str, dict] | None = None,
                 fp: dict[str, Any] | None = None, path: str | Path | None = None) -> None:
        self.runtime, self.threads = str(parse_runtime(runtime)), int(threads)
        self.fingerprint = fp or fingerprint(runtime, threads)
        self.entries: dict[str, dict] = entries or {}
        self.path = Path(path) if path is not None else None

    # ------------------------------------------------------------------ entries
    def points(self, sig: str) -> dict[int, float]:
        """Width -> ms of a group signature (per-layer ``"cin x cout"`` keys are left out)."""
        return {int(k): float(v) for k, v in self.entries.get(sig, {}).get("points", {}).items() if k.isdigit()}

    def get(self, sig: str, width: int | str) -> float | None:
        v = self.entries.get(sig, {}).get("points", {}).get(_point_key(width))
        return None if v is None else float(v)

    def put(self, sig: str, width: int | str, ms: float, label: str = "") -> None:
        """Record a measurement; repeated measurements keep the minimum (see :mod:`detprune.deploy.side_by_side`)."""
        entry = self.entries.setdefault(sig, {"label": label, "points": {}})
        key = _point_key(width)
        old = entry["points"].get(key)
        entry["points"][key] = float(ms) if old is None else min(float(old), float(ms))

    def cluster(self, sig: str) -> tuple[int, str] | None:
        e = self.entries.get(sig, {})
        return (int(e["cluster"]), str(e.get("cluster_source", "staircase"))) if "cluster" in e else None

    def simd_block(self) -> int:
        """The SIMD block (fp32 lanes) of the CPU the table was measured on, not of this one."""
        from detprune.schedule.staircase import default_cluster

        return default_cluster(self.fingerprint.get("isa", []))

    def set_cluster(self, sig: str, cluster: int, source: str, label: str = "") -> None:
        entry = self.entries.setdefault(sig, {"label": label, "points": {}})
        entry["cluster"], entry["cluster_source"] = int(cluster), source

    # ------------------------------------------------------------------ files
    def default_path(self) -> Path:
        name = self.runtime.replace(":", "-")  # "onnxruntime:cuda:0": no colons in file names
        return cache_dir() / f"{name}-t{self.threads}-{fingerprint_id(self.fingerprint)}.json"

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (temp file + rename), so concurrent runs never read half a table."""
        path = Path(path or self.path or self.default_path())
        data = {"format": FORMAT, "runtime": self.runtime, "fingerprint": self.fingerprint, "entries": self.entries}
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path, runtime: str | Backend | None = None, threads: int | None = None) -> "LatencyLUT":
        """Read a table; warns when it was built on another machine / runtime version / thread count."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a detprune latency table (format {data.get('format')!r})")
        rt = data["runtime"]
        if runtime is not None and str(parse_runtime(runtime)) != rt:
            raise ValueError(f"{path}: table for runtime {rt!r}, asked for {runtime!r}")
        fp = data.get("fingerprint", {})
        lut = cls(rt, int(fp.get("threads", threads or 1)), data.get("entries", {}), fp, path)
        here = fingerprint(rt, threads if threads is not None else lut.threads)
        diff = {k: (fp.get(k), here[k]) for k in here if fp.get(k) != here[k]}
        if diff:
            shown = ", ".join(f"{k}: table {a!r} vs here {b!r}" for k, (a, b) in diff.items())
            warnings.warn(f"latency table {path} was built on a different setup ({shown}); its timings describe "
                          "that device, not this one", LatencyLUTWarning, stacklevel=2)
        return lut

    @classmethod
    def cached(cls, runtime: str | Backend, threads: int) -> "LatencyLUT":
        """This machine's table for ``runtime``/``threads`` from the cache directory, or a new empty one."""
        lut = cls(runtime, threads)
        path = lut.default_path()
        if path.is_file():
            try:
                return cls.load(path, runtime, threads)
            except (ValueError, json.JSONDecodeError, KeyError):
                warnings.warn(f"ignoring unreadable latency table {path}", LatencyLUTWarning, stacklevel=2)
        lut.path = path
        return lut
