"""ONNX export (checker + onnxruntime parity), a torchvision backbone, and the OpenVINO IR round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision
from torch import Tensor, nn

from detprune.deploy import OnnxParityError, check_onnx_parity, export_onnx, export_openvino


pytestmark = pytest.mark.usefixtures("one_thread")


class TwoHeads(nn.Module):
    """A tiny detector-like net: shared conv trunk, a dense head and a pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU(), nn.Conv2d(8, 8, 3, 2, 1)
        )
        self.box = nn.Conv2d(8, 4, 1)
        self.cls = nn.Linear(8, 5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.trunk(x)
        return self.box(f), self.cls(f.mean((2, 3)))


def _net() -> TwoHeads:
    torch.manual_seed(0)
    net = TwoHeads()
    with torch.no_grad():  # non-trivial BN statistics so eval-mode export matters
        net.trunk[1].running_mean.uniform_(-1, 1)
        net.trunk[1].running_var.uniform_(0.5, 2)
    return net


def test_two_output_net_exports_checks_and_matches(tmp_path: Path) -> None:
    net, x = _net().train(), torch.rand(1, 3, 32, 32)
    path = export_onnx(net, x, tmp_path / "sub" / "net.onnx", output_names=["boxes", "logits"])
    assert path == tmp_path / "sub" / "net.onnx" and net.training  # mode restored
    assert [p.name for p in path.parent.iterdir()] == ["net.onnx"]  # no temp file left behind
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert [i.name for i in m.graph.input] == ["images"]
    assert [o.name for o in m.graph.output] == ["boxes", "logits"]
    assert m.opset_import[0].version == 17
    assert check_onnx_parity(net, path, x) < 1e-4
    assert net.training


def test_dynamic_batch(tmp_path: Path) -> None:
    net = _net()
    path = export_onnx(net, torch.rand(1, 3, 32, 32), tmp_path / "net.onnx", dynamic_batch=True)
    dim0 = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch"
    assert check_onnx_parity(net, path, torch.rand(3, 3, 32, 32)) < 1e-4  # another batch size


def test_parity_error_names_the_output(tmp_path: Path) -> None:
    net, x = _net(), torch.rand(1, 3, 32, 32)
    path = export_onnx(net, x, tmp_path / "net.onnx", output_names=["boxes", "logits"])
    with torch.no_grad():
        net.cls.bias += 1.0  # torch model drifts from the exported file
    with pytest.raises(OnnxParityError, match="output 'logits' differs from torch by up to 1"):
        check_onnx_parity(net, path, x)


def test_torchvision_backbone_exports_and_matches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    det = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    backbone, x = det.backbone.eval(), torch.rand(1, 3, 320, 320)  # returns an OrderedDict of 6 feature maps
    for m in backbone.modules():  # torchvision's SSD init makes activations vanish (~1e-13): parity would be vacuous
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    with torch.no_grad():
        feats = list(backbone(x).values())
    assert all(f.std() > 0.1 for f in feats)
    path = export_onnx(backbone, x, tmp_path / "ssdlite_backbone.onnx")
    assert [o.name for o in onnx.load(str(path)).graph.output] == [f"output{i}" for i in range(6)]
    # Outputs reach ~150, and float32 rounding grows with them: ONNX Runtime's kernels differ from torch's by
    # ~3e-6 of that scale, 4.6e-4 on an AMD EPYC (over a fixed atol of 1e-4); the default bound scales with the output.
    check_onnx_parity(backbone, path, x)
    with torch.no_grad():
        backbone.features[0][0][0].weight.mul_(1.01)
    with pytest.raises(OnnxParityError):  # the same bound still catches a 1 % drift of one layer
        check_onnx_parity(backbone, path, x)


def test_parity_bound_scales_with_the_output(tmp_path: Path) -> None:
    net, x = _net(), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        net.box.weight.mul_(1e4)  # 'boxes' reaches ~1e4, with elements near zero
    path = export_onnx(net, x, tmp_path / "net.onnx", output_names=["boxes", "logits"])
    torch.manual_seed(1)
    with torch.no_grad():  # rounding-like error: 1e-6 relative per weight, so not proportional to each output element
        net.box.weight.mul_(1 + 1e-6 * torch.randn_like(net.box.weight))
    assert check_onnx_parity(net, path, x) > 1e-4  # passes, though above the fixed atol
    with pytest.raises(OnnxParityError, match="output 'boxes'.*scale_tol=0 "):
        check_onnx_parity(net, path, x, scale_tol=0)  # a fixed atol alone rejects it
    with torch.no_grad():
        net.box.weight.mul_(1.01)
    with pytest.raises(OnnxParityError, match="output 'boxes'"):  # a real drift of 1 % does not pass
        check_onnx_parity(net, path, x)


class WithInfinity(nn.Module):
    """A dense output with a column of -inf (log of 0), as a score head can give."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.lin(x), torch.log(x[:, :1] * 0)], dim=1)


def test_an_infinite_element_does_not_widen_the_bound(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net, x = WithInfinity(), torch.rand(2, 4)
    path = export_onnx(net, x, tmp_path / "inf.onnx")
    assert check_onnx_parity(net, path, x) < 1e-4  # the -inf column matches itself
    with torch.no_grad():
        net.lin.weight.mul_(1.01)
    with pytest.raises(OnnxParityError):  # the finite elements are still held to the bound
        check_onnx_parity(net, path, x)


def test_openvino_ir_round_trip(tmp_path: Path) -> None:
    import onnxruntime as ort
    import openvino as ov

    net, x = _net(), torch.rand(1, 3, 32, 32)
    onnx_path = export_onnx(net, x, tmp_path / "net.onnx", output_names=["boxes", "logits"])
    xml = export_openvino(onnx_path, tmp_path / "ir")
    assert xml == tmp_path / "ir" / "net.xml" and xml.with_suffix(".bin").is_file()
    assert sorted(p.name for p in xml.parent.iterdir()) == ["net.bin", "net.xml"]

    # f32 hint: on bf16-capable CPUs (AVX512-BF16/AMX, like CI's) the CPU plugin otherwise runs in bf16
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"})
    ov_out = compiled(x.numpy())
    ort_out = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})
    with torch.no_grad():
        torch_out = net.eval()(x)
    for name, ref, t in zip(["boxes", "logits"], ort_out, torch_out):
        got = ov_out[compiled.output(name)]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got, t.numpy(), rtol=1e-4, atol=1e-5)


def test_export_openvino_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="onnx_path"):
        export_openvino(tmp_path / "nope.onnx", tmp_path)
