"""PNG plots of iterative pruning runs and sensitivity studies (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detprune.schedule.iterative import IterativeResult
    from detprune.schedule.sensitivity import SensitivityResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_iterative(res: "IterativeResult", path: str | Path) -> Path:
    """mAP right after pruning and after fine-tuning per step (left axis), MACs % (right axis)."""
    return _save(iterative_figure(res), path)


def iterative_figure(res: "IterativeResult", title: str = "iterative pruning") -> Any:
    """The figure of :func:`plot_iterative` (also embedded in run reports)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [0] + [s.step for s in res.steps]
    macs = [100.0] + [100 * s.macs / res.baseline_macs for s in res.steps]
    ax2 = ax.twinx()
    ax2.bar(steps, macs, color="lightgrey", alpha=0.6, width=0.5, label="MACs %")
    ax2.set_ylabel("MACs (% of unpruned)")
    ax2.set_ylim(0, 105)
    if res.baseline_map is not None:
        before = [res.baseline_map] + [s.map_before for s in res.steps]
        after = [res.baseline_map] + [s.map_after for s in res.steps]
        ax.plot(steps, [float("nan") if v is None else v for v in before], "o--", color="tab:red",
                label="mAP after pruning")
        if any(v is not None for v in after[1:]):
            ax.plot(steps, [float("nan") if v is None else v for v in after], "o-", color="tab:blue",
                    label="mAP after fine-tune")
        ax.set_ylabel("mAP")
        ax.legend(loc="lower left")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("step")
    ax.set_xticks(steps)
    ax.set_title(title)
    return fig


def plot_sensitivity(res: "SensitivityResult", path: str | Path, show: int = 12) -> Path:
    """Metric vs ratio, one line per group; the legend names the ``show`` most sensitive groups."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    worst = sorted(res.rows, key=lambda r: min(r.metric.values()))[:show]
    for row in res.rows:
        xs = [0.0] + res.ratios
        ys = [res.baseline] + [row.metric[r] for r in res.ratios]
        named = row in worst
        ax.plot(xs, ys, "o-" if named else "-", lw=1.5 if named else 0.7, alpha=1.0 if named else 0.4,
                label=f"{row.index}: {row.label}" if named else None)
    ax.set_xlabel("ratio of the group's channels removed (group alone)")
    ax.set_ylabel("metric")
    ax.set_title("sensitivity per coupling group")
    ax.legend(fontsize=6, loc="lower left")
    return _save(fig, path)
