"""``metrics={"name": callable}``: fairlearn MetricFrame's numbers, errors naming metric and group."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from fairlearn.metrics import MetricFrame

from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.callables import MetricCallableError


def data(seed: int, n: int = 600) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["x", "y", "z", "w"], n)
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.75, y, 1 - y)
    return y, pred, group, rng.uniform(0.1, 3.0, n)


@pytest.mark.parametrize("weighted", [False, True])
def test_callables_equal_metric_frame(weighted: bool) -> None:
    y, pred, group, w = data(0)
    sw = w if weighted else None
    metrics = {"mcc": skm.matthews_corrcoef, "kappa": skm.cohen_kappa_score}
    result = assess(y, pred, sensitive_features=group, metrics=metrics, sample_weight=sw)
    params = {name: {"sample_weight": w} for name in metrics} if weighted else None
    frame = MetricFrame(
        metrics=metrics, y_true=y, y_pred=pred, sensitive_features=group, sample_params=params
    )
    for name in metrics:
        assert math.isclose(result[name], frame.overall[name], abs_tol=1e-12)
        assert math.isclose(result[f"{name}_difference"], frame.difference()[name], abs_tol=1e-12)
        assert math.isclose(result[f"{name}_ratio"], frame.ratio()[name], abs_tol=1e-12)
        assert math.isclose(result[f"{name}_group_min"], frame.group_min()[name], abs_tol=1e-12)
        assert math.isclose(result[f"{name}_group_max"], frame.group_max()[name], abs_tol=1e-12)
        for row, (_, theirs) in zip(result.by_group, frame.by_group.iterrows(), strict=True):
            assert math.isclose(row[name], theirs[name], abs_tol=1e-12)
    with pytest.raises(AttributeError, match="not a metric of task='binary'"):
        _ = result.mcc  # callables live in metrics() and result[...] only


def test_sample_weight_is_passed_only_when_accepted() -> None:
    y, pred, group, w = data(1)
    seen: list[Any] = []

    def plain(t: np.ndarray, p: np.ndarray) -> float:
        return float(np.mean(t == p))

    def weighted(t: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        seen.append(sample_weight)
        return float(np.average(t == p, weights=sample_weight))

    result = assess(
        y, pred, sensitive_features=group, metrics={"hit": plain, "whit": weighted}, sample_weight=w
    )
    assert all(s is not None for s in seen) and len(seen) == 5  # 4 groups and all rows
    assert math.isclose(result["whit"], skm.accuracy_score(y, pred, sample_weight=w))
    assert math.isclose(result["hit"], skm.accuracy_score(y, pred))


def test_slices_keep_row_order_and_scores_are_passed_without_labels() -> None:
    y, _, group, _ = data(2)
    scores = np.linspace(0, 1, len(y))
    result = assess(y, sensitive_features=group, y_score=scores, metrics={"auc": skm.roc_auc_score})
    for row in result.by_group:
        m = group == row["group"]["sf0"]
        assert math.isclose(row["auc"], skm.roc_auc_score(y[m], scores[m]))
        assert math.isclose(row["auc"], row["roc_auc"], abs_tol=1e-12)


def test_callable_on_regression() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    pred = y + rng.normal(size=200)
    group = rng.integers(0, 3, 200)
    result = assess(
        y, pred, sensitive_features=group, task="regression", metrics={"medae": skm.median_absolute_error}
    )
    assert math.isclose(result["medae"], skm.median_absolute_error(y, pred))
    assert result["medae_group_max"] == max(row["medae"] for row in result.by_group)


def test_exception_names_the_metric_and_the_group() -> None:
    y, pred, group, _ = data(4)

    def fragile(t: np.ndarray, p: np.ndarray) -> float:
        if (len(t) < 500 and t.sum() % 2 == 0) or len(t) < 500:
            raise ZeroDivisionError("boom")
        return 0.0

    with pytest.raises(
        MetricCallableError, match=r"metric 'fragile' raised on group sf0='w': ZeroDivisionError: boom"
    ):
        assess(y, pred, sensitive_features=group, metrics={"fragile": fragile})
    with pytest.raises(MetricCallableError, match="returned str on group"):
        assess(y, pred, sensitive_features=group, metrics={"text": lambda t, p: "x"})


@pytest.mark.parametrize(
    "name", ["accuracy", "precision", "count", "group", "roc_auc_score", "accuracy_score", "selection_rate"]
)
def test_names_clashing_with_built_ins_are_refused(name: str) -> None:
    y, pred, group, _ = data(5, n=40)
    with pytest.raises(ValueError, match=f"name '{name}' clashes with the built-in or reserved name"):
        assess(y, pred, sensitive_features=group, metrics={name: skm.accuracy_score})


def test_bad_metrics_arguments() -> None:
    y, pred, group, _ = data(6, n=40)
    with pytest.raises(ValueError, match="metrics must be a mapping"):
        assess(y, pred, sensitive_features=group, metrics=[skm.accuracy_score])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be callable"):
        assess(y, pred, sensitive_features=group, metrics={"m": 3})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="name 'a:b' must be"):
        assess(y, pred, sensitive_features=group, metrics={"a:b": skm.accuracy_score})
    with pytest.raises(ValueError, match="clashes"):
        assess(y, pred, sensitive_features=group, task="regression", metrics={"r2_score": skm.r2_score})
