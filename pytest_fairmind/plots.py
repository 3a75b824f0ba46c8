"""Per-group charts and table columns for provider artifacts (MLflow, W&B).

The columns of a group table depend on the task (docs/metrics.md): they are read from the rows,
never assumed. Charts go one per scope and column family (rates, accuracy, impact ratio, ranking,
calibration, errors...): horizontal bars with the group labels on the y axis (wrapped when long),
the count beside each group, ``undefined`` where a value is NaN, and interval whiskers when a row
carries ``ci``.

matplotlib is optional (the ``plot`` extra) and imported lazily. We draw with the object API
(``Figure`` + the Agg canvas) rather than ``pyplot`` so that no global backend or figure state
is touched in whatever process calls us.
"""

from __future__ import annotations

import importlib.util
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from pytest_fairmind.result import SCAN_ROW_FIELDS, GateResult

#: Fields of a group row that are not value columns: the group, its class (multiclass), its size
#: and its intervals (``ci: {column: [low, high]}``).
ROW_FIELDS = ("group", "class", "count", "ci")

#: Column families drawn together on one chart: (name, columns, values lie in [0, 1]).
#: A column of no family (a callable's, say) goes to :data:`OTHER`.
FAMILIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (
        "rates",
        (
            "selection_rate",
            "true_positive_rate",
            "false_positive_rate",
            "false_negative_rate",
            "true_negative_rate",
        ),
        True,
    ),
    ("accuracy", ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "zero_one_loss"), True),
    ("impact_ratio", ("impact_ratio",), True),
    ("ranking", ("roc_auc", "average_precision", "bpsn_auc", "bnsp_auc"), True),
    ("calibration", ("brier_score", "log_loss"), False),
    ("errors", ("mean_absolute_error", "mean_squared_error"), False),
    ("r2_score", ("r2_score",), False),
    ("mean_prediction", ("mean_prediction",), False),
)
OTHER = "other"
_UNIT_COLUMNS = frozenset(c for _, columns, unit in FAMILIES if unit for c in columns)
#: Reference lines worth drawing: the four-fifths rule of bias audits on the impact ratio.
REFERENCE_LINES: dict[str, tuple[float, str]] = {"impact_ratio": (0.8, "0.8 (four-fifths rule)")}

#: The columns of a gate entry (``fairmind/gates.json``, W&B's gate table), in this order.
GATE_COLUMNS: tuple[str, ...] = (
    "expr",
    "key",
    "value",
    "bound",
    "outcome",
    "passed",
    "rule",
    "evidence",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "alpha",
    "baseline",
    "change",
    "direction",
)
#: The columns of a scan's W&B table (the conditions as text first).
SCAN_COLUMNS: tuple[str, ...] = SCAN_ROW_FIELDS

_WRAP = 28  # characters per line of a group label on the y axis
_MAX_LINES = 4
_MAX_HEIGHT = 40.0  # inches: a chart of hundreds of groups stays a drawable image
_UNDEFINED = "undefined"
_LABELLED_BARS = 2  # families of at most this many columns get their values written


# --------------------------------------------------------------------------- tables (no matplotlib)


def is_number(value: Any) -> bool:
    """A number cell (int or float, NaN included), not a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The numeric columns of a group table in the order they first appear across ``rows``:
    every field except ``group``, ``class``, ``count`` and ``ci`` holding a number in some row."""
    columns: dict[str, None] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ROW_FIELDS and is_number(value):
                columns.setdefault(key)
    return list(columns)


def interval(row: Mapping[str, Any], column: str) -> tuple[float, float] | None:
    """The row's ``ci`` for ``column`` as finite ``(low, high)``, else None."""
    ci = row.get("ci")
    pair = ci.get(column) if isinstance(ci, Mapping) else None
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        return None
    low, high = as_number(pair[0]), as_number(pair[1])
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def chart_families(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str], bool]]:
    """(family, its columns present in ``rows``, unit axis) for each family the rows have, in
    :data:`FAMILIES` order, then :data:`OTHER` for the columns of no family."""
    present = value_columns(rows)
    out: list[tuple[str, list[str], bool]] = []
    known: set[str] = set()
    for name, columns, unit in FAMILIES:
        known.update(columns)
        found = [c for c in columns if c in present]
        if found:
            out.append((name, found, unit))
    rest = [c for c in present if c not in known]
    if rest:
        out.append((OTHER, rest, False))
    return out


def finite_or_none(value: Any) -> Any:
    """A table cell: NaN and infinities become None (an empty cell)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finite_or_word(value: Any) -> Any:
    """A JSON value: NaN and infinities become their words ``"nan"``, ``"inf"``, ``"-inf"``
    (strict JSON has no such numbers, and ``null`` would not tell them apart)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def plain(value: Any, *, words: bool = False) -> Any:
    """``value`` as strict-JSON data: non-finite floats anywhere inside become None (or their
    words, with ``words=True``)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v, words=words) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, words=words) for v in value]
    return finite_or_word(value) if words else finite_or_none(value)


def gate_entry(gate: GateResult) -> dict[str, Any]:
    """Every field of a gate result (and ``passed``), in :data:`GATE_COLUMNS` order; fields the
    result model gains later follow. Numbers as they are (NaN and infinities included)."""
    values = {f.name: getattr(gate, f.name) for f in fields(gate)}
    values["passed"] = gate.passed
    ordered = [c for c in GATE_COLUMNS if c in values] + [c for c in values if c not in GATE_COLUMNS]
    return {column: values[column] for column in ordered}


def conditions_text(conditions: Any) -> str:
    """``{"sex": "F", "age": "<30"}`` -> ``"sex=F, age=<30"`` (in full)."""
    if isinstance(conditions, Mapping):
        return ", ".join(f"{k}={v}" for k, v in conditions.items())
    return str(conditions)


def group_label(group: Any, klass: Any = None) -> str:
    """``{"sex": "F", "age": "<30"}`` -> ``"sex=F, age=<30"``; a multiclass row's class first."""
    text = conditions_text(group)
    return text if klass is None else f"class {klass}: {text}"


def wrapped_label(row: Mapping[str, Any]) -> str:
    """A row's label for the y axis: its conditions packed into lines of at most :data:`_WRAP`
    characters (a condition is split only when it alone is longer), at most four lines."""
    group, klass = row.get("group"), row.get("class")
    parts = [f"{k}={v}" for k, v in group.items()] if isinstance(group, Mapping) else [str(group)]
    if klass is not None:
        parts.insert(0, f"class {klass}:")
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= _WRAP:
            lines[-1] = f"{lines[-1]} {part}" if lines[-1].endswith(":") else f"{lines[-1]}, {part}"
        else:
            lines.extend(textwrap.wrap(part, _WRAP) or [""])
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], lines[_MAX_LINES - 1][: _WRAP - 1] + "…"]
    return "\n".join(lines)


def as_number(value: Any) -> float:
    """A value as a float; a missing or non-numeric cell is undefined (NaN)."""
    return float(value) if is_number(value) else math.nan


def count_text(value: Any) -> str:
    return f"n={int(value)}" if is_number(value) and math.isfinite(value) else "n=?"


# --------------------------------------------------------------------------- charts


def keep_charts(remaining: float, spent: float, done: int, left: int) -> bool:
    """Whether to go on drawing charts after ``done`` models took ``spent`` seconds.

    Charts cost more than the runs themselves (~0.1 s CPU each, a few per scope; a run ~0.05 s):
    when the ``left`` models would not fit in the ``remaining`` budget at this pace (with a
    margin), the runs are kept and the charts dropped.
    """
    return done == 0 or remaining > 1.5 * (spent / done) * left


def matplotlib_available() -> bool:
    """True when matplotlib can be imported (checked without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def group_charts_png(
    scope: str, rows: Sequence[Mapping[str, Any]], base: str, *, title: str | None = None
) -> list[tuple[str, str]]:
    """One PNG per column family of ``rows``, at ``<base>.<family>.png``; returns the
    ``(family, path)`` pairs written (none without matplotlib or rows)."""
    written: list[tuple[str, str]] = []
    for family, columns, unit in chart_families(rows):
        path = f"{base}.{family}.png"
        heading = f"{title or scope}: {family.replace('_', ' ')}"
        if group_chart_png(scope, rows, path, title=heading, columns=columns, unit=unit, family=family):
            written.append((family, path))
    return written


def group_chart_png(
    scope: str,
    rows: Sequence[Mapping[str, Any]],
    path: str,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    unit: bool | None = None,
    family: str | None = None,
) -> bool:
    """Draw ``columns`` (default: the first family of ``rows``) by group into ``path`` (PNG).

    Returns False without writing anything when matplotlib is not installed or there is nothing
    to draw. ``unit``: the values lie in [0, 1] (the axis is fixed then); default: as the family.
    """
    if columns is None:
        families = chart_families(rows)
        if not families:
            return False
        family, picked, unit_default = families[0]
        columns = picked
        unit = unit_default if unit is None else unit
    if unit is None:
        unit = all(c in _UNIT_COLUMNS for c in columns)
    fig = group_chart_figure(scope, rows, columns, unit=unit, title=title, family=family)
    if fig is None:
        return False
    fig.savefig(path, format="png")
    return True


def group_chart_figure(
    scope: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    unit: bool = False,
    title: str | None = None,
    family: str | None = None,
) -> Any:
    """The chart of ``columns`` by group as a matplotlib ``Figure`` on an Agg canvas, or None
    when matplotlib is missing or there is nothing to draw."""
    if not rows or not columns or not matplotlib_available():
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # present but broken (e.g. missing compiled deps): same as absent
        return None
    labels = [wrapped_label(row) for row in rows]
    line = REFERENCE_LINES.get(columns[0]) if len(columns) == 1 else None
    legend = len(columns) > 1 or line is not None
    fig = _figure(Figure, labels, len(columns), legend=legend)
    FigureCanvasAgg(fig)
    ax = fig.axes[0]
    _draw_bars(ax, rows, list(columns))
    _finish_axes(ax, rows, labels, list(columns), unit=_unit_axis(rows, columns, unit))
    if line is not None:
        ax.axvline(line[0], color="0.35", linestyle="--", linewidth=0.9, label=line[1])
    fig.suptitle(title or f"{scope}: {family or 'per-group values'}", fontsize=10)
    if legend:
        handles, names = ax.get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncols=min(3, len(names)), fontsize=8, frameon=False)
    return fig


def _figure(figure: Any, labels: list[str], n_columns: int, *, legend: bool) -> Any:
    """A figure sized for its groups, with margins laid out by hand: the label column as wide as
    the longest label line, room for the counts, the title and the legend. (matplotlib's
    constrained layout would measure every text with an extra draw: a third of the time.)"""
    per_group = max(0.34, 0.13 * n_columns + 0.12)
    top, bottom = 0.45, 0.55 + (0.35 if legend else 0.0)
    # Every group gets the height of its bars or of its label's lines, whichever is more.
    plot = len(labels) * max(per_group, *(0.14 * (label.count("\n") + 1) + 0.12 for label in labels))
    height = min(_MAX_HEIGHT, top + bottom + plot)
    widest = max(len(line) for label in labels for line in label.split("\n"))
    width, left, right = 8.5, 0.25 + 0.068 * widest, 0.6
    fig = figure(figsize=(width, height), dpi=100)
    fig.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (top + bottom) / height))
    return fig


def _unit_axis(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], unit: bool | None) -> bool:
    """Whether the x axis is [0, 1]: the family says so and no value or interval leaves it."""
    if not unit:
        return False
    for row in rows:
        for column in columns:
            ends = [as_number(row.get(column)), *(interval(row, column) or ())]
            if any(math.isfinite(v) and not 0.0 <= v <= 1.0 for v in ends):
                return False
    return True


def _draw_bars(ax: Any, rows: Sequence[Mapping[str, Any]], columns: list[str]) -> None:
    """Grouped horizontal bars, one row of bars per group (the first group on top), whiskers
    where intervals exist, and ``undefined`` where a value is NaN."""
    height = 0.8 / len(columns)
    for j, column in enumerate(columns):
        offset = (j - (len(columns) - 1) / 2) * height
        ys = [i + offset for i in range(len(rows))]
        values = [as_number(row.get(column)) for row in rows]
        color = f"C{j % 10}"
        ax.barh(
            ys,
            [v if math.isfinite(v) else 0.0 for v in values],  # NaN and inf: marked by text
            height=height * 0.92,
            color=color,
            label=column.replace("_", " "),
        )
        whiskers = [(y, v, interval(row, column)) for y, v, row in zip(ys, values, rows, strict=True)]
        shown = [(y, v, ci) for y, v, ci in whiskers if ci is not None and math.isfinite(v)]
        if shown:
            ax.errorbar(
                [v for _, v, _ in shown],
                [y for y, _, _ in shown],
                xerr=[
                    [max(0.0, v - ci[0]) for _, v, ci in shown],
                    [max(0.0, ci[1] - v) for _, v, ci in shown],
                ],
                fmt="none",
                ecolor="0.15",
                elinewidth=0.8,
                capsize=2.0,
            )
        for y, v, ci in whiskers:
            # Values are written beside the bars of small families; a cluster of three bars or
            # more would be a wall of numbers (the table holds them), and each costs a text draw.
            if math.isnan(v) or len(columns) <= _LABELLED_BARS:
                _value_text(ax, y, v, ci, fontsize=7.5)


def _value_text(ax: Any, y: float, value: float, ci: tuple[float, float] | None, *, fontsize: float) -> None:
    """The value at the bar's end (past its whisker), or ``undefined`` in place of the bar."""
    if math.isnan(value):
        ax.annotate(_UNDEFINED, (0.0, y), xytext=(3, 0), textcoords="offset points", ha="left",
                    va="center", fontsize=fontsize, style="italic", color="0.35")  # fmt: skip
        return
    end = max(value, ci[1]) if ci and value >= 0 else (min(value, ci[0]) if ci else value)
    text = ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:.3g}"
    ha = "left" if value >= 0 else "right"
    ax.annotate(text, (0.0 if math.isinf(end) else end, y), xytext=(3 if value >= 0 else -3, 0),
                textcoords="offset points", ha=ha, va="center", fontsize=fontsize, color="0.2")  # fmt: skip


def _finish_axes(
    ax: Any, rows: Sequence[Mapping[str, Any]], labels: list[str], columns: list[str], *, unit: bool
) -> None:
    """Group labels on the y axis, counts beside the bars, the x range and its label."""
    ax.set_yticks(list(range(len(rows))))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first group on top
    if len(columns) > 1:  # every other group shaded: which bars belong together
        for i in range(1, len(rows), 2):
            ax.axhspan(i - 0.5, i + 0.5, color="0.95", zorder=0, linewidth=0)
    for i, row in enumerate(rows):
        ax.text(1.01, i, count_text(row.get("count")), transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontsize=8, color="0.25")  # fmt: skip
    if unit:
        ax.set_xlim(0.0, 1.14)  # room for the value labels past 1.0
        ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    else:
        ax.set_xlim(*_free_range(rows, columns))
    ax.axvline(0.0, color="0.5", linewidth=0.6)
    ax.set_xlabel(columns[0].replace("_", " ") if len(columns) == 1 else ("rate" if unit else "value"))
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="y", length=0)


def _free_range(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> tuple[float, float]:
    """An x range holding 0, every finite value and interval, with room for the value labels."""
    ends = [0.0]
    for row in rows:
        for column in columns:
            ends.extend(
                v for v in (as_number(row.get(column)), *(interval(row, column) or ())) if math.isfinite(v)
            )
    low, high = min(ends), max(ends)
    span = (high - low) or 1.0
    return (low - 0.16 * span if low < 0 else 0.0), (high + 0.16 * span if high > 0 else 0.05 * span)
