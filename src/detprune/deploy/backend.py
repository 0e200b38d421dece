"""Where a model is timed: a runtime and a device, written ``runtime[:device]``.

``torch``, ``onnxruntime`` and ``openvino`` run on the CPU; a device suffix selects a GPU where one
is present: ``torch:cuda`` (``torch:cuda:1``, ``torch:mps``), ``onnxruntime:cuda`` (the CUDA
execution provider, from the ``onnxruntime-gpu`` package), ``openvino:gpu`` (``openvino:gpu.1``).
``gpu`` is accepted for every runtime. One string keeps every place that names a runtime (targets
such as ``latency=0.7@onnxruntime:cuda``, ``--runtime``, latency tables) unchanged in shape.

A GPU that is asked for but absent is an error, never a silent fallback to the CPU: a latency
target met on the wrong device would be a wrong answer (ONNX Runtime, for one, quietly drops a
provider it cannot load).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

RUNTIMES = ("torch", "onnxruntime", "openvino")
_DEVICES = {"torch": "cpu, cuda, cuda:N, mps, gpu", "onnxruntime": "cpu, cuda, cuda:N, gpu",
            "openvino": "cpu, gpu, gpu.N"}


@dataclass(frozen=True)
class Backend:
    """A runtime and its device; ``str()`` gives the canonical ``runtime[:device]`` spelling."""

    runtime: str
    device: str = "cpu"  # "cpu", "cuda:N" (torch, onnxruntime), "mps" (torch), "gpu" / "gpu.N" (openvino)

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    @property
    def device_index(self) -> int:
        """The GPU's index (0 when not given)."""
        m = re.search(r"[:.](\d+)$", self.device)
        return int(m.group(1)) if m else 0

    def __str__(self) -> str:
        return self.runtime if self.device == "cpu" else f"{self.runtime}:{self.device}"


def parse_runtime(text: str | Backend) -> Backend:
    """``"onnxruntime:cuda"`` -> ``Backend("onnxruntime", "cuda:0")``; a clear error for anything else."""
    if isinstance(text, Backend):
        return text
    runtime, _, device = str(text).strip().partition(":")
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {text!r}; choose from {', '.join(RUNTIMES)}, "
                         "optionally with a device (e.g. onnxruntime:cuda, openvino:gpu)")
    device = device.strip().lower() or "cpu"
    if device == "cpu":
        return Backend(runtime)
    if runtime == "openvino":
        m = re.fullmatch(r"gpu(?:[.:](\d+))?", device)
        if m:  # OpenVINO lists a lone GPU as "GPU": index 0 is spelled that way, one name per device
            index = int(m.group(1) or 0)
            return Backend(runtime, f"gpu.{index}" if index else "gpu")
    else:
        m = re.fullmatch(r"(?:cuda|gpu)(?::(\d+))?", device)
        if m:
            return Backend(runtime, f"cuda:{int(m.group(1) or 0)}")
        if runtime == "torch" and device == "mps":
            return Backend(runtime, "mps")
    raise ValueError(f"runtime {text!r}: unknown device {device!r} for {runtime}; choose from {_DEVICES[runtime]}")


@functools.cache
def check_device(backend: Backend) -> None:
    """Raise if ``backend``'s GPU is not usable here (naming what is), instead of timing the CPU.

    Cached: latency tables build a runner per width timed, and OpenVINO's device query is not free."""
    if not backend.on_gpu:
        return
    if backend.runtime == "torch":
        import torch

        if backend.device == "mps":
            ok, seen = torch.backends.mps.is_available(), "MPS available: False"
        else:
            ok = torch.cuda.is_available() and backend.device_index < torch.cuda.device_count()
            seen = f"torch sees {torch.cuda.device_count() if torch.cuda.is_available() else 0} CUDA device(s)"
    elif backend.runtime == "onnxruntime":
        import onnxruntime as ort

        providers = ort.get_available_providers()
        ok, seen = "CUDAExecutionProvider" in providers, f"ONNX Runtime providers: {', '.join(providers)}"
    else:
        import openvino as ov

        devices = ov.Core().available_devices
        want = backend.device.upper()  # "GPU" (the first) or "GPU.1"
        ok = any(d == want or (want == "GPU" and d.startswith("GPU")) for d in devices)
        seen = f"OpenVINO devices: {', '.join(devices)}"
    if not ok:
        raise ValueError(f"runtime {backend}: no such device on this machine ({seen})")


def gpu_name(backend: Backend) -> str:
    """The GPU's product name as its runtime reports it ("unknown" if it cannot be asked)."""
    try:
        if backend.runtime == "openvino":
            import openvino as ov

            return str(ov.Core().get_property(backend.device.upper(), "FULL_DEVICE_NAME"))
        import torch

        if backend.device == "mps":
            return "Apple MPS"
        return torch.cuda.get_device_name(backend.device_index)
    except Exception:  # noqa: BLE001 - e.g. onnxruntime-gpu without a CUDA-enabled torch
        return "unknown"


def synchronizer(backend: Backend) -> Callable[[], None]:
    """What to call after a torch forward so its time includes the GPU's work (kernels run async)."""
    import torch

    if backend.runtime != "torch" or not backend.on_gpu:
        return lambda: None
    if backend.device == "mps":
        return torch.mps.synchronize
    return lambda: torch.cuda.synchronize(backend.device)
