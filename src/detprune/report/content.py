"""What a run report says, independent of the output format.

:func:`build_sections` turns a run's ``metrics.json`` into titled sections of paragraphs,
tables, figures and preformatted text; :mod:`.html` and :mod:`.markdown` only lay them out,
so the two reports always carry the same content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detprune.report.format import comparison, fmt_count, fmt_metric


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    collapsed: str | None = None  # a summary line: render folded (HTML <details>)


@dataclass
class Figure:
    stem: str  # key of the PNG (plots/<stem>.png or samples/<stem>.png)
    alt: str


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)  # str (paragraph) | Table | Figure | ("pre", text)


def _meta(m: dict[str, Any]) -> str:
    parts = [f"command `{m.get('command', '?')}`", f"model `{m.get('model', '?')}`"]
    if m.get("data"):
        parts.append(f"data `{m['data']}`")
    parts.append(f"input {m.get('img_size', '?')} px")
    if m.get("created"):
        parts.append(f"run {m['created']}")
    if m.get("seconds") is not None:
        parts.append(f"wall time {m['seconds']:.0f} s")
    if m.get("threads"):
        parts.append(f"{m['threads']} torch thread(s)")
    return ", ".join(parts) + "."


def _groups_table(rows: list[dict[str, Any]]) -> Table | None:
    variants = [r for r in rows if r.get("groups")]
    if not variants:
        return None
    by_index: dict[int, dict[str, Any]] = {}
    for r in variants:
        for g in r["groups"]:
            entry = by_index.setdefault(g["index"], {"modules": g.get("modules") or [], "before": g["before"], "after": {}})
            entry["after"][r["name"]] = g["after"]
    headers = ["group", "first layers", "channels"] + [f"kept ({r['name']})" for r in variants]
    lines = []
    for idx in sorted(by_index):
        e = by_index[idx]
        mods = ", ".join(e["modules"][:2]) + (f" (+{len(e['modules']) - 2})" if len(e["modules"]) > 2 else "")
        lines.append([str(idx), mods, str(e["before"])] + [str(e["after"].get(r["name"], "")) for r in variants])
    return Table(headers, lines, collapsed=f"Per-group channel counts ({len(lines)} prunable groups)")


def _iterative_section(name: str, it: dict[str, Any], figures: set[str]) -> Section:
    macs0, params0 = it["baseline_macs"], it["baseline_params"]
    tuned = any(s.get("map_after") is not None for s in it["steps"])
    blocks: list[Any] = [f"`{name}` pruned in {len(it['steps'])} {it.get('schedule', '')} step(s)"
                         + (", each followed by fine-tuning" if tuned else "")
                         + "; mAP50 on the evaluation images right after pruning"
                         + (" and after fine-tuning." if tuned else ".")]
    if f"iterative_{name}" in figures:
        blocks.append(Figure(f"iterative_{name}", f"mAP50 and MACs per step of {name}"))
    ckpts = it.get("checkpoints") or []
    lines = [["0", "100.0", "100.0", fmt_metric(it.get("baseline_map")), fmt_metric(it.get("baseline_map")), ""]]
    lines += [[str(s["step"]), f"{100 * s['macs'] / macs0:.1f}", f"{100 * s['params'] / params0:.1f}",
               fmt_metric(s.get("map_before")), fmt_metric(s.get("map_after")), ckpts[i] if i < len(ckpts) else ""]
              for i, s in enumerate(it["steps"])]
    blocks.append(Table(["step", "MACs %", "params %", "mAP50 pruned", "mAP50 fine-tuned", "checkpoint"], lines))
    if it.get("stopped_early"):
        blocks.append(f"Stopped early: {it.get('reason')}; the model of step {it.get('kept_step')} is kept.")
    return Section(f"Iterative pruning: {name}", blocks)


def build_sections(m: dict[str, Any], figures: set[str], config_text: str | None) -> tuple[str, list[Section]]:
    """``(title, sections)`` of the report of one run; a section only where the run has its data."""
    rows = m.get("rows") or []
    title = m.get("title") or f"detprune {m.get('command', 'run')}: {m.get('name', '')}".strip()
    out = [Section("Run", [_meta(m)])]
    if rows:
        out.append(_comparison_section(m, rows))
    if "map_vs_macs" in figures:
        out.append(Section("Accuracy vs compute", [Figure("map_vs_macs", "mAP50 against MACs, one point per model")]))
    groups = _groups_table(rows)
    if "kept_channels" in figures or groups:
        blocks = [Figure("kept_channels", "fraction of channels kept in each coupling group")] if "kept_channels" in figures else []
        out.append(Section("Channels kept per coupling group", blocks + ([groups] if groups else [])))
    if "detections" in figures:
        out.append(Section("Sample detections", [
            "Validation images: ground truth, then each model's detections with score >= "
            f"{(m.get('eval') or {}).get('score_thres', 0.25)}.", Figure("detections", "detections before and after pruning")]))
    out.append(_staircase_section(m.get("staircase"), figures))
    if m.get("sensitivity"):
        out.append(_sensitivity_section(m["sensitivity"], figures))
    for name, it in (m.get("iterative") or {}).items():
        out.append(_iterative_section(name, it, figures))
    notes = _notes(m, rows)
    if notes:
        out.append(Section("Notes and files", notes))
    if config_text:
        out.append(Section("Resolved configuration", [
            "Re-run with `detprune run config.yaml` from this folder's `config.yaml`.", ("pre", config_text)]))
    return title, out


def _comparison_section(m: dict[str, Any], rows: list[dict[str, Any]]) -> Section:
    """The before / after table, with how accuracy, MACs and latency were measured and the target."""
    headers, cells = comparison(rows)
    blocks: list[Any] = [Table(headers, cells)]
    ev = m.get("eval") or {}
    if ev:
        blocks.append(f"Accuracy on {ev.get('images', '?')} images of split `{ev.get('split', '?')}`; F1 at score "
                      f">= {ev.get('score_thres', 0.25)}. MACs of one batch-1 forward at {m.get('img_size')} px; "
                      "latency is the fastest batch-1 time on this machine, all models timed side by side in "
                      "interleaved rounds. Percentages are relative to the first row.")
    if m.get("target"):
        t = m["target"]
        how = (f"one local ratio ({t['ratio']:.3f}) found by bisection, shared by every criterion" if "ratio" in t
               else "each criterion searched its own removal with its own scores; `how` shows the fraction removed")
        blocks.append(f"Target `{t['text']}`: {t['metric']} goal {fmt_count(t['goal'])} "
                      f"(unpruned {fmt_count(t['base'])}); {how}.")
    return Section("Before / after", blocks)


def _staircase_section(s: dict[str, Any] | None, figures: set[str]) -> Section:
    """Cluster pruning's latency staircases, or how to add them (the section is always there)."""
    stair = Section("Latency staircase")
    if not s:
        stair.blocks.append("No staircase data was given (cluster pruning data; add it with "
                            "`detprune report RUN_DIR --staircase FILE`).")
        return stair
    stair.blocks.append(f"Measured latency against channel count ({len(s['series'])} series"
                        + (f", runtime {s['runtime']}" if s.get("runtime") else "") + "); dotted lines mark chosen "
                        "widths (or, for one series, multiples of its cluster size).")
    clusters = [(x.get("label") or f"series {i}", x["cluster"]) for i, x in enumerate(s["series"]) if x.get("cluster")]
    if clusters:
        stair.blocks.append(Table(["layer", "cluster size"], [[lab, str(c)] for lab, c in clusters],
                                  collapsed=f"Cluster sizes ({len(clusters)} layers)"))
    if "staircase" in figures:
        stair.blocks.append(Figure("staircase", "latency against output channels"))
    return stair


def _sensitivity_section(s: dict[str, Any], figures: set[str]) -> Section:
    """Each group pruned alone: the metric per ratio, most sensitive first, and the proposed ratios."""
    blocks: list[Any] = [f"Each group pruned alone with `{s['criterion']}`, evaluated on {s.get('images', '?')} images; "
                         f"unpruned {s['metric']} = {fmt_metric(s.get('base'))}. Most sensitive first."]
    if "sensitivity" in figures:
        blocks.append(Figure("sensitivity", "metric against the ratio removed from one group"))
    headers = ["group", "layers", "channels"] + [f"{s['metric']} @ {r:g}" for r in s["ratios"]] + ["worst drop"]
    lines = [[str(g["index"]), ", ".join(g["modules"][:2]), str(g["size"])] + [fmt_metric(v) for v in g["values"]]
             + [fmt_metric(g.get("drop"))] for g in s["groups"]]
    blocks.append(Table(headers, lines))
    if s.get("proposal"):
        pr = s["proposal"]
        where = f", written to `{pr['file']}` (prune with `--ratios {pr['file']}`)" if pr.get("file") else ""
        blocks.append(f"Proposed per-layer ratios for `{pr['target']}`: predicted {pr['metric']} "
                      f"{fmt_count(pr['predicted'])} against the goal {fmt_count(pr['goal'])} "
                      f"({'met' if pr['met'] else 'not reachable with the tested ratios'}){where}; "
                      f"{len(pr['ratios'])} groups cut, the least sensitive the most.")
    return Section("Sensitivity", blocks)


def _notes(m: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Skipped criteria, runtimes that could not be timed, exports and checkpoints."""
    notes = [f"Criterion `{name}` skipped: {why}." for name, why in (m.get("skipped") or {}).items()]
    notes += [f"Latency on {rt} not measured: {why}." for rt, why in (m.get("latency_errors") or {}).items()]
    notes += [f"Exported `{name}`: " + ", ".join(f"{k} `{v}`" for k, v in files.items()) + "."
              for name, files in (m.get("exports") or {}).items()]
    notes += [f"Checkpoint of `{r['name']}`: `{r['checkpoint']}` (load with `detprune.load`)."
              for r in rows if r.get("checkpoint")]
    return notes
