"""HTML/Markdown reports from a metrics.json: content, self-containment, staircase data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from report_helpers import METRICS

from detprune.pipeline.runs import read_json, write_json
from detprune.report.format import comparison, fmt_count
from detprune.report.render import render_run
from detprune.report.staircase import StaircaseError, load_staircase


def test_comparison_table_contents() -> None:
    headers, rows = comparison(METRICS["rows"])
    assert headers == ["model", "how", "mAP50", "mAP50-95", "F1", "params", "MACs", "torch ms", "onnxruntime ms"]
    assert rows[0][:5] == ["baseline", "original", "0.610", "0.400", "0.550"]
    assert rows[1][1] == "l1 @ ratio 0.31, fine-tuned 2 ep"
    assert rows[1][5:] == ["1.5M (50%)", "4.9M (49%)", "6.00 (60%)", "n/a"]
    assert fmt_count(646_963_200) == "647M" and fmt_count(1_234) == "1.23k" and fmt_count(None) == "n/a"


def test_html_is_self_contained(run_dir: Path) -> None:
    html_path, md_path = render_run(run_dir)
    html = html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html), "no external resources"
    assert html.count("data:image/png;base64,") == 2  # mAP vs MACs, kept channels
    for text in ("Before / after", "Accuracy vs compute", "Channels kept per coupling group", "Latency staircase",
                 "No staircase data", "Criterion <code>coupling</code> skipped", "onnxruntime not measured",
                 "Resolved configuration", "macs goal 5M"):
        assert text in html, text
    assert '<td class="l">attribution @ ratio 0.29, fine-tuned 2 ep</td>' in html


def test_markdown_links_written_plots(run_dir: Path) -> None:
    _, md_path = render_run(run_dir)
    md = md_path.read_text()
    assert md.startswith("# detprune prune: exp")
    assert "| l1 | l1 @ ratio 0.31, fine-tuned 2 ep | 0.520 | 0.310 | 0.470 | 1.5M (50%) | 4.9M (49%) | 6.00 (60%) | n/a |" in md
    for stem in ("map_vs_macs", "kept_channels"):
        assert f"](plots/{stem}.png)" in md and (run_dir / "plots" / f"{stem}.png").stat().st_size > 5_000
    assert "```yaml\nmodel: yolov8n" in md


def test_staircase_and_samples_sections(run_dir: Path, tmp_path: Path) -> None:
    stair = tmp_path / "stair.json"
    stair.write_text(json.dumps({"runtime": "openvino", "series": [
        {"label": "stage3.cv2", "channels": [16, 8, 24, 32], "latency_ms": [1.0, 1.0, 2.0, 2.0], "chosen": [16]}]}))
    m = read_json(run_dir / "metrics.json")
    m["staircase"] = load_staircase(stair)
    assert m["staircase"]["series"][0]["channels"] == [8, 16, 24, 32]  # sorted
    write_json(run_dir / "metrics.json", m)
    (run_dir / "samples").mkdir()
    from PIL import Image

    Image.new("RGB", (64, 32), (200, 10, 10)).save(run_dir / "samples" / "detections.png")
    html = render_run(run_dir)[0].read_text()
    assert "runtime openvino" in html and "No staircase data" not in html and "Sample detections" in html
    assert html.count("data:image/png;base64,") == 4


@pytest.mark.parametrize("content, suffix, words", [
    ('{"channels": [1, 2], "latency_ms": [1.0]}', ".json", "equal length"),
    ('{"latency_ms": [1.0]}', ".json", "needs 'channels'"),
    ("not json", ".json", "not valid JSON"),
    ("a,b\n1,2\n", ".csv", "channels,latency_ms"),
])
def test_staircase_errors(tmp_path: Path, content: str, suffix: str, words: str) -> None:
    path = tmp_path / f"s{suffix}"
    path.write_text(content)
    with pytest.raises(StaircaseError, match=words):
        load_staircase(path)


def test_render_needs_metrics(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no metrics.json"):
        render_run(tmp_path)


def test_staircase_reads_a_cluster_latency_lut(tmp_path: Path) -> None:
    lut = tmp_path / "lut.json"
    lut.write_text(json.dumps({"format": "detprune-latency-lut/1", "runtime": "onnxruntime", "entries": {
        "abc123": {"label": "stage3.cv2", "points": {"24": 2.0, "8": 1.0, "16": 1.0}, "cluster": 16},
        "def456": {"label": "one-point", "points": {"8": 1.0}},
        "layer:0f0f": {"label": "layer", "points": {"32x64": 0.4, "32x48": 0.3}}}}))  # per-layer timings: not a series
    data = load_staircase(lut)
    assert data["runtime"] == "onnxruntime" and len(data["series"]) == 1
    assert data["series"][0] == {"label": "stage3.cv2", "channels": [8, 16, 24], "latency_ms": [1.0, 1.0, 2.0],
                                 "chosen": [], "cluster": 16}


def test_latency_note_says_how_latency_was_measured(run_dir: Path) -> None:
    """pipeline.steps.bench keeps each model's minimum over interleaved side-by-side rounds; the
    report's note used to call it "the median batch-1 time"."""
    _, md_path = render_run(run_dir)
    md = md_path.read_text()
    assert "median" not in md
    assert "fastest batch-1 time on this machine, all models timed side by side in interleaved rounds" in md
