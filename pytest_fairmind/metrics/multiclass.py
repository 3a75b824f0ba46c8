"""Multiclass labels, one-vs-rest: one counting pass over (group, y_true, y_pred), one fold per class.

The counts of every (group, actual class, predicted class) give each class's binary confusion cells
(class c positive, every other class negative) without another pass over the rows; the binary
table then gives every label metric per class. Under ``<scope>/`` the worst case over classes is
reported (the largest ``_difference`` and ``_group_max``, the smallest ``_ratio`` and ``_group_min``);
per-class keys ``class.<name>/<metric>`` with ``per_class=True``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.counting import Counted, Digit, confusion, count_cells, feature_codes
from pytest_fairmind.metrics.features import Feature, group_labels
from pytest_fairmind.metrics.inputs import GroupLabel, plain
from pytest_fairmind.metrics.labels import check_integral
from pytest_fairmind.metrics.messages import point_warnings
from pytest_fairmind.metrics.rates import evaluate
from pytest_fairmind.metrics.table import BINARY

# A class name must be a valid part of a metric key (no '/': it separates scopes).
_CLASS_NAME = re.compile(r"^[\w\-. ]+$")
# Integer labels spanning at most this many values are counted directly.
_DIRECT_RANGE = 1024


@dataclass
class ClassLabels:
    truth: Digit
    pred: Digit
    labels: list[Any]  # the label of each code


def read_classes(y_true: NDArray[Any], y_pred: NDArray[Any]) -> ClassLabels:
    """``y_true`` and ``y_pred`` as codes of one shared label space."""
    for arr, arg in ((y_true, "y_true"), (y_pred, "y_pred")):
        check_integral(arr, arg)
    if y_true.dtype.kind in "iub" and y_pred.dtype.kind in "iub":
        lo = min(int(y_true.min()), int(y_pred.min()))
        hi = max(int(y_true.max()), int(y_pred.max()))
        if hi - lo < _DIRECT_RANGE:
            radix = hi - lo + 1
            labels = list(range(lo, hi + 1))
            return ClassLabels(Digit(y_true, radix, lo), Digit(y_pred, radix, lo), labels)
    try:
        uniques, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    except TypeError:
        raise ValueError("y_true and y_pred hold labels that cannot be compared (mixed types?)") from None
    inverse = inverse.reshape(-1)
    n = len(y_true)
    k = len(uniques)
    return ClassLabels(Digit(inverse[:n], k, 0), Digit(inverse[n:], k, 0), list(uniques))


def class_name(label: Any, class_names: Mapping[Any, str] | None) -> str:
    """The class text of a key: ``class_names[label]`` if given, else ``str()`` of the plain label."""
    value = plain(label)
    if class_names is not None:
        for key in (label, value):
            try:
                if key in class_names:
                    name = class_names[key]
                    break
            except TypeError:
                continue
        else:
            name = str(value)
    else:
        name = str(value)
    if not isinstance(name, str) or not _CLASS_NAME.fullmatch(name):
        raise ValueError(
            f"class label {value!r} is not a valid key part (letters, digits, '_', '-', '.', space): "
            f"pass class_names={{{value!r}: 'name'}}"
        )
    return name


def worst(kind: str, values: Sequence[float]) -> float:
    """The worst case over classes of one aggregate kind (NaN classes skipped)."""
    defined = [v for v in values if not math.isnan(v)]
    if not defined:
        return math.nan
    return max(defined) if kind in ("difference", "group_max") else min(defined)


@dataclass
class Multiclass:
    values: dict[str, float | int]
    builtin: list[str]
    by_group: list[dict[str, Any]]
    warnings: list[str]
    groups: list[dict[str, GroupLabel]]
    rows: list[int]


def assess_classes(
    features: Sequence[Feature],
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    weights: NDArray[np.float64] | None,
    min_group_size: int | None,
    class_names: Mapping[Any, str] | None,
    per_class: bool,
) -> Multiclass:
    n = len(y_true)
    classes = read_classes(y_true, y_pred)
    counted: Counted = count_cells([f.digit for f in features], classes.truth, classes.pred, weights, n)
    per_code = counted.counts.sum(axis=(0, 2)) + counted.counts.sum(axis=(0, 1))
    present = np.flatnonzero(per_code).tolist()
    names = {code: class_name(classes.labels[code], class_names) for code in present}
    if len(set(names.values())) != len(names):
        raise ValueError(f"class names {sorted(names.values())} are not distinct: pass class_names=")
    base = confusion(
        counted, np.zeros(counted.counts.shape[1], bool), np.zeros(counted.counts.shape[2], bool)
    )
    codes = feature_codes(counted, base.present, [f.digit.radix for f in features])
    order, groups = group_labels(features, codes)
    values: dict[str, float | int] = {}
    per_class_values: dict[str, dict[str, float]] = {}
    by_group: list[dict[str, Any]] = []
    warns: list[str] = []
    kinds = {a.name: a.kind for a in BINARY.aggregates}
    for code in present:
        positive = np.arange(counted.counts.shape[1]) == code
        table = confusion(counted, positive, positive).take(order)
        evaluation = evaluate(BINARY, table.cells, table.rows, min_group_size)
        name = names[code]
        point = {a: float(v) for a, v in evaluation.values.items() if kinds[a] not in ("overall", "count")}
        per_class_values[name] = point
        lines = point_warnings(BINARY, evaluation, groups, table.row_cells, table.rows, min_group_size)
        warns += [f"class {name}: {line}" for line in lines if not line.startswith("group ") or per_class]
        rates = {c: v.tolist() for c, v in evaluation.rates.items()}
        counts = table.rows.tolist()
        for i, group in enumerate(groups):
            by_group.append(
                {"group": group, "class": name, "count": counts[i], **{c: r[i] for c, r in rates.items()}}
            )
    wsum = counted.wsum if counted.wsum is not None else counted.counts
    diagonal = float(np.trace(wsum.sum(axis=0)))
    total = float(wsum.sum())
    values["accuracy"] = diagonal / total
    values["count"] = n
    for aggregate in BINARY.aggregates:
        if aggregate.kind in ("overall", "count"):
            continue
        column = [per_class_values[name][aggregate.name] for name in per_class_values]
        skipped = [name for name, v in zip(per_class_values, column, strict=True) if math.isnan(v)]
        if skipped and len(skipped) < len(column):
            warns.append(
                f"{aggregate.name}: classes {', '.join(skipped)} are NaN and skipped in the worst case"
            )
        values[aggregate.name] = worst(aggregate.kind, column)
    builtin = list(values)
    if per_class:
        for name, point in per_class_values.items():
            values.update({f"class.{name}/{metric}": v for metric, v in point.items()})
    rows = base.take(order).rows.tolist()
    return Multiclass(values, builtin, by_group, warns, groups, rows)
