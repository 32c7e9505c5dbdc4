"""Charts as inline SVG markup, drawn by the server: no script, no style attribute (the CSP allows neither inline);
colours come from classes in console.css."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["latency_bars", "stacked_columns"]

_WIDTH = 720
_HEIGHT = 220
_PAD_LEFT = 44
_PAD_BOTTOM = 26


def _nice_max(value: float) -> float:
    """The axis' top: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def stacked_columns(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """One column per label (a minute), stacked by series (an outcome: its name is the CSS class s-<name>)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = _WIDTH - _PAD_LEFT - 8, _HEIGHT - _PAD_BOTTOM - 8
    step = plot_w / max(len(labels), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>", *_axis(top, plot_h)]
    for i, label in enumerate(labels):
        y = 8.0 + plot_h
        x = _PAD_LEFT + i * step + (step - bar_w) / 2
        for name, values in series:
            if values[i] <= 0:
                continue
            h = plot_h * values[i] / top
            y -= h
            parts.append(f'<rect class="s-{escape(name)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                         f'height="{h:.1f}"><title>{escape(label)} {escape(name)}: {values[i]}</title></rect>')
        if (len(labels) <= 12 or i % max(len(labels) // 6, 1) == 0) and x < _WIDTH - 40:  # no clipped label
            parts.append(f'<text class="tick" x="{x:.1f}" y="{_HEIGHT - 8}">{escape(label)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<li><svg class="key" viewBox="0 0 10 10"><rect class="s-{escape(name)}" width="10" '
                     f'height="10"/></svg>{escape(name)}</li>' for name, _ in series)
    return "".join(parts) + f'<ul class="legend">{legend}</ul>'


def latency_bars(title: str, rows: Sequence[tuple[str, int, int]]) -> str:
    """Horizontal bars per step: p50 over p95 (milliseconds), the values written beside them."""
    row_h = 22
    height = 10 + row_h * max(len(rows), 1)
    name_w = 200
    plot_w = _WIDTH - name_w - 90
    top = _nice_max(max((p95 for _, _, p95 in rows), default=0))
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    if not rows:
        parts.append('<text class="tick" x="10" y="22">no finished steps in the last hour</text>')
    for i, (name, p50, p95) in enumerate(rows):
        y = 6 + i * row_h
        parts.append(f'<text class="tick" x="0" y="{y + 13}">{escape(name)}</text>')
        parts.append(f'<rect class="s-p95" x="{name_w}" y="{y}" width="{plot_w * p95 / top:.1f}" height="16">'
                     f"<title>{escape(name)} p95 {p95} ms</title></rect>")
        parts.append(f'<rect class="s-p50" x="{name_w}" y="{y + 4}" width="{plot_w * p50 / top:.1f}" height="8">'
                     f"<title>{escape(name)} p50 {p50} ms</title></rect>")
        parts.append(f'<text class="tick" x="{name_w + plot_w + 6}" y="{y + 13}">{p50} / {p95} ms</text>')
    parts.append("</svg>")
    legend = ('<ul class="legend"><li><svg class="key" viewBox="0 0 10 10"><rect class="s-p50" width="10" '
              'height="10"/></svg>p50</li><li><svg class="key" viewBox="0 0 10 10"><rect class="s-p95" width="10" '
              'height="10"/></svg>p95</li></ul>')
    return "".join(parts) + legend


def _axis(top: float, plot_h: float) -> list[str]:
    lines = []
    for fraction in (0.0, 0.5, 1.0):
        y = 8 + plot_h * (1 - fraction)
        value = top * fraction
        text = f"{value:.0f}" if value >= 1 or value == 0 else f"{value:.2f}"
        lines.append(f'<line class="grid" x1="{_PAD_LEFT}" x2="{_WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        lines.append(f'<text class="tick" x="4" y="{y + 4:.1f}">{text}</text>')
    return lines
