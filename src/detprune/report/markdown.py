"""Markdown report: the same sections as the HTML page, figures linked as files of the run folder."""

from __future__ import annotations

from typing import Any

from detprune.report.content import Figure, Section, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _numeric(t: Table, col: int) -> bool:
    """Right-align columns whose cells start with a digit (or are n/a)."""
    cells = [row[col] for row in t.rows if col < len(row) and row[col]]
    return bool(cells) and all(c[0].isdigit() or c.startswith(("n/a", "-")) for c in cells)


def _table(t: Table) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in t.headers) + " |",
             "|" + "|".join("--:" if _numeric(t, i) else ":--" for i in range(len(t.headers))) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    text = "\n".join(lines)
    return f"<details><summary>{t.collapsed}</summary>\n\n{text}\n\n</details>" if t.collapsed else text


def _block(b: Any, paths: dict[str, str]) -> str:
    if isinstance(b, str):
        return b
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return f"![{b.alt}]({paths[b.stem]})" if b.stem in paths else ""
    if isinstance(b, tuple) and b[0] == "pre":
        return "```yaml\n" + b[1].rstrip() + "\n```"
    raise TypeError(f"unknown report block {b!r}")


def render_markdown(title: str, sections: list[Section], paths: dict[str, str]) -> str:
    """``paths``: figure stem -> path relative to the report file."""
    parts = [f"# {title}"]
    for s in sections:
        parts.append(f"## {s.title}")
        parts += [text for text in (_block(b, paths) for b in s.blocks) if text]
    return "\n\n".join(parts) + "\n"
