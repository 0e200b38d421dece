"""``detprune demo --quick`` end to end: the comparison table, the report, skipped criteria named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from detprune.cli import app
from detprune.criteria import CRITERIA
from detprune.pipeline.baseline import has_baseline

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """Import the heavy modules first, so the timer measures the demo rather than Python compiling
    torch/matplotlib modules (slow when bytecode caching is off, as on the shared dev machine)."""
    import detprune.detection.evaluate  # noqa: F401
    import detprune.detection.train  # noqa: F401
    import detprune.pipeline.runner  # noqa: F401
    import detprune.report.render  # noqa: F401


@pytest.mark.skipif(not has_baseline(), reason="the demo baseline checkpoint is not in this checkout")
def test_demo_quick(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    result = runner.invoke(app, ["demo", "--quick", "--criterion", "attribution,coupling,l1,not-a-criterion",
                                 "--threads", "1", "--project", str(tmp_path), "--name", "q"])
    seconds = time.perf_counter() - t0
    assert result.exit_code == 0, result.output
    assert seconds < 60, f"demo --quick took {seconds:.0f} s"
    run_dir = tmp_path / "demo" / "q"
    m = json.loads((run_dir / "metrics.json").read_text())
    ran = [c for c in ("attribution", "coupling", "l1") if c in CRITERIA]
    assert [r["name"] for r in m["rows"]] == ["baseline"] + ran
    assert "not-a-criterion" in m["skipped"] and "skipped criterion not-a-criterion" in result.output
    base = m["rows"][0]
    for r in m["rows"][1:]:  # every criterion meets the same MACs target
        assert r["macs"] <= 0.5 * base["macs"] * (1 + 1e-9) and r["finetune_epochs"] == 1
        assert r["name"] in result.output
    for column in ("mAP50", "mAP50-95", "F1", "params", "MACs", "torch ms"):
        assert column in result.output
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "Sample detections" in html
    assert f"report: {run_dir / 'report.html'}" in result.output
