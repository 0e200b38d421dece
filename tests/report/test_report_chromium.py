"""The HTML report renders in a real browser (headless Chromium): screenshot exists and is not blank.

Chromium is started for a closed network: no QUIC, no background, component-update or sync
traffic, no first-run UI, a fresh profile per test. CI installs Debian's ``chromium`` when it can
(``.ci/run``); without it these tests skip with the reason below.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from detprune.report.render import render_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="headless Chromium is not installed (Debian: apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(html: Path, tmp_path: Path, height: int = 2000) -> Image.Image:
    """Greyscale screenshot (1280 x ``height``) of ``html`` taken by headless Chromium."""
    shot = tmp_path / "report.png"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
           f"--window-size=1280,{height}", html.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), f"no screenshot; chromium said: {proc.stderr[-2000:]}"
    assert shot.stat().st_size > 30_000
    img = Image.open(shot).convert("L")
    assert img.size == (1280, height)
    lo, hi = img.getextrema()
    assert hi - lo > 100, "blank screenshot"
    return img


@needs_chromium
def test_report_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    html, _ = render_run(run_dir)
    img = screenshot(html, tmp_path)
    # the top (title, table, first plot) holds dark text on white: many distinct grey levels
    assert len(img.crop((0, 0, 1280, 900)).getcolors(maxcolors=256) or range(257)) > 50


SALIENCY = {
    "command": "prune", "task": "saliency", "name": "sal", "model": "baseline.safetensors", "data": "synthetic:8",
    "img_size": 32, "threads": 1, "created": "2025-01-01T12:00:00", "seconds": 4.2, "title": None,
    "architecture": {"name": "vgg16", "width": 0.125}, "saliency_eval": {"split": "val", "images": 8},
    "target": {"text": "params=0.4", "metric": "params", "goal": 120_000, "base": 300_000},
    "rows": [
        {"name": "baseline", "role": "baseline", "params": 300_000, "macs": 8_000_000, "mae": 0.0412, "max_f": 0.71,
         "mean_f": 0.64, "wf": 0.58, "sm": 0.77, "em": 0.83, "latency_ms": {"torch": 3.0}},
        {"name": "wrg", "role": "finetuned", "criterion": "wrg", "ratio": 0.37, "finetune_epochs": 1, "params": 118_000,
         "macs": 3_300_000, "mae": 0.0455, "max_f": 0.69, "mean_f": 0.61, "wf": 0.55, "sm": 0.75, "em": 0.82,
         "latency_ms": {"torch": 2.0}, "checkpoint": "weights/wrg.safetensors",
         "groups": [{"index": i, "modules": [f"encoder.{i} (Conv2d)"], "before": 16, "after": 10} for i in range(5)]},
    ],
}


@needs_chromium
def test_saliency_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from detprune.pipeline.runs import write_json
    from detprune.pipeline.saliency_report import render_any

    run = tmp_path / "run"
    write_json(run / "metrics.json", SALIENCY)
    (run / "config.yaml").write_text("model: baseline.safetensors\ntask: saliency\nprune:\n  criteria: [wrg]\n")
    html, md = render_any(run)
    assert "| wrg | wrg @ ratio 0.37, fine-tuned 1 ep | 0.0455 (+0.0043) | 0.690 (-0.020)" in md.read_text()
    img = screenshot(html, tmp_path, height=1400)
    assert len(img.crop((0, 0, 1280, 700)).getcolors(maxcolors=256) or range(257)) > 50
