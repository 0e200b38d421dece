"""The comparison table of a run, shared by the terminal, HTML and Markdown renderers.

Reads the ``rows`` of a run's ``metrics.json``: one row per model (the baseline, then each
pruned / fine-tuned variant) with accuracy, size, compute and latency per runtime measured.
"""

from __future__ import annotations

import math
from typing import Any

Row = dict[str, Any]


def fmt_count(n: float | None) -> str:
    """3012002 -> '3.01M', 646963200 -> '647M', 1.2e9 -> '1.20G'."""
    if n is None:
        return "n/a"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(int(n))


def fmt_metric(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def fmt_ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def fmt_rel(x: float | None, base: float | None) -> str:
    if x is None or not base:
        return ""
    return f" ({x / base:.0%})"


def runtimes(rows: list[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        for rt in (r.get("latency_ms") or {}):
            seen[rt] = None
    return list(seen)


def has_accuracy(rows: list[Row]) -> bool:
    return any(r.get("map50") is not None for r in rows)


def describe(row: Row) -> str:
    """How a row was obtained: 'l1 @ ratio 0.31, fine-tuned 2 ep'."""
    parts = []
    if row.get("criterion"):
        parts.append(f"{row['criterion']} @ ratio {row['ratio']:.3g}" if row.get("ratio") is not None else row["criterion"])
        if row.get("schedule"):
            parts[-1] += f" ({row['schedule']})"
        if row.get("iterative_steps") is not None:
            parts[-1] += f" in {row['iterative_steps']} step{'s' if row['iterative_steps'] != 1 else ''}"
            if row.get("stopped_early"):
                parts[-1] += " (stopped at the mAP limit)"
    if row.get("finetune_epochs"):
        parts.append(f"fine-tuned {row['finetune_epochs']} ep")
    if row.get("trained_epochs"):
        parts.append(f"trained {row['trained_epochs']} ep")
    if row.get("classes"):
        parts.append(f"specialised to {', '.join(row['classes'])}")
    return ", ".join(parts) or {"baseline": "original", "before": "original"}.get(row.get("role", ""), "")


def comparison(rows: list[Row], relative: bool = True) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the before/after table (accuracy columns only when evaluated)."""
    acc = has_accuracy(rows)
    rts = runtimes(rows)
    how = any(describe(r) for r in rows)
    headers = ["model"] + (["how"] if how else [])
    if acc:
        headers += ["mAP50", "mAP50-95", "F1"]
    headers += ["params", "MACs"] + [f"{rt} ms" for rt in rts]
    base = rows[0] if rows else {}
    cells = []
    for i, r in enumerate(rows):
        rel = relative and i > 0
        line = [r["name"]] + ([describe(r)] if how else [])
        if acc:
            line += [fmt_metric(r.get("map50")), fmt_metric(r.get("map")), fmt_metric(r.get("f1"))]
        line += [fmt_count(r.get("params")) + (fmt_rel(r.get("params"), base.get("params")) if rel else ""),
                 fmt_count(r.get("macs")) + (fmt_rel(r.get("macs"), base.get("macs")) if rel else "")]
        lat = r.get("latency_ms") or {}
        base_lat = base.get("latency_ms") or {}
        line += [fmt_ms(lat.get(rt)) + (fmt_rel(lat.get(rt), base_lat.get(rt)) if rel else "") for rt in rts]
        cells.append(line)
    return headers, cells


def rich_table(rows: list[Row], title: str = "Comparison") -> Any:
    from rich.table import Table

    headers, cells = comparison(rows)
    t = Table(title=title, title_justify="left")
    for h in headers:
        t.add_column(h, justify="left" if h in ("model", "how") else "right")
    for line in cells:
        t.add_row(*line)
    return t
