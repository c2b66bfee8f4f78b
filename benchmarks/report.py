"""Figures as plain data (JSON-ready) and their rendering as Markdown tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# (key in each row, column header, format); a format is a str.format pattern applied to numbers.
Column = tuple[str, str, str]


def figure(title: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]],
           summary: dict[str, Any] | None = None, notes: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "title": title,
        "columns": [list(c) for c in columns],
        "rows": list(rows),
        "summary": dict(summary or {}),
        "notes": list(notes),
    }


def cell(value: Any, fmt: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt.format(value)
    return str(value)


def render_markdown(name: str, fig: dict[str, Any]) -> str:
    columns = fig["columns"]
    lines = [f"### {fig['title']}", ""]
    if fig.get("error"):
        return "\n".join([*lines, f"failed: {fig['error']}"])
    lines.append("| " + " | ".join(header for _, header, _ in columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in fig["rows"]:
        lines.append("| " + " | ".join(cell(row.get(key), fmt) for key, _, fmt in columns) + " |")
    for note in fig.get("notes", []):
        lines.append("")
        lines.append(f"{note}")
    return "\n".join(lines)


def verdict(speedup: float, threshold: float = 0.03) -> str:
    """The usual recommendation from a measured speed ratio (option / default)."""
    if not math.isfinite(speedup):
        return "not measured"
    if speedup >= 1 + threshold:
        return "use it"
    if speedup <= 1 - threshold:
        return "avoid"
    return "no measurable gain: keep the default"

