"""A self-contained HTML report (tables, inline SVG line charts) that the Kubeflow UI renders.

No plotting library: the charts are a few SVG polylines, so the report is one file with no
scripts or external assets (the Kubeflow UI shows HTML artifacts in a sandboxed iframe).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{white-space:pre-wrap;max-width:420px}.better{color:#1a7f37;font-weight:600}
.note{color:#57606a;font-size:12px}tr.real td{font-weight:600;background:#dafbe1}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: Sequence[int] = (),
          real_col: int | None = None) -> str:
    """An HTML table; with `real_col`, rows whose cell there is "yes" (a real difference) are marked `real`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = "text" if i in text_cols else ("num" if isinstance(v, (int, float)) else "")
            cells.append(f'<td class="{cls}">{esc(fmt(v))}</td>')
        mark = ' class="real"' if real_col is not None and row[real_col] == "yes" else ""
        body.append(f"<tr{mark}>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def line_chart(title: str, series: dict[str, Sequence[tuple[float, float]]], width: int = 520,
               height: int = 220) -> str:
    """SVG chart of one or more (x, y) series sharing axes."""
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pad = 40
    colours = ["#0969da", "#cf222e", "#1a7f37", "#8250df"]

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad + (y0 - y) / (y1 - y0) * (height - 2 * pad)

    lines, legend = [], []
    for k, (name, pts) in enumerate(series.items()):
        c = colours[k % len(colours)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        lines.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.8" points="{path}"/>')
        legend.append(f'<text x="{pad + 120 * k}" y="14" fill="{c}" font-size="12">{esc(name)}</text>')
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
        f'<text x="{pad}" y="{height - pad + 16}" font-size="11">{fmt(x0)}</text>'
        f'<text x="{width - pad - 30}" y="{height - pad + 16}" font-size="11">{fmt(x1)}</text>'
        f'<text x="2" y="{height - pad}" font-size="11">{fmt(y0)}</text>'
        f'<text x="2" y="{pad + 4}" font-size="11">{fmt(y1)}</text>'
    )
    return (f"<figure><figcaption>{esc(title)}</figcaption>"
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f"{axes}{''.join(lines)}{''.join(legend)}</svg></figure>")


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{esc(h)}</h2>{content}" for h, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>")
