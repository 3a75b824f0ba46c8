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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.bootstrap import BATCH_CELLS, RATE, CellCounts, Resampler, RowWeights
from pytest_fairmind.metrics.counting import (
    Counted,
    Digit,
    _row_keys,
    confusion,
    count_cells,
    feature_codes,
)
from pytest_fairmind.metrics.features import Feature, group_labels
from pytest_fairmind.metrics.inputs import GroupLabel, plain
from pytest_fairmind.metrics.intervals import Part, Sample, extremum
from pytest_fairmind.metrics.intervals import plain as plain_sample
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
    #: Bootstrap replicates by key (worst cases and, with ``per_class``, ``class.<name>/<metric>``).
    samples: dict[str, Sample] = field(default_factory=dict)


@dataclass(frozen=True)
class Bootstrap:
    """What a multiclass bootstrap needs: the rows per (group, actual, predicted) class cell, a
    resampler for weighted rows, and the fixed set of groups and classes each interval is about."""

    row_cells: NDArray[np.int64]  # (groups, classes, classes), groups in fairlearn's order
    resampler: Resampler
    required: dict[str, dict[str, NDArray[np.bool_]]]  # class -> column -> groups
    defined: dict[str, set[str]]  # aggregate -> classes defined in the point estimate
    min_group_size: int | None
    per_class: bool


def _class_cells(table: NDArray[np.float64], c: int) -> NDArray[np.float64]:
    """Class ``c`` one-vs-rest: (..., groups, classes, classes) -> (..., groups, 4) TN, FP, FN, TP."""
    tp = table[..., c, c]
    fn = table[..., c, :].sum(axis=-1) - tp
    fp = table[..., :, c].sum(axis=-1) - tp
    tn = table.sum(axis=(-2, -1)) - tp - fn - fp
    return np.stack([tn, fp, fn, tp], axis=-1)


def _replicates(
    boot: Bootstrap, names: Sequence[str], n_boot: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Per class, every aggregate's replicates and the compared rates; the multiclass accuracy's."""
    shape = boot.row_cells.shape
    n = int(boot.row_cells.sum())
    p = boot.row_cells.reshape(-1).astype(np.float64) / n
    batch = max(1, min(n_boot, BATCH_CELLS // p.size))
    chunks: dict[str, list[NDArray[Any]]] = {}
    for first in range(0, n_boot, batch):
        count = min(batch, n_boot - first)
        draws = rng.multinomial(n, p, size=count)
        table = boot.resampler.weigh(draws, rng).reshape(count, *shape)
        rows = draws.reshape(count, *shape).sum(axis=(-2, -1))
        diagonal = np.trace(table, axis1=-2, axis2=-1).sum(axis=-1)
        chunks.setdefault("accuracy", []).append(diagonal / table.sum(axis=(-3, -2, -1)))
        chunks.setdefault("rows", []).append(rows)
        for c, name in enumerate(names):
            ev = evaluate(
                BINARY,
                _class_cells(table, c),
                rows,
                boot.min_group_size,
                BINARY.between_columns,
                boot.required[name],
            )
            for key, value in ev.values.items():
                chunks.setdefault(f"{name}\0{key}", []).append(value)
            for key, rate in ev.rates.items():
                chunks.setdefault(f"{name}\0{RATE}{key}", []).append(rate)
    return {key: np.concatenate(parts) for key, parts in chunks.items()}


def class_samples(
    boot: Bootstrap, names: Sequence[str], n_boot: int, rng: np.random.Generator
) -> dict[str, Sample]:
    """Replicates of the worst cases over classes (and, with ``per_class``, of every class)."""
    raw = _replicates(boot, names, n_boot, rng)
    eligible = raw["rows"] >= (boot.min_group_size or 1)
    parts = {
        name: Part({c.name: raw[f"{name}\0{RATE}{c.name}"] for c in BINARY.between_columns}, eligible)
        for name in names
    }
    out: dict[str, Sample] = {"accuracy": plain_sample(raw["accuracy"])}
    for aggregate in BINARY.aggregates:
        if aggregate.kind in ("overall", "count"):
            continue
        classes = [name for name in names if name in boot.defined[aggregate.name]]
        if not classes:
            continue
        stack = np.vstack([raw[f"{name}\0{aggregate.name}"] for name in classes])
        # A class the point estimate compared but a resample cannot: that resample is undefined.
        with np.errstate(all="ignore"):
            value = stack.max(axis=0) if aggregate.kind in ("difference", "group_max") else stack.min(axis=0)
        out[aggregate.name] = extremum(aggregate, [parts[name] for name in classes], value)
        if boot.per_class:
            for name in classes:
                value = raw[f"{name}\0{aggregate.name}"]
                out[f"class.{name}/{aggregate.name}"] = extremum(aggregate, [parts[name]], value)
    return out


def assess_classes(
    features: Sequence[Feature],
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    weights: NDArray[np.float64] | None,
    min_group_size: int | None,
    class_names: Mapping[Any, str] | None,
    per_class: bool,
    n_boot: int | None = None,
    rng: np.random.Generator | None = None,
) -> Multiclass:
    """The binary label family one-vs-rest per class, the worst case over classes, and (with
    ``n_boot``) their bootstrap replicates."""
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
    required: dict[str, dict[str, NDArray[np.bool_]]] = {}
    for code in present:
        positive = np.arange(counted.counts.shape[1]) == code
        table = confusion(counted, positive, positive).take(order)
        evaluation = evaluate(BINARY, table.cells, table.rows, min_group_size)
        name = names[code]
        point = {a: float(v) for a, v in evaluation.values.items() if kinds[a] not in ("overall", "count")}
        per_class_values[name] = point
        lines = point_warnings(BINARY, evaluation, groups, table.row_cells, table.rows, min_group_size)
        warns += [f"class {name}: {line}" for line in lines if not line.startswith("group ") or per_class]
        eligible = table.rows >= (min_group_size or 1)
        required[name] = {
            c.name: ~np.isnan(evaluation.rates[c.name]) & eligible for c in BINARY.between_columns
        }
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
    values.update(_worst_cases(per_class_values, warns))
    builtin = list(values)
    if per_class:
        for name, point in per_class_values.items():
            values.update({f"class.{name}/{metric}": v for metric, v in point.items()})
    rows = base.take(order).rows.tolist()
    out = Multiclass(values, builtin, by_group, warns, groups, rows)
    if n_boot is not None and rng is not None:
        found = (required, per_class_values, min_group_size, per_class)
        boot = _bootstrap(counted, base.present[order], present, weights, *found)
        out.samples = class_samples(boot, [names[c] for c in present], n_boot, rng)
    return out


def _worst_cases(per_class_values: Mapping[str, Mapping[str, float]], warns: list[str]) -> dict[str, float]:
    """Each aggregate's worst case over classes (NaN classes skipped, with a warning)."""
    values: dict[str, float] = {}
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
    return values


def _bootstrap(
    counted: Counted,
    groups: NDArray[np.intp],
    classes: list[int],
    weights: NDArray[np.float64] | None,
    required: dict[str, dict[str, NDArray[np.bool_]]],
    per_class_values: Mapping[str, Mapping[str, float]],
    min_group_size: int | None,
    per_class: bool,
) -> Bootstrap:
    """The (group, actual, predicted) table of the groups (in order) and present classes, the
    resampler of its rows, and the classes each aggregate's worst case is over."""
    defined = {
        a.name: {name for name, point in per_class_values.items() if not math.isnan(point[a.name])}
        for a in BINARY.aggregates
        if a.kind not in ("overall", "count")
    }
    row_cells = counted.counts[groups][:, classes][:, :, classes]
    resampler: Resampler = CellCounts()
    if weights is not None:
        cell = _cell_of_row(counted, groups, classes, len(weights))
        resampler = RowWeights(cell, weights, row_cells.reshape(-1))
    return Bootstrap(row_cells, resampler, required, defined, min_group_size, per_class)


def _cell_of_row(
    counted: Counted, groups: NDArray[np.intp], classes: Sequence[int], n: int
) -> NDArray[np.intp]:
    """Each row's cell in the (group, actual, predicted) table of ``groups`` and ``classes`` codes."""
    key = counted.key if counted.key is not None else _row_keys(counted.digits, n)
    radix = counted.counts.shape[1]
    k = len(classes)
    position = np.full(counted.groups, -1, dtype=np.intp)
    position[groups] = np.arange(len(groups))
    index = np.full(radix, -1, dtype=np.intp)
    index[np.asarray(classes, dtype=np.intp)] = np.arange(k)
    group, rest = np.divmod(key, radix * radix)
    actual, predicted = np.divmod(rest, radix)
    cell: NDArray[np.intp] = (position[group] * k + index[actual]) * k + index[predicted]
    return cell
