"""Chart geometry for the HTML report: plain data the SVG templates draw (no drawing library).

Two charts: a horizontal bar chart of one per-group column (one row per group, interval whiskers,
undefined groups marked, counts beside the bars) and a trend of one gated metric over sessions
(x = session time, the gate's bounds drawn). Coordinates are SVG user units (px).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Groups with fewer rows than this are flagged: their rates (and ratios) are unstable.
SMALL_GROUP = 30

_CHAR_PX = 6.6  # average width of a 12 px sans-serif character
_LINE_PX = 14
_ROW_PAD = 8
_MAX_LINE_CHARS = 34
_PLOT_WIDTH = 300
_VALUE_COLUMN = 52
_COUNT_COLUMN = 64


def number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, infinities, booleans and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def short(value: float | None, digits: int = 3) -> str:
    """A value for a chart label: ``digits`` decimals, ``undefined`` for None."""
    if value is None:
        return "undefined"
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}f}"


def label_text(label: Any) -> str:
    return "None" if label is None else str(label)


def group_label_lines(group: Any) -> tuple[str, ...]:
    """A group's label as lines: ``female · 25-60`` on one line when short, else one feature value
    per line, each shortened to fit (the full label goes into the chart's tooltip)."""
    values = [label_text(v) for v in group.values()] if isinstance(group, Mapping) else [label_text(group)]
    joined = " · ".join(values)
    lines = [joined] if len(joined) <= _MAX_LINE_CHARS else values
    return tuple(
        line if len(line) <= _MAX_LINE_CHARS else line[: _MAX_LINE_CHARS - 1] + "…" for line in lines
    )


def group_full_label(group: Any) -> str:
    if isinstance(group, Mapping):
        return ", ".join(f"{k}={label_text(v)}" for k, v in group.items())
    return label_text(group)


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the outermost x ticks stay inside the chart


@dataclass(frozen=True)
class Bar:
    """One group's row in a bar chart."""

    label_lines: tuple[str, ...]
    full_label: str
    count_text: str
    small: bool
    top: float  # the row's top edge
    height: float
    value: float | None  # None: undefined (NaN) for this group
    value_text: str
    bar_x: float  # the bar spans bar_x .. bar_x + bar_width
    bar_width: float
    whisker: tuple[float, float] | None  # interval ends (x), when the row has one
    interval_text: str

    @property
    def middle(self) -> float:
        return self.top + self.height / 2

    @property
    def text_top(self) -> float:
        """The baseline of the first label line, so that the lines sit centred on the row."""
        return self.middle - (len(self.label_lines) - 1) * _LINE_PX / 2 + 4


@dataclass(frozen=True)
class BarChart:
    column: str
    width: float
    height: float
    plot_left: float
    plot_width: float
    plot_top: float
    plot_bottom: float
    zero_x: float
    value_x: float  # where the value column starts
    count_x: float  # where the count column starts
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    undefined: int  # groups with no value

    @property
    def title(self) -> str:
        return self.column.replace("_", " ")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values inside [low, high]: the coarsest 1-2-2.5-5 step that gives at least
    ``count - 1`` of them (at least 2)."""
    if not high > low:
        return [low]
    wanted = max(count - 1, 2)
    magnitude = 10 ** math.floor(math.log10(high - low))
    slack = (high - low) * 1e-9  # absolute, so a far-off range (low / step ~ 1e12) stays inside
    ticks: list[float] = []
    for step in (m * magnitude for m in (5, 2.5, 2, 1, 0.5, 0.25, 0.2, 0.1, 0.05)):
        first = math.ceil((low - slack) / step)
        last = math.floor((high + slack) / step)
        ticks = [
            t
            for t in (round(i * step, 12) for i in range(first, last + 1))
            if low - slack <= t <= high + slack
        ]
        if len(ticks) >= wanted:
            break
    return ticks


def _domain(values: Sequence[float]) -> tuple[float, float]:
    """The axis range: rates in [0, 1] keep the whole unit range, anything else starts at 0."""
    low = min([0.0, *values])
    high = max([0.0, *values])
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    if high == low:
        high = low + 1
    return low, high


def _interval(row: Mapping[str, Any], column: str) -> tuple[float, float] | None:
    ci = row.get("ci")
    if not isinstance(ci, Mapping):
        return None
    pair = ci.get(column)
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    low, high = number(pair[0]), number(pair[1])
    if low is None or high is None:
        return None
    return (min(low, high), max(low, high))


def bar_chart(column: str, rows: Sequence[Mapping[str, Any]]) -> BarChart:
    """The bar chart of one column of a scope's group rows (one bar per row, in row order)."""
    values = [number(row.get(column)) for row in rows]
    intervals = [_interval(row, column) for row in rows]
    extent = [v for v in values if v is not None] + [e for pair in intervals if pair for e in pair]
    low, high = _domain(extent)
    lines = [group_label_lines(row.get("group")) for row in rows]
    longest = max((len(line) for label in lines for line in label), default=4)
    plot_left = 12 + min(max(longest * _CHAR_PX, 60), _MAX_LINE_CHARS * _CHAR_PX)
    plot_top = 8.0

    def x(value: float) -> float:
        return plot_left + (value - low) / (high - low) * _PLOT_WIDTH

    bars: list[Bar] = []
    top = plot_top
    for row, value, interval, label in zip(rows, values, intervals, lines, strict=True):
        height = max(len(label), 1) * _LINE_PX + _ROW_PAD
        count = number(row.get("count"))
        start = x(max(low, min(0.0, high)))
        if value is None:
            bar_x, bar_width = start, 0.0
        else:
            end = x(value)
            bar_x, bar_width = min(start, end), abs(end - start)
        bars.append(
            Bar(
                label_lines=label,
                full_label=group_full_label(row.get("group")),
                count_text="n=?" if count is None else f"n={count:g}",
                small=count is not None and count < SMALL_GROUP,
                top=top,
                height=height,
                value=value,
                value_text=short(value),
                bar_x=bar_x,
                bar_width=bar_width,
                whisker=(x(interval[0]), x(interval[1])) if interval else None,
                interval_text=f"[{short(interval[0])}, {short(interval[1])}]" if interval else "",
            )
        )
        top += height
    plot_bottom = top
    ticks = tuple(Tick(x(t), f"{t:g}") for t in nice_ticks(low, high))
    value_x = plot_left + _PLOT_WIDTH + 10
    return BarChart(
        column=column,
        width=value_x + _VALUE_COLUMN + _COUNT_COLUMN,
        height=plot_bottom + 22,
        plot_left=plot_left,
        plot_width=_PLOT_WIDTH,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        zero_x=x(max(low, min(0.0, high))),
        value_x=value_x,
        count_x=value_x + _VALUE_COLUMN,
        bars=tuple(bars),
        ticks=ticks,
        undefined=sum(v is None for v in values),
    )


@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float
    value_text: str
    time_text: str
    session: str
    outcome: str | None  # the gate's outcome in that session, when it was gated there
    undefined: bool  # recorded, but not a finite number (drawn on the axis)
    current: bool  # the session this report is about


@dataclass(frozen=True)
class BoundLine:
    y: float
    label: str  # the whole bound, for the tooltip
    short_label: str  # what fits in the right margin
    kind: str  # "bound" or "regression"


@dataclass(frozen=True)
class TrendChart:
    model: str
    key: str
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    points: tuple[TrendPoint, ...]
    paths: tuple[str, ...]  # polyline point lists, broken where a session has no finite value
    bounds: tuple[BoundLine, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]


@dataclass(frozen=True)
class Observation:
    """One session's value of a gated metric: ``value`` None when undefined."""

    time: datetime
    session: str
    value: float | None
    outcome: str | None
    current: bool


def _time_ticks(
    observations: Sequence[Observation],
    times: Sequence[float],
    x: Callable[[float], float],
    left: float,
    right: float,
) -> tuple[Tick, ...]:
    """First and last session times at the plot's ends (and a middle one when it falls near the
    middle), formatted for the span they cover."""
    if not times:
        return ()
    t0, t1 = min(times), max(times)
    span = t1 - t0
    fmt = (
        "%H:%M:%S" if span < 3600
        else "%d %b %H:%M" if span < 2 * 86400
        else "%d %b" if span < 300 * 86400
        else "%b %Y"
    )  # fmt: skip
    if span <= 0:
        return (Tick(x(t0), observations[0].time.strftime(fmt)),)
    middle = min(range(len(times)), key=lambda i: abs(times[i] - (t0 + t1) / 2))
    ticks = [Tick(left, observations[0].time.strftime(fmt), "start")]
    if 0.25 < (times[middle] - t0) / span < 0.75:
        ticks.append(Tick(x(times[middle]), observations[middle].time.strftime(fmt)))
    ticks.append(Tick(right, observations[-1].time.strftime(fmt), "end"))
    return tuple(ticks)


def _trend_points(
    observations: Sequence[Observation],
    times: Sequence[float],
    x: Callable[[float], float],
    y: Callable[[float], float],
    bottom: float,
) -> tuple[tuple[TrendPoint, ...], tuple[str, ...]]:
    """The dots, and the polylines between them, broken where a value is undefined."""
    points: list[TrendPoint] = []
    paths: list[str] = []
    segment: list[str] = []
    for obs, t in zip(observations, times, strict=True):
        px = x(t)
        py = bottom if obs.value is None else y(obs.value)
        points.append(
            TrendPoint(
                x=px,
                y=py,
                value_text=short(obs.value, 4),
                time_text=obs.time.strftime("%Y-%m-%d %H:%M"),
                session=obs.session,
                outcome=obs.outcome,
                undefined=obs.value is None,
                current=obs.current,
            )
        )
        if obs.value is None:
            if len(segment) > 1:
                paths.append(" ".join(segment))
            segment = []
        else:
            segment.append(f"{px:.1f},{py:.1f}")
    if len(segment) > 1:
        paths.append(" ".join(segment))
    return tuple(points), tuple(paths)


def trend_chart(
    model: str,
    key: str,
    observations: Sequence[Observation],
    bounds: Sequence[tuple[float, str, str]],
    *,
    width: float = 470,
    height: float = 180,
) -> TrendChart:
    """A metric over sessions, ``observations`` in time order; ``bounds`` are (number, label, kind)
    with kind ``bound`` or ``regression``."""
    plot_left, plot_right, plot_top, plot_bottom = 48.0, width - 78, 10.0, height - 26
    finite = [o.value for o in observations if o.value is not None]
    drawn_bounds = [b for b in bounds if math.isfinite(b[0])]
    extent = finite + [b[0] for b in drawn_bounds]
    low, high = (min(extent), max(extent)) if extent else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5 if low else -0.5, high + 0.5 if high else 0.5
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    times = [o.time.timestamp() for o in observations]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)

    def x(t: float) -> float:
        if t1 - t0 < 1e-9:
            return (plot_left + plot_right) / 2
        return plot_left + (t - t0) / (t1 - t0) * (plot_right - plot_left)

    def y(v: float) -> float:
        return plot_bottom - (v - low) / (high - low) * (plot_bottom - plot_top)

    points, paths = _trend_points(observations, times, x, y, plot_bottom)
    return TrendChart(
        model=model,
        key=key,
        width=width,
        height=height,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        points=points,
        paths=paths,
        bounds=tuple(
            BoundLine(y(v), label, f"limit {short(v, 3)}" if kind == "regression" else label, kind)
            for v, label, kind in drawn_bounds
        ),
        y_ticks=tuple(Tick(y(t), f"{t:g}") for t in nice_ticks(low, high, 4)),
        x_ticks=_time_ticks(observations, times, x, plot_left, plot_right),
    )
