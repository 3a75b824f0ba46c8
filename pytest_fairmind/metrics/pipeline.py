"""``assess``: the metrics of one call as a short pipeline of named steps.

read the request -> labels -> count -> rates and aggregates -> warnings -> intervals -> result.
The request (validated arguments, features, weights) is common to every task; :data:`PIPELINES` maps
a task to the steps that follow it (binary classification with hard predictions today).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.bootstrap import (
    CellCounts,
    Resampler,
    RowWeights,
    intervals_of,
    label_samples,
)
from pytest_fairmind.metrics.callables import callable_samples, check_callables, evaluate_callables
from pytest_fairmind.metrics.counting import (
    Confusion,
    Counted,
    Digit,
    cell_of_row,
    confusion,
    count_cells,
    feature_codes,
)
from pytest_fairmind.metrics.evidence import cells_payload, combine, grid_payload
from pytest_fairmind.metrics.features import Feature, group_labels, read_features
from pytest_fairmind.metrics.inputs import (
    GroupLabel,
    array_1d,
    check_int,
    check_level,
    check_scope,
    generator,
    sample_weights,
)
from pytest_fairmind.metrics.intervals import METHOD, Sample
from pytest_fairmind.metrics.labels import Labels, check_labels, label_digit, read_pos_label
from pytest_fairmind.metrics.messages import point_warnings
from pytest_fairmind.metrics.multiclass import assess_classes
from pytest_fairmind.metrics.rates import Evaluation, evaluate
from pytest_fairmind.metrics.regression import RegressionFamily, regression_values
from pytest_fairmind.metrics.result import FairnessResult
from pytest_fairmind.metrics.scores import ScoreFamily
from pytest_fairmind.metrics.table import BINARY

TASKS = ("binary", "regression", "multiclass")


@dataclass(frozen=True)
class Request:
    """The validated arguments of one call: what every task's pipeline starts from."""

    y_true: NDArray[Any]
    y_pred: NDArray[Any] | None
    features: list[Feature]
    weights: NDArray[np.float64] | None
    scope: str | None
    pos_label: Any
    default_rule: bool  # pos_label is the default 1: labels must be {0, 1}, {-1, 1} or bool
    n_boot: int | None
    ci: float
    random_state: int | np.random.Generator | None
    min_group_size: int | None
    task: str = "binary"
    y_score: NDArray[np.float64] | None = None
    threshold: float | None = None
    metrics: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    class_names: Mapping[Any, str] | None = None
    per_class: bool = False

    @property
    def n(self) -> int:
        return len(self.y_true)


def _check_task(task: object, y_pred: Any, y_score: Any, threshold: Any) -> str:
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))} or None, got {task!r}")
    if y_pred is not None and threshold is not None:
        raise ValueError(
            "y_pred and threshold exclude each other: pass y_pred (labels) or y_score= with threshold="
        )
    if y_pred is None and y_score is None:
        raise ValueError("pass y_pred (predicted labels or values) or y_score (scores of pos_label)")
    if threshold is not None and y_score is None:
        raise ValueError("threshold needs y_score: predicted positive is y_score >= threshold")
    if task is None:
        return "binary"
    if task != "binary" and (y_score is not None or threshold is not None):
        raise ValueError(f"y_score and threshold are for task='binary', not task={task!r}")
    if task != "binary" and y_pred is None:
        raise ValueError(f"task={task!r} needs y_pred")
    return str(task)


def _threshold(threshold: object) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    value = float(threshold)
    if math.isnan(value):
        raise ValueError("threshold must not be NaN")
    return value


def _scores(y_score: Any, n: int) -> NDArray[np.float64] | None:
    if y_score is None:
        return None
    arr = array_1d(y_score, "y_score")
    if len(arr) != n:
        raise ValueError(f"y_score has {len(arr)} rows but y_true has {n}")
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"y_score must be numeric scores of pos_label, got dtype {arr.dtype}")
    scores = np.ascontiguousarray(arr, dtype=np.float64)
    if not bool(np.isfinite(scores).all()):
        raise ValueError("y_score contains NaN or infinite values")
    return scores


def read_request(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    scope: str | None,
    sample_weight: Any,
    pos_label: Any,
    n_boot: int | None,
    ci: float,
    random_state: int | np.random.Generator | None,
    min_group_size: int | None,
    y_score: Any = None,
    task: str | None = None,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    threshold: float | None = None,
    class_names: Mapping[Any, str] | None = None,
    per_class: bool = False,
) -> Request:
    """Check the options, then the data, in the order their errors are reported."""
    resolved = _check_task(task, y_pred, y_score, threshold)
    cut = _threshold(threshold)
    scope = check_scope(scope)
    n_boot = check_int(n_boot, "n_boot", 1)
    min_group_size = check_int(min_group_size, "min_group_size", 1)
    level = check_level(ci)
    pos_label, default_rule = read_pos_label(pos_label)
    callables = check_callables(metrics, resolved)
    yt = array_1d(y_true, "y_true")
    n = len(yt)
    if n == 0:
        raise ValueError("y_true is empty")
    yp = None
    if y_pred is not None:
        yp = array_1d(y_pred, "y_pred")
        if len(yp) != n:
            raise ValueError(f"y_pred has {len(yp)} rows but y_true has {n}")
    scores = _scores(y_score, n)
    weights = sample_weights(sample_weight, n)
    features = read_features(sensitive_features, n)
    return Request(
        yt,
        yp,
        features,
        weights,
        scope,
        pos_label,
        default_rule,
        n_boot,
        level,
        random_state,
        min_group_size,
        task=resolved,
        y_score=scores,
        threshold=cut,
        metrics=callables,
        class_names=class_names,
        per_class=bool(per_class),
    )


def _read_labels(request: Request) -> tuple[Labels, Labels]:
    """y_true's labels and the predicted ones: y_pred's, ``y_score >= threshold``, or (scores only)
    y_true's again, to count the groups in the same pass."""
    pos_label, default_rule = request.pos_label, request.default_rule
    truth = label_digit(request.y_true, "y_true", pos_label, default_rule)
    if request.y_pred is not None:
        return truth, label_digit(request.y_pred, "y_pred", pos_label, default_rule)
    if request.threshold is not None and request.y_score is not None:
        predicted = request.y_score >= request.threshold
        return truth, Labels(Digit(predicted, 2, 0), np.array([False, True]), None, [])
    return truth, Labels(truth.digit, truth.positive, truth.values, [])


def _count(
    request: Request, truth: Labels, pred: Labels
) -> tuple[Counted, Confusion, list[dict[str, GroupLabel]]]:
    """One counting pass; the labels checked; the confusion table with its groups in fairlearn's order."""
    features = request.features
    counted = count_cells([f.digit for f in features], truth.digit, pred.digit, request.weights, request.n)
    seen_t = truth.seen_in(counted.counts.sum(axis=(0, 2)))
    seen_p = pred.seen_in(counted.counts.sum(axis=(0, 1)))
    check_labels(seen_t, seen_p, request.pos_label, request.default_rule)
    table = confusion(counted, truth.positive, pred.positive)
    codes = feature_codes(counted, table.present, [f.digit.radix for f in features])
    order, groups = group_labels(features, codes)
    return counted, table.take(order), groups


def groups_of_rows(
    request: Request,
) -> tuple[NDArray[np.intp], NDArray[np.int64], list[dict[str, GroupLabel]]]:
    """Each row's group (its position in fairlearn's order), the rows per group and the groups' labels,
    for tasks without binary labels: the same counting pass with one label code."""
    constant = Digit(np.zeros(request.n, dtype=np.int8), 1, 0)
    features = request.features
    counted = count_cells([f.digit for f in features], constant, constant, None, request.n)
    table = confusion(counted, np.array([False]), np.array([False]))
    codes = feature_codes(counted, table.present, [f.digit.radix for f in features])
    order, groups = group_labels(features, codes)
    table = table.take(order)
    return cell_of_row(counted, table, request.n) >> 2, table.rows, groups


def _point_values(evaluation: Evaluation) -> dict[str, float | int]:
    """Each aggregate as a plain number (``count`` an int)."""
    kinds = {a.name: a.kind for a in BINARY.aggregates}
    return {
        name: int(value) if kinds[name] == "count" else float(value)
        for name, value in evaluation.values.items()
    }


def _intervals(
    request: Request,
    counted: Counted,
    table: Confusion,
    evaluation: Evaluation,
    point: Mapping[str, float],
    parts: Parts,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Intervals of the label family; the evidence (cells when unweighted, else a grid) into ``parts``."""
    if request.n_boot is None:
        return {}, []
    eligible = table.rows >= (request.min_group_size or 1)
    # The groups each interval is about: those whose rate the point estimate compared.
    required = {c.name: ~np.isnan(evaluation.rates[c.name]) & eligible for c in BINARY.between_columns}
    rng = generator(request.random_state)
    resampler: Resampler = CellCounts()
    if request.weights is not None:
        rows = cell_of_row(counted, table, request.n)
        resampler = RowWeights(rows, request.weights, table.row_cells.reshape(-1))
    found = label_samples(
        BINARY, table.row_cells, resampler, request.min_group_size, required, request.n_boot, rng
    )
    if request.weights is None:
        names = [name for name, s in found.items() if not np.isnan(s.value).all()]
        parts.cells = cells_payload(
            parts.scope, names, request.n_boot, table.row_cells, request.min_group_size, required
        )
    else:
        parts.samples.update(found)
    return intervals_of(found, point, request.ci)


@dataclass
class Parts:
    """What the steps of a pipeline produced, merged into one result."""

    groups: list[dict[str, GroupLabel]]
    rows: list[int]
    scope: str = ""
    values: dict[str, float | int] = field(default_factory=dict)
    columns: dict[str, list[Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_warnings: list[str] = field(default_factory=list)
    builtin: list[str] = field(default_factory=list)
    #: Evidence: the label family's cells payload, and replicates for a grid payload.
    cells: dict[str, Any] | None = None
    samples: dict[str, Sample] = field(default_factory=dict)

    def add(
        self,
        values: Mapping[str, float | int],
        columns: Mapping[str, Sequence[Any]],
        warnings: Sequence[str],
        intervals: tuple[dict[str, tuple[float, float]], list[str]] = ({}, []),
        builtin: bool = True,
    ) -> None:
        self.values.update(values)
        self.columns.update({name: list(column) for name, column in columns.items()})
        self.warnings += warnings
        self.ci.update(intervals[0])
        self.ci_warnings += intervals[1]
        if builtin:
            self.builtin += list(values)


def _result(request: Request, parts: Parts, by_group: list[dict[str, Any]] | None = None) -> FairnessResult:
    if by_group is None:
        by_group = [
            {
                "group": group,
                "count": parts.rows[i],
                **{name: column[i] for name, column in parts.columns.items()},
            }
            for i, group in enumerate(parts.groups)
        ]
    names = tuple(f.name for f in request.features)
    evidence = None
    if request.n_boot is not None:
        grid = grid_payload(parts.scope, parts.samples, request.n_boot) if parts.samples else None
        evidence = combine(parts.cells, grid)
    return FairnessResult(
        scope=parts.scope,
        sensitive_feature_names=names,
        values=parts.values,
        by_group=by_group,
        warnings=[*parts.warnings, *parts.ci_warnings],
        ci=parts.ci,
        ci_level=request.ci,
        n_boot=request.n_boot,
        task=request.task,
        builtin=tuple(parts.builtin),
        ci_method=METHOD,
        evidence=evidence,
    )


def _scope(request: Request) -> str:
    return request.scope if request.scope is not None else ".".join(f.name for f in request.features)


def _row_intervals(
    request: Request,
    parts: Parts,
    draw: Callable[[int, np.random.Generator], dict[str, Sample]],
    point: Mapping[str, float | int],
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Intervals of a row-bootstrapped family (scores, regression, callables); its grid evidence."""
    if not request.n_boot:
        return {}, []
    found = draw(request.n_boot, generator(request.random_state))
    parts.samples.update(found)
    return intervals_of(found, {k: float(v) for k, v in point.items()}, request.ci)


def _callables(request: Request, parts: Parts, group_of_row: NDArray[np.intp], y_pred: NDArray[Any]) -> None:
    if not request.metrics:
        return
    values, columns, warns = evaluate_callables(
        request.metrics,
        request.y_true,
        y_pred,
        request.weights,
        group_of_row,
        parts.groups,
        parts.rows,
        request.min_group_size,
    )
    intervals: tuple[dict[str, tuple[float, float]], list[str]] = ({}, [])
    if request.n_boot:
        draw = partial(
            callable_samples,
            request.metrics,
            request.y_true,
            y_pred,
            request.weights,
            group_of_row,
            columns,
            parts.rows,
            request.min_group_size,
        )
        intervals = _row_intervals(request, parts, draw, values)
    parts.add(values, columns, warns, intervals, builtin=False)


def assess_binary(request: Request) -> FairnessResult:
    """Binary classification: the label family from the groups' confusion cells (hard predictions or
    thresholded scores), the score family from one sort of the scores, and any callables."""
    truth, pred = _read_labels(request)
    counted, table, groups = _count(request, truth, pred)
    parts = Parts(groups, table.rows.tolist(), _scope(request))
    has_labels = request.y_pred is not None or request.threshold is not None
    if has_labels:
        evaluation = evaluate(BINARY, table.cells, table.rows, request.min_group_size)
        point = _point_values(evaluation)
        warns = point_warnings(
            BINARY, evaluation, groups, table.row_cells, table.rows, request.min_group_size
        )
        rates = {name: values.tolist() for name, values in evaluation.rates.items()}
        parts.add(point, rates, warns, _intervals(request, counted, table, evaluation, point, parts))
    else:
        parts.add({"count": request.n}, {}, [])
    need_rows = request.y_score is not None or bool(request.metrics)
    cell = cell_of_row(counted, table, request.n) if need_rows else None
    if request.y_score is not None and cell is not None:
        family = ScoreFamily(
            cell >> 2, (cell >> 1) & 1, request.y_score, request.weights, table.rows, request.min_group_size
        )
        point_scores = family.point(groups)
        intervals = _row_intervals(request, parts, family.samples, point_scores.values)
        parts.add(point_scores.values, point_scores.columns, point_scores.warnings, intervals)
    if request.metrics and cell is not None:
        y_pred = request.y_pred
        if y_pred is None:
            assert request.y_score is not None
            y_pred = (
                (request.y_score >= request.threshold).astype(np.int64)
                if request.threshold is not None
                else request.y_score
            )
        _callables(request, parts, cell >> 2, y_pred)
    return _result(request, parts)


def assess_regression(request: Request) -> FairnessResult:
    """Regression: per-group sums by weighted bincounts, then any callables."""
    assert request.y_pred is not None
    y_true = regression_values(request.y_true, "y_true")
    y_pred = regression_values(request.y_pred, "y_pred")
    group_of_row, rows, groups = groups_of_rows(request)
    parts = Parts(groups, rows.tolist(), _scope(request))
    family = RegressionFamily(group_of_row, y_true, y_pred, request.weights, rows, request.min_group_size)
    point = family.point(groups)
    intervals = _row_intervals(request, parts, family.samples, point.values)
    parts.add(point.values, point.columns, point.warnings, intervals)
    _callables(request, parts, group_of_row, request.y_pred)
    return _result(request, parts)


def assess_multiclass(request: Request) -> FairnessResult:
    """Multiclass labels: the binary label family one-vs-rest per class, the worst case over classes."""
    assert request.y_pred is not None
    if request.metrics:
        raise ValueError("metrics= callables are not supported for task='multiclass' yet")
    out = assess_classes(
        request.features,
        request.y_true,
        request.y_pred,
        request.weights,
        request.min_group_size,
        request.class_names,
        request.per_class,
        request.n_boot,
        generator(request.random_state) if request.n_boot is not None else None,
    )
    parts = Parts(out.groups, out.rows, _scope(request))
    kinds = {name: "count" for name in out.values if name == "count"}
    point = {k: float(v) for k, v in out.values.items() if k not in kinds}
    intervals = intervals_of(out.samples, point, request.ci) if out.samples else ({}, [])
    parts.samples.update(out.samples)
    parts.values.update(out.values)
    parts.warnings += out.warnings
    parts.ci.update(intervals[0])
    parts.ci_warnings += intervals[1]
    parts.builtin += out.builtin
    return _result(request, parts, out.by_group)


#: The pipeline of each task, after the request is read.
PIPELINES: dict[str, Callable[[Request], FairnessResult]] = {
    "binary": assess_binary,
    "regression": assess_regression,
    "multiclass": assess_multiclass,
}


def assess(
    y_true: Any,
    y_pred: Any = None,
    *,
    sensitive_features: Any,
    y_score: Any = None,
    task: str | None = None,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    threshold: float | None = None,
    pos_label: Any = 1,
    sample_weight: Any = None,
    scope: str | None = None,
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    min_group_size: int | None = None,
    class_names: Mapping[Any, str] | None = None,
    per_class: bool = False,
) -> FairnessResult:
    """Group-fairness metrics of a model's predictions against ``y_true`` across sensitive groups.

    ``task`` is ``"binary"`` (inferred from two labels or a ``y_score``), ``"regression"`` or
    ``"multiclass"``. Binary: hard labels ``y_pred`` give the label family, ``y_score`` (the score of
    ``pos_label``) the score family, and ``threshold=t`` labels from ``y_score >= t``. ``metrics``
    maps names to callables ``f(y_true, y_pred[, sample_weight=])`` computed overall and per group.
    ``sensitive_features`` is one feature (list, array, Series, Categorical) or several (DataFrame,
    dict of columns, 2-D array, list of Series), crossed into intersectional groups. ``pos_label=1``
    needs labels in {0, 1}, {-1, 1} or bool; pass the positive label for any other labels. With
    ``n_boot`` every aggregate metric gets a percentile-bootstrap interval at level ``ci``. Groups
    with fewer than ``min_group_size`` rows are reported but left out of the aggregates. See
    ``docs/metrics.md`` for definitions and the handling of undefined rates.
    """
    request = read_request(
        y_true,
        y_pred,
        sensitive_features=sensitive_features,
        scope=scope,
        sample_weight=sample_weight,
        pos_label=pos_label,
        n_boot=n_boot,
        ci=ci,
        random_state=random_state,
        min_group_size=min_group_size,
        y_score=y_score,
        task=task,
        metrics=metrics,
        threshold=threshold,
        class_names=class_names,
        per_class=per_class,
    )
    if request.task not in PIPELINES:
        raise ValueError(f"task={request.task!r} is not supported yet")
    return PIPELINES[request.task](request)
