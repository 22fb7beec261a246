"""The one report writer of every study: markdown, a self-contained HTML page, figures, JSON.

`write_report` writes a report folder: the figures as PNGs, the markdown text (which links them
as ``![...](name.png)``), the same text as one HTML page with the figures embedded (rendered by
markdown-it-py, CommonMark with tables), and strict JSON data (NaN and infinities as null).
Each file is written whole or not at all (`agents.checkpoint.atomic_write_text`), so a report
interrupted half-way never leaves a torn file.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
    "padding:3px 6px;font-size:90%}img{max-width:100%}"
)


def write_report(
    folder: str | Path,
    *,
    markdown: tuple[str, str],
    figures: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    html_page: bool = True,
    dpi: int = 110,
) -> dict[str, Path]:
    """Writes a report into ``folder`` (created if needed).

    Args:
        folder: The report folder.
        markdown: ``(file name, text)``, e.g. ``("report.md", text)``.
        figures: ``{name: matplotlib Figure}``, saved as ``name.png``.
        data: ``{file name: JSON-able object}``; NaN, infinities and numpy scalars are made
            strict JSON (`json_safe`).
        html_page: Also write the markdown as HTML (same name, ``.html``), figures embedded.
        dpi: Resolution of the PNGs.

    Returns:
        ``{"report": markdown file, "html": page, <data file stem>: path,
        "figure_<name>": png}``.
    """
    from agents.checkpoint import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, figure in (figures or {}).items():
        paths[f"figure_{name}"] = folder / f"{name}.png"
        figure.savefig(paths[f"figure_{name}"], dpi=dpi)
    name, text = markdown
    paths["report"] = folder / name
    atomic_write_text(paths["report"], text)
    if html_page:
        images = {p.name: p.read_bytes() for key, p in paths.items() if key.startswith("figure_")}
        paths["html"] = paths["report"].with_suffix(".html")
        atomic_write_text(paths["html"], markdown_html(text, images))
    for file_name, value in (data or {}).items():
        path = folder / file_name
        paths[Path(file_name).stem] = path
        atomic_write_text(path, json.dumps(json_safe(value), indent=2, sort_keys=True) + "\n")
    return paths


def markdown_html(text: str, images: dict[str, bytes] | None = None) -> str:
    """A self-contained HTML page of markdown ``text`` (CommonMark and tables, rendered by
    markdown-it-py; raw HTML in the text is escaped). ``images`` maps an image file name to its
    PNG bytes, embedded as a data URI; an image not in it stays a link by name. The title is
    the first level-1 heading."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(text)
    for token in tokens:
        for child in token.children or ():
            source = child.attrGet("src") if child.type == "image" else None
            if source in (images or {}):
                encoded = base64.b64encode(images[source]).decode("ascii")
                child.attrSet("src", "data:image/png;base64," + encoded)
    body = parser.renderer.render(tokens, parser.options, {})
    title = next((m.group(1) for m in re.finditer(r"^# (.*)$", text, re.M)), "report")
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n"
    )


def json_safe(value: Any) -> Any:
    """NaN / inf -> None, numpy scalars and arrays -> Python, tuples -> lists (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
