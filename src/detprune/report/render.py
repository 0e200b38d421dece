"""Write a run folder's ``report.html`` and ``report.md`` from its ``metrics.json``.

Reports are derived data: they can be re-rendered at any time (``detprune report RUN_DIR``),
e.g. after adding latency-staircase data, without re-running anything. Figures are written
to ``plots/`` (Markdown links them) and embedded in the HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from detprune.atomic import atomic_write_bytes, atomic_write_text
from detprune.pipeline.runs import read_json
from detprune.report.content import Section, build_sections
from detprune.report.html import render_html
from detprune.report.markdown import render_markdown
from detprune.report.plots import all_plots

SAMPLES = "samples/detections.png"
SectionsFn = Callable[[dict[str, Any], set[str], "str | None"], tuple[str, list[Section]]]


def render_run(run_dir: str | Path, sections_fn: SectionsFn = build_sections,
               samples: tuple[str, str] = (SAMPLES, "detections")) -> tuple[Path, Path]:
    """(Re)write the reports of ``run_dir``; returns ``(report.html, report.md)``.

    ``sections_fn(metrics, figure names, config text) -> (title, sections)`` and ``samples``
    (path in the run folder, figure name) let a task (saliency) reuse this with its own content."""
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no metrics.json (not a detprune run folder?)")
    metrics = read_json(metrics_path)
    images = all_plots(metrics)
    paths = {}
    for stem, png in images.items():
        atomic_write_bytes(run_dir / "plots" / f"{stem}.png", png)
        paths[stem] = f"plots/{stem}.png"
    sample_path, sample_name = samples
    if (run_dir / sample_path).is_file():
        images[sample_name] = (run_dir / sample_path).read_bytes()
        paths[sample_name] = sample_path
    config = run_dir / "config.yaml"
    title, sections = sections_fn(metrics, set(images), config.read_text() if config.is_file() else None)
    html_path = atomic_write_text(run_dir / "report.html", render_html(title, sections, images))
    md_path = atomic_write_text(run_dir / "report.md", render_markdown(title, sections, paths))
    return html_path, md_path
