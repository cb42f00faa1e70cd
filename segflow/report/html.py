"""The report page: one self-contained HTML document (inline CSS, inline SVG / data-URI images, no script, no
external URL), and the small building blocks the sections use (tables, figures, "not available" notes)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2430;
  margin:0;background:#f5f6f8}
header{background:#1d3557;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}
nav{padding:8px 28px;background:#e9edf3;font-size:13px}
nav a{margin-right:14px;color:#1d3557;text-decoration:none}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;margin:18px 0;padding:14px 20px}
section h2{margin:0 0 6px;font-size:18px;color:#1d3557}
p.how{color:#4a5568;margin:0 0 10px;font-size:13px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #e3e7ee;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.na{background:#fff8e6;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0}
.figure{margin:8px 0;overflow-x:auto}
.figure svg,.figure img{max-width:100%;height:auto}
.muted{color:#6b7280;font-size:12px}
.bad{color:#b42318;font-weight:600}.good{color:#18794e;font-weight:600}.warn{color:#b54708;font-weight:600}
footer{color:#6b7280;font-size:12px;padding:0 28px 24px}
"""


@dataclass
class Section:
    """One section of the report: ``body`` is HTML; ``available`` False when it holds only a reason."""

    key: str
    title: str
    how: str
    body: str
    available: bool = True


class Unavailable(Exception):  # noqa: N818 - a section's outcome, not an error of the run
    """Raised by a section that has nothing to show; the message is the reason the reader sees."""


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value, digits: int = 3) -> str:
    """A number for a table: thousands separators for integers, ``digits`` significant decimals otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return esc(value)


def table(headers: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[bool] | None = None) -> str:
    """An HTML table; cells are escaped (numbers formatted with :func:`fmt`) unless they are :class:`Raw`."""
    numeric = numeric or [False] * len(headers)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value, is_num in zip(row, numeric, strict=False):
            text = value.html if isinstance(value, Raw) else (fmt(value) if is_num else esc(value))
            cells.append(f'<td class="num">{text}</td>' if is_num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True)
class Raw:
    """Trusted HTML for a table cell."""

    html: str


def figure(svg_or_img: str, caption: str = "") -> str:
    cap = f'<div class="muted">{esc(caption)}</div>' if caption else ""
    return f'<div class="figure">{svg_or_img}{cap}</div>'


def not_available(reason: str) -> str:
    return f'<div class="na"><strong>Not available:</strong> {esc(reason)}</div>'


def page(title: str, subtitle: str, sections: list[Section], footer: str) -> str:
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        state = "available" if s.available else "not-available"
        parts.append(f'<section id="{esc(s.key)}" data-section="{esc(s.key)}" data-state="{state}">'
                     f"<h2>{esc(s.title)}</h2><p class=\"how\">{esc(s.how)}</p>{s.body}</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>"
            f"<main>{''.join(parts)}</main><footer>{esc(footer)}</footer></body></html>\n")
