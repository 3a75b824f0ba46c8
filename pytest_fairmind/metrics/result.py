"""The result of :func:`~pytest_fairmind.metrics.assess`: aggregates, group table, warnings, intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, repr=False)
class FairnessResult:
    """The fairness metrics of one :func:`assess` call.

    :meth:`metrics` (and ``result["name"]``) holds every aggregate by name, each followed by its
    interval when computed; the task's built-in aggregates are also attributes (plain ``float``;
    ``count`` is an ``int``). ``by_group`` holds one plain dict per group (``group``, ``count`` and the
    task's group columns, see docs/metrics.md), ``warnings`` says which rates or groups were left out
    and why, and ``ci`` maps every aggregate metric to its ``(low, high)`` bootstrap interval (empty
    without ``n_boot``; method ``ci_method``), ``evidence`` the payload interval gates redraw from.
    """

    scope: str
    sensitive_feature_names: tuple[str, ...]
    values: dict[str, float | int]
    by_group: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_level: float = 0.95
    n_boot: int | None = None
    task: str = "binary"
    #: The built-in aggregate names of the task (attributes); other keys of ``values`` are callables'.
    builtin: tuple[str, ...] = ()
    #: How ``ci`` was computed (``intervals.METHOD``; docs/metrics.md, "Intervals").
    ci_method: str = "extremum-percentile"
    #: What interval gates need to redraw the bootstrap (plain JSON, ``metrics.evidence``); None
    #: without ``n_boot``.
    evidence: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the task's built-in aggregates.
        if name.startswith("__"):
            raise AttributeError(name)
        values = self.__dict__.get("values", {})
        if name in self.__dict__.get("builtin", ()) and name in values:
            return values[name]
        task = self.__dict__.get("task", "binary")
        raise AttributeError(
            f"{name!r} is not a metric of task={task!r}; the result's metrics are result.metrics() "
            f"(or result[{name!r}] for a key listed there)"
        )

    def __getitem__(self, key: str) -> float:
        metrics = self.metrics()
        if key not in metrics:
            raise KeyError(f"{key!r} is not a metric of this result (task={self.task!r})")
        return metrics[key]

    def __contains__(self, key: object) -> bool:
        return key in self.metrics()

    def metrics(self) -> dict[str, float]:
        """Aggregate metrics by plain name, each followed by ``<name>.ci_low``/``.ci_high`` if computed."""
        out: dict[str, float] = {}
        for name, value in self.values.items():
            out[name] = value
            if name in self.ci:
                low, high = self.ci[name]
                out[f"{name}.ci_low"] = low
                out[f"{name}.ci_high"] = high
        return out

    @property
    def group_columns(self) -> list[str]:
        """The per-group columns of ``by_group`` besides ``group``, in order (``count`` first)."""
        columns: dict[str, None] = {}
        for row in self.by_group:
            columns.update(dict.fromkeys(k for k in row if k not in ("group", "ci", "class")))
        return list(columns)

    def to_pandas(self) -> pd.DataFrame:
        """``by_group`` as a DataFrame indexed by the sensitive feature(s), one column per group metric."""
        import pandas as pd

        names = list(self.sensitive_feature_names)
        labels = [tuple(row["group"][name] for name in names) for row in self.by_group]
        if any("class" in row for row in self.by_group):  # multiclass: one row per (group, class)
            labels = [(*lab, row.get("class")) for lab, row in zip(labels, self.by_group, strict=True)]
            names = [*names, "class"]
        if len(names) == 1:
            index = pd.Index([lab[0] for lab in labels], name=names[0])
        else:
            index = pd.MultiIndex.from_tuples(labels, names=names)
        columns = self.group_columns
        data = {col: [row.get(col, math.nan) for row in self.by_group] for col in columns}
        frame = pd.DataFrame(data, index=index, columns=columns)
        return frame.astype({"count": "int64"})

    def __repr__(self) -> str:
        task = "" if self.task == "binary" else f", task={self.task!r}"
        lines = [
            f"FairnessResult(scope={self.scope!r}, groups={len(self.by_group)}, "
            f"count={self.values.get('count')}{task})"
        ]
        width = max((len(name) for name in self.values), default=0)
        pct = f"{self.ci_level:.0%}"
        for name, value in self.values.items():
            text = str(value) if name == "count" else f"{value:.4f}"
            if name in self.ci and name != "count":
                low, high = self.ci[name]
                text += f"   {pct} CI [{low:.4f}, {high:.4f}]"
            lines.append(f"  {name:<{width}}  {text}")
        if self.warnings:
            lines.append(f"  warnings ({len(self.warnings)}):")
            lines.extend(f"    - {w}" for w in self.warnings)
        return "\n".join(lines)
