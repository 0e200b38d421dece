"""Self-contained HTML report: inline CSS, figures embedded as base64 PNG, no external requests.

One file that can be mailed, archived or opened offline and still shows everything.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from detprune.report.content import Figure, Section, Table

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:1.6rem;margin:0 0 8px;color:#0b3d6b}h2{font-size:1.2rem;margin:28px 0 10px;border-bottom:2px solid #e3e7ee;padding-bottom:4px}
p{line-height:1.45;margin:6px 0}code{background:#eef1f5;padding:1px 4px;border-radius:3px;font-size:.92em}
table{border-collapse:collapse;margin:8px 0;font-size:.9rem}th,td{border:1px solid #d9dee6;padding:4px 9px;text-align:right}
th{background:#eef2f7;text-align:center}td.l{text-align:left}
tr:nth-child(even) td{background:#fafbfc}img{max-width:100%;border:1px solid #e3e7ee;margin:6px 0}
pre{background:#0f1720;color:#e6edf3;padding:12px;border-radius:6px;overflow:auto;font-size:.82rem}
details summary{cursor:pointer;color:#0b5cad;margin:6px 0}
"""


def _inline(text: str) -> str:
    """Escape, then render `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _align(cell: str) -> str:
    return "" if cell[:1].isdigit() or cell.startswith(("n/a", "-")) else ' class="l"'


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td{_align(c)}>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if t.collapsed:
        out = f"<details><summary>{html.escape(t.collapsed)}</summary>{out}</details>"
    return out


def _block(b: Any, images: dict[str, bytes]) -> str:
    if isinstance(b, str):
        return f"<p>{_inline(b)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        data = images.get(b.stem)
        if data is None:
            return ""
        return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" alt="{html.escape(b.alt)}">'
    if isinstance(b, tuple) and b[0] == "pre":
        return f"<pre>{html.escape(b[1])}</pre>"
    raise TypeError(f"unknown report block {b!r}")


def render_html(title: str, sections: list[Section], images: dict[str, bytes]) -> str:
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<section><h2>{html.escape(s.title)}</h2>" + "".join(_block(b, images) for b in s.blocks) + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")
