"""A bar chart of meldingen and matches per month, as SVG drawn on the server: no
JavaScript and nothing from elsewhere. Free of I/O.

A suppressed count (below 5, as in `stats`) is drawn as no bar with "<5" above it, so
the picture shows no more than the table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from services.portal.participation import Month
from shared.stats_report import SMALL, suppress

WIDTH = 720
HEIGHT = 260
LEFT = 40
BOTTOM = 40
TOP = 20
BAR_COLOURS = ("#1f5f8b", "#c25e00")  # meldingen, matches (contrast with white > 4.5)
MONTH_NAMES = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")


def _shown(value: int) -> int:
    return value if value >= SMALL else 0


def monthly_svg(months: Sequence[Month], *, title: str) -> str:
    """The chart as an inline <svg> element with a text alternative."""
    peak = max([_shown(m.meldingen) for m in months] + [_shown(m.matches) for m in months] + [1])
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - 10) / max(len(months), 1)
    bar = slot * 0.35
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="grafiek-titel">',
        f'<title id="grafiek-titel">{escape(title)}</title>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - 10}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#333" stroke-width="1"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" '
        f'fill="#333">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{HEIGHT - BOTTOM}" text-anchor="end" font-size="11" '
        'fill="#333">0</text>',
    ]
    for i, m in enumerate(months):
        x0 = LEFT + i * slot + slot * 0.12
        for j, value in enumerate((m.meldingen, m.matches)):
            x = x0 + j * bar
            shown = _shown(value)
            h = plot_h * shown / peak
            y = HEIGHT - BOTTOM - h
            if shown:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                    f'fill="{BAR_COLOURS[j]}"/>'
                )
            label = suppress(value)
            parts.append(
                f'<text x="{x + bar / 2 - 1:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'font-size="9" fill="#333">{escape(label)}</text>'
            )
        parts.append(
            f'<text x="{x0 + bar:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" '
            f'font-size="10" fill="#333">{MONTH_NAMES[m.month.month - 1]}</text>'
        )
        if m.month.month == 1 or i == 0:
            parts.append(
                f'<text x="{x0 + bar:.1f}" y="{HEIGHT - BOTTOM + 27}" text-anchor="middle" '
                f'font-size="10" fill="#333">{m.month.year}</text>'
            )
    for j, name in enumerate(("Meldingen", "Matches")):
        lx = LEFT + 10 + j * 120
        parts.append(
            f'<rect x="{lx}" y="2" width="10" height="10" fill="{BAR_COLOURS[j]}"/>'
            f'<text x="{lx + 14}" y="11" font-size="11" fill="#333">{name}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
