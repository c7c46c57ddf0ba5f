"""Small SVG charts rendered on the server: no script, no build step, nothing from the internet.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what
the picture shows, and the pages print the same numbers in a table next to it, so a screen
reader (or a phone too narrow for the picture) loses nothing. Sizes are attributes, not styles,
so the pages' Content-Security-Policy needs no ``unsafe-inline``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from service.ui.page_language import gettext

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 18, 24
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Point:
    """One labelled value of a series; None is a month without data (a gap in the line)."""

    label: str
    value: float | None


def _uid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _scale(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.12
    return low - pad, high + pad


def line_chart(
    title: str,
    points: Sequence[Point],
    fmt: Callable[[float], str],
    *,
    target: float | None = None,
    lower_is_better: bool = False,
) -> Markup:
    """Draw a line over months with an optional dashed target line."""
    known = [p.value for p in points if p.value is not None]
    chart_id = _uid("chart")
    no_data = gettext("no data")
    described = ", ".join(f"{p.label}: {fmt(p.value) if p.value is not None else no_data}"
                          for p in points)
    better = gettext("lower is better") if lower_is_better else gettext("higher is better")
    desc = f"{described}. " + (gettext("Target %(target)s, %(better)s.")
                               % {"target": fmt(target), "better": better}
                               if target is not None else better[:1].upper() + better[1:] + ".")
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]
    if not known:
        # Formatted in, not added: a str + Markup escapes the str, the markup around the text
        # (and gettext outside the f-string, where `make messages` finds it).
        empty = escape(gettext("no data yet"))
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     f'class="chart-empty">{empty}</text></svg>')
        return Markup("".join(parts))  # noqa: S704 (every text in it went through escape())
    low, high = _scale([*known, *([target] if target is not None else [])])
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(points) - 1, 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(points) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return TOP + inner_h - (v - low) / (high - low) * inner_h

    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" '
                 f'y2="{TOP + inner_h}"/>')
    if target is not None:
        ty = y(target)
        parts.append(f'<line class="target" x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" '
                     f'y2="{ty:.1f}"/>')
        # Left, where the line starts: the latest value is labelled on the right.
        label_y = ty - 4 if ty > TOP + 10 else ty + 11
        target_text = escape(gettext("target %(value)s") % {"value": fmt(target)})
        parts.append(f'<text class="target-label" x="{LEFT + 2}" y="{label_y:.1f}" '
                     f'text-anchor="start">{target_text}</text>')
    segment: list[str] = []
    for i, p in enumerate(points):
        if p.value is None:
            if len(segment) > 1:
                parts.append(f'<polyline class="series" points="{" ".join(segment)}"/>')
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(p.value):.1f}")
    if len(segment) > 1:
        parts.append(f'<polyline class="series" points="{" ".join(segment)}"/>')
    for i, p in enumerate(points):
        anchor = "start" if i == 0 and len(points) > 1 else (
            "end" if i == len(points) - 1 and len(points) > 1 else "middle")
        parts.append(f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - 6}" '
                     f'text-anchor="{anchor}">{escape(p.label)}</text>')
        if p.value is not None:
            parts.append(f'<circle class="dot" cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5"/>')
    last = next((p for p in reversed(points) if p.value is not None), None)
    if last is not None and last.value is not None:
        i = points.index(last)
        parts.append(f'<text class="value" x="{x(i):.1f}" y="{max(y(last.value) - 8, 12):.1f}" '
                     f'text-anchor="{"end" if i else "start"}">{escape(fmt(last.value))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it went through escape())


def bar_chart(
    title: str,
    points: Sequence[Point],
    fmt: Callable[[float], str],
    *,
    maximum: float = 100.0,
    notes: Sequence[str] | None = None,
) -> Markup:
    """Draw one bar per month on a 0..maximum scale, each labelled with its value."""
    chart_id = _uid("chart")
    # Outside the f-string, where `make messages` finds it.
    no_result = gettext("no result")
    described = ", ".join(
        f"{p.label}: {fmt(p.value) if p.value is not None else no_result}"
        + (f" ({notes[i]})" if notes and notes[i] else "")
        for i, p in enumerate(points)
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(described)}.</desc>',
    ]
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / max(len(points), 1)
    bar = min(slot * 0.6, 48)
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" '
                 f'y2="{TOP + inner_h}"/>')
    for i, p in enumerate(points):
        cx = LEFT + slot * i + slot / 2
        parts.append(f'<text class="tick" x="{cx:.1f}" y="{HEIGHT - 6}" '
                     f'text-anchor="middle">{escape(p.label)}</text>')
        if p.value is None:
            continue
        h = max(min(p.value / maximum, 1.0), 0.0) * inner_h
        parts.append(f'<rect class="bar" x="{cx - bar / 2:.1f}" y="{TOP + inner_h - h:.1f}" '
                     f'width="{bar:.1f}" height="{h:.1f}"/>')
        label = fmt(p.value) + (f" · {notes[i]}" if notes and notes[i] else "")
        parts.append(f'<text class="value" x="{cx:.1f}" y="{TOP + inner_h - h - 4:.1f}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text in it went through escape())


def meter(value: float | None, label: str) -> Markup:
    """Draw a 0..100 attainment bar (decorative: the number is printed beside it)."""
    if value is None:
        return Markup("")
    width = max(min(value, 100.0), 0.0)
    level = "good" if value >= 80 else ("fair" if value >= 50 else "poor")
    return Markup(  # noqa: S704 (the only text in it went through escape())
        f'<svg class="meter meter-{level}" viewBox="0 0 100 8" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false"><rect class="meter-track" x="0" y="0" '
        f'width="100" height="8"/><rect class="meter-fill" x="0" y="0" width="{width:.1f}" '
        f'height="8"/><title>{escape(label)}</title></svg>'
    )
