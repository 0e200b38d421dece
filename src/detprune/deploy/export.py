"""ONNX / OpenVINO export of (pruned) models, with a numerical parity check against torch.

Exporter choice: the legacy TorchScript exporter (``torch.onnx.export(..., dynamo=False)``).
With torch 2.13 the default dynamo exporter needs the ``onnxscript`` package, which is not a
dependency of this project (``ModuleNotFoundError: onnxscript``); the TorchScript exporter
is built into torch, handles conv nets with several (also nested / dict) outputs, honours
``dynamic_axes`` and opset 17, and is what ONNX Runtime and OpenVINO consume without
surprises. Its deprecation warning is silenced here because the choice is deliberate.

Files are written atomically (:mod:`detprune.atomic`: temp file in the target directory, renamed) so an
interrupted export never leaves a truncated model that a later benchmark would pick up.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from detprune.atomic import atomic_path
from detprune.inputs import ExampleInputs, call_model, flatten_tensors, split_inputs

__all__ = ["OnnxParityError", "check_onnx_parity", "export_onnx", "export_openvino", "onnx_feeds"]


class OnnxParityError(AssertionError):
    """An exported model's output differs from torch beyond the tolerance."""


def export_onnx(
    model: nn.Module,
    example_input: ExampleInputs,
    path: str | os.PathLike[str],
    opset: int = 17,
    dynamic_batch: bool = False,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> Path:
    """Export ``model`` (in eval mode; its mode is restored) to ``path`` and validate it.

    Inputs default to ``images`` (one tensor) or ``input0..``; outputs to ``output0..`` in the
    flattened order of the model's return value. ``dynamic_batch`` makes dim 0 of every input
    and output symbolic (``batch``).
    """
    path = Path(path)
    args, kwargs = split_inputs(example_input)
    was_training = model.training
    model.eval()
    try:
        with atomic_path(path) as tmp:
            with torch.no_grad():
                n_out = len(flatten_tensors(call_model(model, example_input, strict=True)))
            n_in = len(flatten_tensors(example_input))
            in_names = (
                list(input_names) if input_names else (["images"] if n_in == 1 else [f"input{i}" for i in range(n_in)])
            )
            out_names = list(output_names) if output_names else [f"output{i}" for i in range(n_out)]
            dynamic_axes = {n: {0: "batch"} for n in in_names + out_names} if dynamic_batch else None
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
                )
                warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
                torch.onnx.export(
                    model,
                    args,
                    str(tmp),
                    kwargs=kwargs or None,
                    dynamo=False,
                    opset_version=opset,
                    input_names=in_names,
                    output_names=out_names,
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
            onnx.checker.check_model(str(tmp), full_check=True)
    finally:
        model.train(was_training)
    return path


def check_onnx_parity(
    model: nn.Module,
    path: str | os.PathLike[str],
    example_input: ExampleInputs,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    scale_tol: float = 1e-5,
) -> float:
    """Max abs difference between ``model`` (eval mode) and ONNX Runtime on ``path``.

    Each output passes when ``|ort - torch| <= atol + scale_tol*max|torch| + rtol*|torch|``: float32
    rounding grows with the magnitudes summed into an element, not with the element itself, so an
    output that reaches ~100 can differ by ~1e-4 where it is near zero (kernels sum in another order).
    A wrong export errs by a fraction of the output's scale, far above ``scale_tol``.
    Raises ``OnnxParityError`` naming the first output outside the bound.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, onnx_feeds([i.name for i in sess.get_inputs()], example_input, path))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ref = [t.detach().cpu().numpy() for t in flatten_tensors(call_model(model, example_input, strict=True))]
    finally:
        model.train(was_training)
    names = [o.name for o in sess.get_outputs()]
    if len(got) != len(ref):
        raise OnnxParityError(f"{path}: ONNX model has {len(got)} outputs {names}, torch returned {len(ref)} tensors")
    worst = 0.0
    for name, g, r in zip(names, got, ref):
        if g.shape != r.shape:
            raise OnnxParityError(f"{path}: output {name!r} has shape {g.shape} in ONNX but {r.shape} in torch")
        if not r.size:
            continue
        diff = float(np.max(np.where(g == r, 0.0, np.abs(g.astype(np.float64) - r))))  # equal infs: 0, not nan
        scale = float(np.max(np.abs(r[np.isfinite(r)]), initial=0.0))  # an inf must not make the bound infinite
        bound = atol + scale_tol * scale
        if not np.allclose(g, r, rtol=rtol, atol=bound):
            raise OnnxParityError(
                f"{path}: output {name!r} differs from torch by up to {diff:.3g} "
                f"(bound {bound:.3g} + rtol={rtol} x |torch|: atol={atol} + scale_tol={scale_tol} x max|torch| {scale:.3g})"
            )
        worst = max(worst, diff)
    return worst


def export_openvino(
    onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], compress_to_fp16: bool = False
) -> Path:
    """Convert an ONNX model to OpenVINO IR ``out_dir/<stem>.xml`` (+ ``.bin``); returns the .xml.

    ``compress_to_fp16`` defaults to False (OpenVINO's own default is True) so the IR computes
    what the ONNX model computes; enable it for half-size weights.
    """
    import openvino as ov

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"onnx_path {onnx_path} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    ov_model = ov.convert_model(str(onnx_path))
    xml = out_dir / f"{onnx_path.stem}.xml"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".ov-") as tmp:
        tmp_xml = Path(tmp) / xml.name
        ov.save_model(ov_model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), xml.with_suffix(".bin"))  # weights first, then the graph
        os.replace(tmp_xml, xml)
    return xml


def onnx_feeds(input_names: Sequence[str], example_input: ExampleInputs, where: Any = "model") -> dict[str, np.ndarray]:
    """Map the flattened tensors of ``example_input`` onto a session's input names, by position."""
    tensors = flatten_tensors(example_input)
    if len(tensors) != len(input_names):
        raise ValueError(
            f"example_input has {len(tensors)} tensors but {where} expects {len(input_names)} "
            f"inputs {list(input_names)}"
        )
    return {n: t.detach().cpu().numpy() for n, t in zip(input_names, tensors)}
