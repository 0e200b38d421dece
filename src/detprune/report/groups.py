"""Render coupling groups for people: what is coupled, what is prunable, and why the rest is pinned."""

from __future__ import annotations

from rich.table import Table

from detprune.graph.groups import Group


def groups_table(groups: list[Group], show_pinned: bool = True, max_modules: int = 4) -> Table:
    table = Table(title="Coupling groups", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("prunable / channels", justify="right")
    table.add_column("layers", justify="right")
    table.add_column("member modules")
    table.add_column("pinned because")
    for g in groups:
        if not show_pinned and g.prunable == 0:
            continue
        modules = list(dict.fromkeys(m.slot.module_path or "<model>" for m in g.members))
        shown = ", ".join(modules[:max_modules]) + (f" … (+{len(modules) - max_modules})" if len(modules) > max_modules else "")
        reasons = "; ".join(f"{n}× {r}" for r, n in g.reasons().items())
        if g.inexact:
            reasons = (reasons + "; " if reasons else "") + "approximate: " + "; ".join(g.inexact)
        table.add_row(str(g.index), f"{g.prunable} / {g.size}", str(len(modules)), shown, reasons or "-")
    return table


def groups_summary(groups: list[Group]) -> str:
    prunable = sum(g.prunable for g in groups)
    total = sum(g.size for g in groups)
    return (f"{len(groups)} groups, {sum(1 for g in groups if g.prunable)} prunable; "
            f"{prunable} of {total} channel classes prunable")
