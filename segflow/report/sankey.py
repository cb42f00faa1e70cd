"""A two-column Sankey diagram as hand-written SVG: customers flowing from last week's segments (left) to this
week's (right). Band widths are proportional to customers; every band has a tooltip (<title>)."""

from __future__ import annotations

from html import escape

NODE_WIDTH = 14
GAP = 12
CHAR_WIDTH = 7.0  # px per character of a 12px label (generous, so labels are never clipped)


def _order(nodes: set[str], last: str) -> list[str]:
    return sorted(n for n in nodes if n != last) + ([last] if last in nodes else [])


def sankey_svg(flows: list[tuple[str, str, int]], left_labels: dict[str, str], right_labels: dict[str, str],
               colors: dict[str, str], *, new: str = "(new)", gone: str = "(gone)", width: int = 960) -> str:
    """``flows``: (source node, target node, customers) with customers > 0. ``new`` is the source node of
    customers not segmented last week, ``gone`` the target node of customers not segmented this week."""
    flows = [(s, t, int(n)) for s, t, n in flows if n > 0]
    if not flows:
        raise ValueError("no flow to draw")
    left = _order({s for s, _, _ in flows}, new)
    right = _order({t for _, t, _ in flows}, gone)
    total = sum(n for _, _, n in flows)
    height = max(320, 46 * max(len(left), len(right)))
    scale = min((height - GAP * (len(side) - 1)) / total for side in (left, right))

    def stack(nodes: list[str], totals: dict[str, int]) -> dict[str, float]:
        y, out = 0.0, {}
        for node in nodes:
            out[node] = y
            y += totals[node] * scale + GAP
        return out

    out_tot = {n: sum(c for s, _, c in flows if s == n) for n in left}
    in_tot = {n: sum(c for _, t, c in flows if t == n) for n in right}
    ly, ry = stack(left, out_tot), stack(right, in_tot)
    label_of = {n: f"{left_labels.get(n, n)} ({out_tot[n]:,})" for n in left}
    label_in = {n: f"{right_labels.get(n, n)} ({in_tot[n]:,})" for n in right}
    pad = 10 + CHAR_WIDTH * max(len(t) for t in (*label_of.values(), *label_in.values()))
    width = max(width, int(2 * pad + 300))
    x0, x1 = pad, width - pad - NODE_WIDTH
    parts = []
    l_off = dict(ly)
    r_off = dict(ry)
    for source in left:
        for target in right:
            customers = sum(c for s, t, c in flows if s == source and t == target)
            if not customers:
                continue
            h = customers * scale
            ya, yb = l_off[source], r_off[target]
            l_off[source] += h
            r_off[target] += h
            xa, xb, xm = x0 + NODE_WIDTH, x1, (x0 + NODE_WIDTH + x1) / 2
            color = colors.get(source, "#9aa5b1")
            tip = (f"{left_labels.get(source, source)} → {right_labels.get(target, target)}: {customers:,} customers "
                   f"({customers / out_tot[source]:.0%} of the source)")
            parts.append(
                f'<path class="flow" d="M{xa:.1f},{ya:.1f} C{xm:.1f},{ya:.1f} {xm:.1f},{yb:.1f} {xb:.1f},{yb:.1f} '
                f'L{xb:.1f},{yb + h:.1f} C{xm:.1f},{yb + h:.1f} {xm:.1f},{ya + h:.1f} {xa:.1f},{ya + h:.1f} Z" '
                f'fill="{color}" fill-opacity="0.38" stroke="{color}" stroke-opacity="0.5" stroke-width="0.5">'
                f"<title>{escape(tip)}</title></path>")
    for nodes, ys, totals, x, labels, anchor, tx in (
            (left, ly, out_tot, x0, label_of, "end", x0 - 6),
            (right, ry, in_tot, x1, label_in, "start", x1 + NODE_WIDTH + 6)):
        for node in nodes:
            h = max(totals[node] * scale, 1.0)
            color = colors.get(node, "#9aa5b1")
            label = labels[node]
            parts.append(f'<rect class="node" x="{x}" y="{ys[node]:.1f}" width="{NODE_WIDTH}" height="{h:.1f}" '
                         f'fill="{color}"><title>{escape(label)}</title></rect>'
                         f'<text x="{tx}" y="{ys[node] + h / 2:.1f}" text-anchor="{anchor}" dominant-baseline="middle" '
                         f'font-size="12">{escape(label)}</text>')
    headers = (f'<text x="{x0 + NODE_WIDTH}" y="-8" text-anchor="end" font-size="12" font-weight="bold">last week</text>'
               f'<text x="{x1}" y="-8" font-size="12" font-weight="bold">this week</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="segment flow" width="{width}" '
            f'height="{height + 30}" viewBox="0 -22 {width} {height + 30}" '
            f'style="font-family:system-ui,sans-serif">{headers}{"".join(parts)}</svg>')
