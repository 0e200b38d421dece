"""Reports of saliency runs: the six SOD metrics before/after, beside params / MACs / latency.

Built from the generic report (:mod:`detprune.report`: same sections, HTML and Markdown
renderers, plots) with the comparison table widened by the metric columns, a paragraph saying
what they mean, and a grid of saliency maps (image, ground truth, each model's map).
:func:`render_any` picks this renderer or the detection one from ``metrics.json``'s ``task``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from detprune.report.content import Figure, Section, Table
from detprune.report.format import comparison, fmt_count

SAMPLES = "samples/saliency.png"
METRICS = (("mae", "MAE"), ("max_f", "max F"), ("mean_f", "mean F"), ("wf", "wF"), ("sm", "S"), ("em", "E"))
LOWER_IS_BETTER = {"mae"}
_CELL = 96  # pixels per image in the sample grid
_HEADER = 18


def _fmt(key: str, value: float | None, base: float | None) -> str:
    if value is None:
        return "n/a"
    digits = 4 if key == "mae" else 3
    text = f"{value:.{digits}f}"
    if base is not None:
        text += f" ({value - base:+.{digits}f})"
    return text


def has_metrics(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("sm") is not None for r in rows)


def saliency_comparison(rows: list[dict[str, Any]], deltas: bool = True) -> tuple[list[str], list[list[str]]]:
    """The generic comparison (model, how, params, MACs, latency) with the six metrics after ``how``.

    With ``deltas``, rows after the first show the change from the first row in brackets."""
    headers, cells = comparison(rows)
    if not has_metrics(rows):
        return headers, cells
    at = headers.index("params")
    names = [f"{label} {'↓' if key in LOWER_IS_BETTER else '↑'}" for key, label in METRICS]
    headers = headers[:at] + names + headers[at:]
    base = rows[0]
    out = []
    for i, (row, line) in enumerate(zip(rows, cells)):
        values = [_fmt(k, row.get(k), base.get(k) if i > 0 and deltas else None) for k, _ in METRICS]
        out.append(line[:at] + values + line[at:])
    return headers, out


def rich_saliency_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table as RichTable

    headers, cells = saliency_comparison(rows, deltas=False)  # narrow enough for a terminal
    t = RichTable(title=title, title_justify="left")
    for h in headers:
        t.add_column(h, justify="left" if h in ("model", "how") else "right")
    for line in cells:
        t.add_row(*line)
    return t


def _explanation(m: dict[str, Any]) -> str:
    ev = m.get("saliency_eval") or {}
    return (f"Salient-object metrics on {ev.get('images', '?')} images of split `{ev.get('split', '?')}` at "
            f"{m.get('img_size')} px (PySODMetrics conventions, maps min-max normalised): MAE (lower is better), "
            "max F and mean F (adaptive threshold 2 x mean saliency; beta^2 = 0.3), weighted F, S-measure and "
            "mean E-measure (higher is better). In brackets: the change from the first row. MACs of one batch-1 "
            "forward; latency is the fastest batch-1 time on this machine, all models timed side by side in "
            "interleaved rounds.")


def _target(m: dict[str, Any]) -> list[str]:
    t = m.get("target")
    if not t:
        return []
    how = ("each criterion's local ratio (`how`) was bisected on its own scores until the parameters removed were "
           "within 0.5 % of the goal" if t.get("metric") == "params" else
           "each criterion searched its own removal with its own scores")
    return [f"Target `{t['text']}`: {t['metric']} goal {fmt_count(t.get('goal'))} "
            f"(unpruned {fmt_count(t.get('base'))}); {how}."]


def saliency_sections(m: dict[str, Any], figures: set[str], config_text: str | None) -> tuple[str, list[Section]]:
    from detprune.report.content import build_sections

    title, sections = build_sections(m, figures, config_text)
    rows = m.get("rows") or []
    arch = m.get("architecture") or {}
    for s in sections:
        if s.title == "Run" and arch.get("name"):
            s.blocks.append(f"Task: salient object detection; {arch['name']} encoder-decoder at width "
                            f"{arch.get('width', 1.0):g} (detprune.saliency), BCE + IoU loss.")
        if s.title == "Before / after":
            headers, cells = saliency_comparison(rows)
            s.blocks = [Table(headers, cells)] + ([_explanation(m)] if has_metrics(rows) else []) + _target(m)
    if not m.get("staircase"):
        sections = [s for s in sections if s.title != "Latency staircase"]
    if "saliency_samples" in figures:
        at = next((i for i, s in enumerate(sections) if s.title in ("Notes and files", "Resolved configuration")),
                  len(sections))
        sections.insert(at, Section("Sample saliency maps", [
            "Evaluation images: the image, its ground-truth mask, then each model's saliency map (white = salient; "
            "each map min-max normalised, as the metrics see it).",
            Figure("saliency_samples", "saliency maps before and after pruning")]))
    return title, sections


def render_saliency_run(run_dir: str | Path) -> tuple[Path, Path]:
    """(Re)write ``report.html`` and ``report.md`` of a saliency run folder."""
    from detprune.report.render import render_run

    return render_run(run_dir, saliency_sections, (SAMPLES, "saliency_samples"))


def render_any(run_dir: str | Path) -> tuple[Path, Path]:
    """The report of any run folder: the saliency renderer for ``task: saliency``, else the generic one."""
    from detprune.pipeline.runs import read_json
    from detprune.report.render import render_run

    path = Path(run_dir) / "metrics.json"
    if path.is_file() and read_json(path).get("task") == "saliency":
        return render_saliency_run(run_dir)
    return render_run(run_dir)


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else a


def saliency_grid(models: Sequence[tuple[str, Any]], dataset: Any, n: int) -> bytes:
    """PNG: one row per image (the first ``n`` of ``dataset``): image, mask, each model's map."""
    import torch

    from detprune.saliency import SaliencyAdapter

    n = min(n, len(dataset))
    pairs = [dataset[i] for i in range(n)]
    images = torch.stack([im for im, _ in pairs])
    columns: list[tuple[str, list[np.ndarray]]] = [
        ("image", [im.permute(1, 2, 0).numpy() for im in images]),
        ("ground truth", [t["mask"][0].numpy() for _, t in pairs])]
    for name, model in models:
        probs = SaliencyAdapter(model).predict(images)
        columns.append((name, [_minmax(p[0].numpy()) for p in probs]))
    font = ImageFont.load_default()
    grid = Image.new("RGB", (_CELL * len(columns), _HEADER + _CELL * n), "white")
    draw = ImageDraw.Draw(grid)
    for c, (label, cells) in enumerate(columns):
        draw.text((c * _CELL + 4, 3), label[:15], fill="black", font=font)
        for r, arr in enumerate(cells):
            u8 = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
            tile = Image.fromarray(u8).convert("RGB").resize((_CELL - 2, _CELL - 2), Image.NEAREST)
            grid.paste(tile, (c * _CELL + 1, _HEADER + r * _CELL + 1))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return buf.getvalue()
