"""Charts as inline SVG, drawn on the server (no chart library in the browser).

Every text is escaped; every bar that stands for complaints may carry a link to the list
of them (the drill-down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup, escape

from tousu_analytics.console.timeline import CaseTimeline

GREEN, RED, AMBER, BLUE, GREY = "#2e8b57", "#c0392b", "#d68910", "#2f6fad", "#9aa5b1"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    href: str | None = None


def _svg(width: int, height: int, body: str, title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def bar_chart(bars: Sequence[Bar], title: str, width: int = 560) -> Markup:
    """Horizontal bars, largest first as given; a bar with ``href`` is a drill-down link."""
    row, label_w = 26, 150
    height = max(row * len(bars) + 8, 30)
    top = max((bar.value for bar in bars), default=0) or 1
    parts = []
    for i, bar in enumerate(bars):
        y = 4 + i * row
        w = (width - label_w - 60) * bar.value / top
        rect = (
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{BLUE}" '
            f'rx="2"><title>{escape(bar.label)}: {bar.value:g}</title></rect>'
        )
        if bar.href:
            rect = f'<a href="{escape(bar.href)}" class="drill">{rect}</a>'
        parts.append(
            f'<text x="{label_w - 6}" y="{y + row / 2}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(bar.label)}</text>{rect}'
            f'<text x="{label_w + w + 6:.1f}" y="{y + row / 2}" '
            f'dominant-baseline="middle" class="n">{bar.value:g}</text>'
        )
    if not bars:
        parts.append(f'<text x="8" y="20">{escape("—")}</text>')
    return _svg(width, height, "".join(parts), title)


def series_chart(
    days: Sequence[tuple[date, int]],
    bands: dict[date, tuple[float, float]],
    title: str,
    width: int = 560,
    height: int = 180,
) -> Markup:
    """Daily counts as bars; on the days the detector judged, the expected count and the
    upper prediction bound drawn as a band behind them (red bar: above the bound)."""
    if not days:
        return _svg(width, 30, '<text x="8" y="20">—</text>', title)
    pad, bottom = 30, 20
    top = max([c for _, c in days] + [u for _, u in bands.values()] + [1])
    scale = (height - bottom - 10) / top
    step = (width - pad) / len(days)
    parts = [
        f'<line x1="{pad}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        f'stroke="{GREY}"/>'
    ]
    for i, (day, count) in enumerate(days):
        x = pad + i * step
        band = bands.get(day)
        if band:
            expected, upper = band
            y_up, y_exp = height - bottom - upper * scale, height - bottom - expected * scale
            parts.append(
                f'<rect class="band" x="{x:.1f}" y="{y_up:.1f}" width="{step:.1f}" '
                f'height="{max(y_exp - y_up, 1):.1f}" fill="{AMBER}" opacity="0.3"/>'
                f'<line x1="{x:.1f}" x2="{x + step:.1f}" y1="{y_exp:.1f}" y2="{y_exp:.1f}" '
                f'stroke="{AMBER}" stroke-width="2"/>'
            )
        over = band is not None and count > band[1]
        h = count * scale
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - bottom - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{RED if over else BLUE}">'
            f"<title>{day.isoformat()}: {count}</title></rect>"
        )
        if i % 7 == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 5}" class="axis">{day.strftime("%m-%d")}</text>'
            )
    parts.append(f'<text x="2" y="14" class="axis">{top:g}</text>')
    return _svg(width, height, "".join(parts), title)


def hours_label(hours: float) -> str:
    return f"{hours:.0f} h" if abs(hours - round(hours)) < 0.05 else f"{hours:.1f} h"


def milestone_chart(case: CaseTimeline, labels: dict[str, str], width: int = 900) -> Markup:
    """Each milestone a lane: the clock's run as a bar (green met in time, red breached),
    its deadline as a tick, its pauses shaded; the axis in hours since the complaint."""
    lane, left, axis = 30, 140, 24
    height = lane * len(case.milestones) + axis + 8
    origin, end = case.origin, case.end
    span = max((end - origin).total_seconds(), 3600.0)

    def x(at: datetime) -> float:
        return left + (width - left - 12) * (at - origin).total_seconds() / span

    parts = []
    for i, bar in enumerate(case.milestones):
        y = 4 + i * lane
        stop = bar.ended_at or end
        colour = {"met": GREEN, "breached": RED, "cancelled": GREY}.get(bar.outcome, BLUE)
        parts.append(
            f'<text x="{left - 6}" y="{y + lane / 2 - 2}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(labels.get(bar.milestone, bar.milestone))}</text>'
            f'<rect class="run {bar.outcome}" x="{x(bar.started_at):.1f}" y="{y + 4}" '
            f'width="{max(x(stop) - x(bar.started_at), 2):.1f}" height="{lane - 14}" '
            f'fill="{colour}" rx="2"><title>{escape(bar.milestone)}: {bar.outcome}</title></rect>'
        )
        for paused, resumed in bar.pauses:
            parts.append(
                f'<rect class="pause" x="{x(paused):.1f}" y="{y + 2}" '
                f'width="{max(x(resumed or stop) - x(paused), 2):.1f}" height="{lane - 10}" '
                f'fill="url(#hatch)" stroke="{GREY}"/>'
            )
        if bar.due_at is not None:
            parts.append(
                f'<line class="target" x1="{x(bar.due_at):.1f}" x2="{x(bar.due_at):.1f}" '
                f'y1="{y}" y2="{y + lane - 6}" stroke="#222" stroke-width="2">'
                f"<title>{escape(bar.due_at.isoformat())}</title></line>"
            )
    base = height - axis
    ticks = sorted({0.0, *(case.offset_hours(e["at"]) for e in case.events)})
    shown: list[float] = []
    for hours in ticks:
        if shown and (hours - shown[-1]) * (width - left) / (span / 3600) < 34:
            continue
        shown.append(hours)
        tx = left + (width - left - 12) * hours * 3600 / span
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{base}" y2="{base + 4}" stroke="{GREY}"/>'
            f'<text x="{tx:.1f}" y="{base + 16}" text-anchor="middle" class="axis">'
            f"{hours_label(hours)}</text>"
        )
    defs = (
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef1f4"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{GREY}" stroke-width="2"/></pattern></defs>'
    )
    body = defs + f'<line x1="{left}" x2="{width}" y1="{base}" y2="{base}" stroke="{GREY}"/>'
    return _svg(width, height, body + "".join(parts), "SLA milestones")
