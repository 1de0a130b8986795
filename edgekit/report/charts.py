"""Inline SVG charts for report.html: plain markup, no script, no external font or stylesheet.

Every string that came from the data goes through `esc` (layer names hold quotes, <, &). Labels are cut to
fit the label column; the full text is kept in a <title> so hovering shows it.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

WIDTH = 860
ROW = 22
LABEL_W = 330  # px for the label column; monospace 12px is ~7.2 px per character
CHAR_W = 7.2


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cut(label: str, width_px: float) -> str:
    keep = max(4, int(width_px / CHAR_W))
    return label if len(label) <= keep else "…" + label[-(keep - 1):]  # the tail of a path is its most specific part


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # printed after the bar (the value formatted, maybe a share)
    cls: str = "b0"  # CSS class that picks the colour (b0..b3 in the page's stylesheet)
    title: str | None = None  # hover text; defaults to the label


def bar_chart(bars: list[Bar], caption: str, unit: str = "ms") -> str:
    """Horizontal bars, one per row, scaled to the largest value."""
    if not bars:
        return f'<p class="empty">{esc(caption)}: nothing recorded.</p>'
    top = max(b.value for b in bars) or 1.0
    plot_w = WIDTH - LABEL_W - 150  # room after the longest bar for its value text
    height = ROW * len(bars) + 28
    rows = []
    for i, b in enumerate(bars):
        y = 8 + i * ROW
        w = max(1.0, plot_w * b.value / top)
        rows.append(
            f'<g class="row"><title>{esc(b.title or b.label)}: {esc(b.text)}</title>'
            f'<text class="lbl" x="{LABEL_W - 8}" y="{y + 14}" text-anchor="end">{esc(_cut(b.label, LABEL_W - 12))}</text>'
            f'<rect class="{esc(b.cls)}" x="{LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" rx="2"/>'
            f'<text class="val" x="{LABEL_W + w + 6:.1f}" y="{y + 14}">{esc(b.text)}</text></g>')
    axis_y = 8 + len(bars) * ROW + 14
    axis = f'<text class="axis" x="{LABEL_W}" y="{axis_y}">0</text>' \
           f'<text class="axis" x="{LABEL_W + plot_w}" y="{axis_y}" text-anchor="end">{top:.3g} {esc(unit)}</text>'
    return (f'<svg class="chart bars" role="img" aria-label="{esc(caption)}" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" style="max-width:{WIDTH}px" preserveAspectRatio="xMinYMin meet">'
            f'<title>{esc(caption)}</title>{"".join(rows)}{axis}</svg>')


def samples_chart(series: list[tuple[str, list[float], str]], caption: str) -> str:
    """One strip of dots per measurement (every timed run), on a shared log-free ms axis starting at 0, with a
    tick at the median: shows noise and outliers that a mean hides."""
    series = [s for s in series if s[1]]
    if not series:
        return f'<p class="empty">{esc(caption)}: no samples.</p>'
    top = max(max(raw) for _, raw, _ in series) * 1.05 or 1.0
    plot_w = WIDTH - LABEL_W - 40
    height = ROW * len(series) + 30
    rows = []
    for i, (label, raw, cls) in enumerate(series):
        y = 8 + i * ROW + ROW / 2
        med = sorted(raw)[len(raw) // 2]
        dots = "".join(f'<circle class="{esc(cls)}" cx="{LABEL_W + plot_w * v / top:.1f}" cy="{y:.1f}" r="3"/>'
                       for v in raw)
        mx = LABEL_W + plot_w * med / top
        rows.append(f'<g class="row"><title>{esc(label)}: {len(raw)} runs, median {med:.3f} ms</title>'
                    f'<text class="lbl" x="{LABEL_W - 8}" y="{y + 4:.1f}" text-anchor="end">{esc(_cut(label, LABEL_W - 12))}</text>'
                    f'<line class="grid" x1="{LABEL_W}" x2="{LABEL_W + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>{dots}'
                    f'<line class="med" x1="{mx:.1f}" x2="{mx:.1f}" y1="{y - 8:.1f}" y2="{y + 8:.1f}"/></g>')
    axis_y = 8 + len(series) * ROW + 16
    axis = f'<text class="axis" x="{LABEL_W}" y="{axis_y}">0</text>' \
           f'<text class="axis" x="{LABEL_W + plot_w}" y="{axis_y}" text-anchor="end">{top:.3g} ms</text>'
    return (f'<svg class="chart samples" role="img" aria-label="{esc(caption)}" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" style="max-width:{WIDTH}px" preserveAspectRatio="xMinYMin meet">'
            f'<title>{esc(caption)}</title>{"".join(rows)}{axis}</svg>')


def share_strip(parts: list[tuple[str, float]], caption: str) -> str:
    """A single 100% stacked strip (e.g. time per module), the few largest named in the legend below it."""
    total = sum(v for _, v in parts) or 1.0
    x, segs, legend = 0.0, [], []
    for i, (label, value) in enumerate(parts):
        w = WIDTH * value / total
        cls = f"s{i % 8}"
        segs.append(f'<rect class="{cls}" x="{x:.1f}" y="0" width="{w:.1f}" height="18"><title>{esc(label)}: '
                    f'{100 * value / total:.1f}%</title></rect>')
        legend.append(f'<span class="key"><i class="{cls}"></i>{esc(label)} {100 * value / total:.1f}%</span>')
        x += w
    return (f'<svg class="chart strip" role="img" aria-label="{esc(caption)}" viewBox="0 0 {WIDTH} 18" width="100%" '
            f'style="max-width:{WIDTH}px" preserveAspectRatio="none"><title>{esc(caption)}</title>{"".join(segs)}</svg>'
            f'<div class="legend">{"".join(legend)}</div>')
