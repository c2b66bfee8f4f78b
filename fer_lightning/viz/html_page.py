"""A run's report as one HTML page: sections of text, tables, code blocks and figures.

Every figure is also written as a PNG file next to the page, for papers and slides. The page embeds
the same PNGs as base64 data (so index.html alone can be mailed or archived), or links the files.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fer_lightning.files import write_bytes, write_text

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2rem; margin-top: 2.5rem; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9rem; }
"""


NUMBER = ' class="number"'


@dataclass(frozen=True)
class ReportFigure:
    filename: str  # the PNG's name in the report folder
    png: bytes
    caption: str = ""


@dataclass
class Section:
    """One part of the page; ``parts`` are HTML fragments (use the helpers below to make them)."""

    anchor: str
    title: str
    parts: list[str | ReportFigure] = field(default_factory=list)


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def bullet_list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def code_block(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def table(header: Sequence[str] | None, rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    """An HTML table (no header row when ``header`` is None); ``numeric`` columns are right-aligned."""
    head = ""
    if header:
        head = "<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in header) + "</tr></thead>"
    body = []
    for row in rows:
        cells = "".join(
            f"<td{NUMBER if i in numeric else ''}>{html.escape(str(cell))}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def _figure_html(figure: ReportFigure, embed: bool) -> str:
    if embed:
        source = "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
    else:
        source = html.escape(figure.filename)
    caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
    alt = html.escape(figure.caption or figure.filename)
    return f'<figure><img src="{source}" alt="{alt}">{caption}</figure>'


def render_page(title: str, subtitle: str, sections: Sequence[Section], embed: bool = True) -> str:
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = []
    for section in sections:
        parts = [_figure_html(p, embed) if isinstance(p, ReportFigure) else p for p in section.parts]
        body.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>{"".join(parts)}</section>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p><nav>{nav}</nav>"
        f"{''.join(body)}</body></html>\n"
    )


def write_report(
    directory: Path, title: str, subtitle: str, sections: Sequence[Section], embed: bool = True
) -> Path:
    """Write every figure as a PNG and the page as ``index.html`` in ``directory``; return the page."""
    directory.mkdir(parents=True, exist_ok=True)
    for section in sections:
        for part in section.parts:
            if isinstance(part, ReportFigure):
                write_bytes(directory / part.filename, part.png)
    page = directory / "index.html"
    write_text(page, render_page(title, subtitle, sections, embed))
    return page
