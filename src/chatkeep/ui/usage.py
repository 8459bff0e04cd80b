"""The usage page's data and its chart: requests and tokens per day per model.

`usage_rows` is the page's one source of rows: the usage API's per-minute counts
(`usage.report`), summed per UTC day and model; every completion the server answered,
stored or not, as the usage routes count them. `render_usage_chart` is a pure function from rows
to an SVG document fragment: stacked bars per day, one colour per model, every string
escaped, every bar titled (its tooltip), and the table beside it on the page holding the
same figures for screen readers and for copying.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from chatkeep.usage.report import UsageReports

Metric = Literal["requests", "tokens"]
# Okabe & Ito's colour-blind-safe palette (minus black), then greys: one colour per model.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
OTHER_COLOUR = "#8c8c8c"
WIDTH, HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28
_MAX_LABELS = 10


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One model's use on one day (UTC) in one project."""

    day: date
    model: str
    requests: int
    input_tokens: int
    output_tokens: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


async def usage_rows(usage: UsageReports, project: str, since: date, until: date) -> list[UsageRow]:
    """The project's usage per day and model, days `since` to `until` (UTC, inclusive),
    ordered by day then model."""
    start = int(datetime.combine(since, time(), UTC).timestamp())
    end = int(datetime.combine(until + timedelta(days=1), time(), UTC).timestamp())
    return [
        UsageRow(
            day=datetime.fromtimestamp(total.bucket, UTC).date(),
            model=total.model or "",
            requests=total.requests,
            input_tokens=total.input_tokens,
            output_tokens=total.output_tokens,
        )
        for total in await usage.daily_by_model(project, start, end)
    ]


def models_of(rows: Sequence[UsageRow]) -> list[str]:
    """Models by their share of requests, largest first (the legend's and colours' order)."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.model] = totals.get(row.model, 0) + row.requests
    return sorted(totals, key=lambda model: (-totals[model], model))


def colour_of(index: int) -> str:
    return PALETTE[index] if index < len(PALETTE) else OTHER_COLOUR


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis top at or above `value` and its step: 1, 2 or 5 times a power of ten (whole:
    the figures are counts), in four steps or fewer."""
    if value <= 1:
        return 1.0, 1.0
    raw_step = value / 4
    magnitude = max(1, 10 ** math.floor(math.log10(raw_step)))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    return step * math.ceil(value / step), step


def _label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def render_usage_chart(rows: Sequence[UsageRow], metric: Metric, *, title: str) -> str:
    """An `<svg>` of `metric` per day, one stacked bar per day (UTC), gaps as empty days."""
    if not rows:
        return ""
    models = models_of(rows)
    first, last = min(r.day for r in rows), max(r.day for r in rows)
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    values: dict[tuple[date, str], int] = {}
    for row in rows:
        key = (row.day, row.model)
        values[key] = values.get(key, 0) + (row.requests if metric == "requests" else row.tokens)
    top, step = nice_ceiling(max(sum(values.get((d, m), 0) for m in models) for d in days))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / len(days)
    bar = max(1.0, slot * 0.7)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label={quoteattr(title)} xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    ticks = round(top / step)
    for n in range(ticks + 1):
        y = _TOP + plot_h - plot_h * n / ticks
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_label(step * n)}</text>"
        )
    every = max(1, math.ceil(len(days) / _MAX_LABELS))
    for i, day in enumerate(days):
        x = _LEFT + slot * i + (slot - bar) / 2
        y = _TOP + plot_h
        for index, model in enumerate(models):
            value = values.get((day, model), 0)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            tip = f"{day.isoformat()} · {model}: {value:,} {metric}"
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour_of(index)}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0:
            out.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{day.strftime("%m-%d")}</text>'
            )
    out.append("</svg>")
    return "".join(out)
