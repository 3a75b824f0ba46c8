"""Per-group bar charts for provider artifacts (MLflow, W&B).

matplotlib is optional (the ``plot`` extra) and imported lazily. We draw with the object API
(``Figure`` + the Agg canvas) rather than ``pyplot`` so that no global backend or figure state
is touched in whatever process calls us.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any

#: The per-group rates drawn as bars (all in [0, 1]); ``count`` goes into the tick labels.
RATE_COLUMNS: tuple[str, ...] = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")

_MAX_LABEL = 40  # characters of a group label before it is shortened


def matplotlib_available() -> bool:
    """True when matplotlib can be imported (checked without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def group_label(group: Any) -> str:
    """``{"sex": "F", "age": "<30"}`` -> ``"sex=F, age=<30"``; anything else via ``str``."""
    text = ", ".join(f"{k}={v}" for k, v in group.items()) if isinstance(group, Mapping) else str(group)
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def as_number(value: Any) -> float:
    """A rate as a float; a missing or non-numeric cell is undefined (NaN), drawn as ``n/a``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def group_chart_png(
    scope: str, rows: Sequence[Mapping[str, Any]], path: str, *, title: str | None = None
) -> bool:
    """Draw one scope's per-group rates as grouped bars into ``path`` (PNG).

    Returns False without writing anything when matplotlib is not installed or there are no
    rows. Undefined rates (NaN) get no bar and an ``n/a`` mark, so they are not read as 0.
    """
    if not rows or not matplotlib_available():
        return False
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # present but broken (e.g. missing compiled deps): same as absent
        return False

    labels = []
    for row in rows:
        count = row.get("count")
        suffix = f"\n(n={int(count)})" if isinstance(count, (int, float)) and math.isfinite(count) else ""
        labels.append(group_label(row.get("group")) + suffix)
    n_groups = len(rows)
    n_bars = len(RATE_COLUMNS)
    width = 0.8 / n_bars

    fig = Figure(figsize=(min(16.0, max(6.0, 1.1 * n_groups + 2.0)), 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for j, column in enumerate(RATE_COLUMNS):
        xs = [i + (j - (n_bars - 1) / 2) * width for i in range(n_groups)]
        values = [as_number(row.get(column)) for row in rows]
        heights = [0.0 if math.isnan(v) else v for v in values]
        ax.bar(xs, heights, width=width, label=column.replace("_", " "))
        for x, v in zip(xs, values, strict=True):
            if math.isnan(v):
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90, color="0.4")
    ax.set_xticks(list(range(n_groups)))
    rotate = n_groups > 6
    ax.set_xticklabels(labels, rotation=45 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    # Headroom above 1.0 keeps the legend off the bars.
    ax.set_ylim(0.0, 1.22)
    ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("rate")
    ax.set_title(title or f"{scope}: per-group rates")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=n_bars, loc="upper center", frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return True
