"""Metric callables by group, as fairlearn's MetricFrame computes them, without a pandas groupby.

The rows are sorted by group once (a stable sort, so each group keeps the caller's row order); each
group is then a contiguous slice of the sorted arrays, handed to the callable in a plain loop, and
the callable runs once more on all rows for the overall value.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.bootstrap import RATE
from pytest_fairmind.metrics.inputs import GroupLabel
from pytest_fairmind.metrics.intervals import Part, Sample, samples
from pytest_fairmind.metrics.messages import group_text, too_few_groups
from pytest_fairmind.metrics.rates import between_groups
from pytest_fairmind.metrics.table import BUILTIN_NAMES, RESERVED_NAMES, Aggregate, Kind

_KINDS: tuple[Kind, ...] = ("difference", "ratio", "group_min", "group_max")
_NAME = re.compile(r"^[A-Za-z0-9_\-. ]+$")


class MetricCallableError(Exception):
    """A metric callable raised, or returned something that is not a number."""


def check_callables(metrics: object, task: str) -> dict[str, Callable[..., Any]]:
    """``metrics={"name": callable}`` validated: names that are valid keys and clash with nothing built in."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping of names to callables, got {type(metrics).__name__}")
    builtin = BUILTIN_NAMES[task]
    out: dict[str, Callable[..., Any]] = {}
    for name, fn in metrics.items():
        if not isinstance(name, str) or not _NAME.match(name) or len(name) > 200:
            raise ValueError(
                f"metrics: name {name!r} must be a non-empty str of letters, digits, '_', '-', '.' or space"
            )
        if not callable(fn):
            raise ValueError(f"metrics: {name!r} must be callable, got {type(fn).__name__}")
        clashes = [n for n in (name, *(f"{name}_{k}" for k in _KINDS)) if n in builtin or n in RESERVED_NAMES]
        if clashes:
            raise ValueError(
                f"metrics: name {name!r} clashes with the built-in or reserved name {clashes[0]!r} of "
                f"task={task!r}; rename it"
            )
        out[name] = fn
    return out


def _takes_weight(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "sample_weight" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _call(
    name: str, fn: Callable[..., Any], where: str, y_true: Any, y_pred: Any, weight: Any, takes: bool
) -> float:
    try:
        value = (
            fn(y_true, y_pred, sample_weight=weight) if takes and weight is not None else fn(y_true, y_pred)
        )
    except Exception as exc:
        raise MetricCallableError(f"metric {name!r} raised on {where}: {type(exc).__name__}: {exc}") from exc
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise MetricCallableError(f"metric {name!r} returned {type(value).__name__} on {where}, not a number")
    return float(value)


def evaluate_callables(
    metrics: Mapping[str, Callable[..., Any]],
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    weights: NDArray[np.float64] | None,
    group_of_row: NDArray[np.intp],
    groups: Sequence[Mapping[str, GroupLabel]],
    rows: NDArray[Any] | Sequence[int],
    min_group_size: int | None,
) -> tuple[dict[str, float], dict[str, list[float]], list[str]]:
    """Each callable overall and per group, with its difference, ratio, group minimum and maximum."""
    k = len(groups)
    order = np.argsort(group_of_row, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group_of_row, minlength=k))]).tolist()
    yt, yp = y_true[order], y_pred[order]
    w = weights[order] if weights is not None else None
    counts = np.asarray(rows)
    values: dict[str, float] = {}
    columns: dict[str, list[float]] = {}
    warns: list[str] = []
    for name, fn in metrics.items():
        takes = _takes_weight(fn)
        per_group = [
            _call(
                name,
                fn,
                f"group {group_text(groups[i])}",
                yt[a:b],
                yp[a:b],
                None if w is None else w[a:b],
                takes,
            )
            for i, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
        column = np.asarray(per_group, dtype=np.float64)
        aggregates = tuple(Aggregate(f"{name}_{kind}", kind, (name,), None) for kind in _KINDS)
        between, _ = between_groups(aggregates, {name: column}, counts, min_group_size)
        values[name] = _call(name, fn, "all rows", y_true, y_pred, weights, takes)
        values.update({a.name: float(between[a.name]) for a in aggregates})
        columns[name] = per_group
        warns += too_few_groups(aggregates, {name: column}, between)
        undefined = [i for i, v in enumerate(per_group) if math.isnan(v)]
        for i in undefined[:20]:
            warns.append(f"group {group_text(groups[i])}: {name} is NaN; left out of {name}_*")
    return values, columns, warns


def _resample_value(
    name: str, fn: Callable[..., Any], y_true: Any, y_pred: Any, weight: Any, takes: bool
) -> float:
    """The callable on a resample's rows; NaN where it cannot answer (no rows, or it raised)."""
    if len(y_true) == 0:
        return math.nan
    try:
        return _call(name, fn, "a bootstrap resample", y_true, y_pred, weight, takes)
    except MetricCallableError:
        return math.nan


def callable_samples(
    metrics: Mapping[str, Callable[..., Any]],
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    weights: NDArray[np.float64] | None,
    group_of_row: NDArray[np.intp],
    columns: Mapping[str, Sequence[float]],
    rows: NDArray[Any] | Sequence[int],
    min_group_size: int | None,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, Sample]:
    """Row-bootstrap replicates of each callable and its aggregates: each resample draws n rows with
    replacement; a group is the drawn rows of its own (so it keeps its place in the fixed group set:
    a resample where a compared group is undefined leaves the aggregates undefined)."""
    n = len(y_true)
    k = len(rows)
    counts = np.asarray(rows)
    eligible = counts >= (min_group_size or 1)
    order = np.argsort(group_of_row, kind="stable")
    yt, yp, g = y_true[order], y_pred[order], group_of_row[order]
    w = weights[order] if weights is not None else None
    takes = {name: _takes_weight(fn) for name, fn in metrics.items()}
    aggregates = {
        name: tuple(Aggregate(f"{name}_{kind}", kind, (name,), None) for kind in _KINDS) for name in metrics
    }
    required = {name: ~np.isnan(np.asarray(columns[name], dtype=np.float64)) & eligible for name in metrics}
    raw: dict[str, list[NDArray[np.float64]]] = {}
    for _ in range(n_boot):
        drawn = np.bincount(rng.integers(0, n, n), minlength=n)[order]
        pick = np.repeat(np.arange(n), drawn)  # sorted by group, so each group is a slice
        bounds = np.concatenate([[0], np.cumsum(np.bincount(g[pick], minlength=k))]).tolist()
        for name, fn in metrics.items():
            ryt, ryp, rw = yt[pick], yp[pick], None if w is None else w[pick]
            per_group = np.array(
                [
                    _resample_value(
                        name, fn, ryt[a:b], ryp[a:b], None if rw is None else rw[a:b], takes[name]
                    )
                    for a, b in itertools.pairwise(bounds)
                ]
            )
            between, _ = between_groups(
                aggregates[name], {name: per_group}, counts, min_group_size, {name: required[name]}
            )
            raw.setdefault(name, []).append(np.asarray(_resample_value(name, fn, ryt, ryp, rw, takes[name])))
            raw.setdefault(RATE + name, []).append(per_group)
            for key, value in between.items():
                raw.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
    stacked = {key: np.stack(values) for key, values in raw.items()}
    rates = {key[len(RATE) :]: stacked.pop(key) for key in list(stacked) if key.startswith(RATE)}
    every = [a for group in aggregates.values() for a in group]
    return samples(every, [Part(rates, eligible)], stacked)
