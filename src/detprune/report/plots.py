"""Report figures as PNG bytes (matplotlib, headless ``Agg``): embedded in HTML, saved for Markdown.

* ``map_vs_macs``: accuracy against compute, one point per model - the trade-off a pruning run buys.
* ``kept_channels``: per coupling group, the fraction of channels each variant kept.
* ``staircase``: measured latency against a layer's channel count (steps of the kernels' tiling).
* ``sensitivity``: metric after pruning each group alone, per ratio.
* ``iterative_<criterion>``: mAP after pruning / fine-tuning and MACs per step of iterative pruning.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

Row = dict[str, Any]
MAX_SERIES = 8  # staircase series drawn (a latency LUT may hold one per layer)
_COLORS = plt.get_cmap("tab10").colors


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def map_vs_macs(rows: list[Row], metric: str = "map50") -> bytes | None:
    pts = [(r["name"], r.get("macs"), r.get(metric)) for r in rows]
    pts = [(n, m, a) for n, m, a in pts if m is not None and a is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, macs, acc) in enumerate(pts):
        ax.scatter(macs / 1e6, acc, s=70, color=_COLORS[i % 10], marker="*" if i == 0 else "o", zorder=3, label=name)
        ax.annotate(name, (macs / 1e6, acc), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set_xlabel("MMACs (batch 1)")
    ax.set_ylabel({"map50": "mAP50", "map": "mAP50-95"}.get(metric, metric))
    ax.set_title(f"{'mAP50' if metric == 'map50' else metric} vs compute")
    ax.grid(alpha=0.3)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    return _png(fig)


def kept_channels(rows: list[Row]) -> bytes | None:
    variants = [r for r in rows if r.get("groups")]
    if not variants:
        return None
    indices = sorted({g["index"] for r in variants for g in r["groups"]})
    pos = {g: i for i, g in enumerate(indices)}
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.22 * len(indices) * max(1, len(variants) / 2) + 2), 4.2))
    for k, r in enumerate(variants):
        xs = [pos[g["index"]] + (k - (len(variants) - 1) / 2) * width for g in r["groups"]]
        ys = [g["after"] / g["before"] if g["before"] else 1.0 for g in r["groups"]]
        ax.bar(xs, ys, width=width, color=_COLORS[(k + 1) % 10], label=r["name"])
    ax.set_xticks(range(len(indices)))
    ax.set_xticklabels([str(i) for i in indices], fontsize=7, rotation=90)
    ax.set_xlabel("coupling group")
    ax.set_ylabel("kept / original channels")
    ax.set_ylim(0, 1.05)
    ax.set_title("Channels kept per coupling group")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def staircase(data: dict[str, Any]) -> bytes | None:
    series = sorted(data.get("series") or [], key=lambda s: -len(s["channels"]))[:MAX_SERIES]
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, s in enumerate(series):
        ax.step(s["channels"], s["latency_ms"], where="post", color=_COLORS[i % 10], label=s.get("label") or f"series {i}")
        ax.plot(s["channels"], s["latency_ms"], ".", color=_COLORS[i % 10], markersize=3)
        for c in s.get("chosen") or []:
            ax.axvline(c, color=_COLORS[i % 10], linestyle=":", alpha=0.7)
        if s.get("cluster") and len(series) == 1:
            for c in range(s["cluster"], max(s["channels"]) + 1, s["cluster"]):
                ax.axvline(c, color="0.7", linestyle=":", linewidth=0.8)
    ax.set_xlabel("output channels")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency staircase" + (f" ({data['runtime']})" if data.get("runtime") else ""))
    ax.grid(alpha=0.3)
    if len(series) > 1 or series[0].get("label"):
        ax.legend(fontsize=8)
    return _png(fig)


def sensitivity(data: dict[str, Any]) -> bytes | None:
    groups = data.get("groups") or []
    if not groups:
        return None
    ratios = data["ratios"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, g in enumerate(groups):
        ax.plot(ratios, g["values"], marker="o", color=_COLORS[i % 10] if i < 10 else "0.6",
                linewidth=1.2, label=f"group {g['index']}" if i < 10 else None)
    if data.get("base") is not None:
        ax.axhline(data["base"], color="k", linestyle="--", linewidth=1, label="unpruned")
    ax.set_xlabel("ratio of the group's channels removed")
    ax.set_ylabel(data.get("metric", "metric"))
    ax.set_title(f"Sensitivity ({data.get('criterion', '')}, each group pruned alone)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def iterative(name: str, data: dict[str, Any]) -> bytes:
    """mAP after pruning / after fine-tuning and MACs per step of one criterion's iterative run."""
    from detprune.schedule.iterative import IterativeResult
    from detprune.schedule.plots import iterative_figure

    return _png(iterative_figure(IterativeResult.from_dict(data), title=f"iterative pruning: {name}"))


def all_plots(metrics: dict[str, Any]) -> dict[str, bytes]:
    """Every figure the run's data allows, keyed by file stem."""
    rows = metrics.get("rows") or []
    out = {
        "map_vs_macs": map_vs_macs(rows) if len(rows) > 1 else None,
        "kept_channels": kept_channels(rows),
        "staircase": staircase(metrics["staircase"]) if metrics.get("staircase") else None,
        "sensitivity": sensitivity(metrics["sensitivity"]) if metrics.get("sensitivity") else None,
        **{f"iterative_{name}": iterative(name, data) for name, data in (metrics.get("iterative") or {}).items()},
    }
    return {k: v for k, v in out.items() if v is not None}
