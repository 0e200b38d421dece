"""Side-by-side timing of several variants of a model on one runtime.

Pruning decisions compare latencies of variants (a layer at 96 vs 80 channels, the model before
vs after a step), and the machines this runs on are shared: a single sequential measurement per
variant confounds the difference with whatever else ran at that moment. Variants are therefore
prepared first (exported, compiled), then timed in interleaved rounds, and each keeps the
*minimum* over its calls: background load only ever adds time, so the minimum is the most
repeatable estimate of a variant's own cost.

Clock: with one thread (``clock="auto"``), the process CPU time of a call is its latency minus
the time the scheduler gave to other processes, which removes the largest source of noise on a
busy machine (all three runtimes compute in the calling process; their idle pool threads add
nothing). With several threads CPU time sums over threads, so wall time is used; on a GPU too
(:func:`clock_of`), whose work is not this process's CPU time.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from detprune.deploy.backend import Backend, check_device, parse_runtime
from detprune.inputs import ExampleInputs

Runner = Callable[[], Any]


def make_runner(module: nn.Module, inputs: ExampleInputs, runtime: str | Backend, threads: int,
                workdir: str | Path | None = None) -> Runner:
    """A zero-argument callable running one eval-mode forward of ``module`` on ``runtime`` (and its device)."""
    from detprune.deploy.latency import file_runner, torch_runner

    backend = parse_runtime(runtime)
    check_device(backend)
    module.eval()
    if backend.runtime == "torch":
        return torch_runner(module, inputs, backend)
    from detprune.deploy.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="detprune-runner-", dir=workdir) as tmp:
        path = Path(tmp) / "m.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter (constant folding notes) on every variant
            export_onnx(module, inputs, path)
        return file_runner(path, inputs, backend, threads)[0]


def clock_of(runtime: str | Backend) -> str:
    """The clock for timing on ``runtime``: a GPU's work is not CPU time of this process, so wall time."""
    return "wall" if parse_runtime(runtime).on_gpu else "auto"


CLOCKS = ("auto", "wall", "cpu")


def clock_for(clock: str, threads: int | None) -> Callable[[], int]:
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
    cpu = clock == "cpu" or (clock == "auto" and threads == 1)
    return time.process_time_ns if cpu else time.perf_counter_ns


def time_interleaved(runners: Sequence[Runner], rounds: int = 5, calls: int = 3, threads: int | None = None,
                     clock: str = "auto") -> np.ndarray:
    """Minimum milliseconds per runner over ``rounds`` interleaved passes of ``calls`` timed calls each.

    Each pass calls every runner once untimed first (warm caches after the other variants ran).
    """
    now = clock_for(clock, threads)
    prev = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    best = np.full(len(runners), np.inf)
    try:
        for _ in range(max(1, rounds)):
            for i, run in enumerate(runners):
                run()
                for _ in range(max(1, calls)):
                    t0 = now()
                    run()
                    best[i] = min(best[i], (now() - t0) / 1e6)
    finally:
        torch.set_num_threads(prev)
    return best


def compare(modules: Sequence[nn.Module], inputs: ExampleInputs, runtime: str | Backend = "torch",
            threads: int | None = None, rounds: int = 5, calls: int = 3, clock: str | None = None) -> np.ndarray:
    """Side-by-side latency (ms, minimum) of several models on the same input; ``clock`` defaults to
    :func:`clock_of` the runtime."""
    threads = torch.get_num_threads() if threads is None else threads
    runners = [make_runner(m, inputs, runtime, threads) for m in modules]
    return time_interleaved(runners, rounds, calls, threads, clock or clock_of(runtime))
