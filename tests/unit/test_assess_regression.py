"""Regression by group against scikit-learn per group, with and without weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm

from pytest_fairmind.metrics import assess


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def data(seed: int, n: int = 800) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n)
    y = rng.normal(50.0, 3.0, n) + (group == "b") * 5  # a mean far from 0: the centring matters
    pred = y + rng.normal(0.0, 1.5, n)
    return y, pred, group, rng.uniform(0.1, 3.0, n)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_regression_equals_sklearn_per_group(seed: int, weighted: bool) -> None:
    y, pred, group, w = data(seed)
    sw = w if weighted else None
    result = assess(y, pred, sensitive_features=group, task="regression", sample_weight=sw)
    assert result.task == "regression"
    for row in result.by_group:
        m = group == row["group"]["sf0"]
        kw = {"sample_weight": w[m]} if weighted else {}
        assert close(row["mean_absolute_error"], skm.mean_absolute_error(y[m], pred[m], **kw))
        assert close(row["mean_squared_error"], skm.mean_squared_error(y[m], pred[m], **kw))
        assert close(row["r2_score"], skm.r2_score(y[m], pred[m], force_finite=False, **kw))
        assert close(row["mean_prediction"], float(np.average(pred[m], weights=kw.get("sample_weight"))))
    mae = [row["mean_absolute_error"] for row in result.by_group]
    assert close(result.mean_absolute_error, skm.mean_absolute_error(y, pred, sample_weight=sw))
    assert close(result.mean_squared_error, skm.mean_squared_error(y, pred, sample_weight=sw))
    assert result.mean_absolute_error_group_max == max(mae)
    assert close(result.mean_absolute_error_difference, max(mae) - min(mae))
    assert close(result.mean_absolute_error_ratio, min(mae) / max(mae))
    assert result.r2_score_group_min == min(row["r2_score"] for row in result.by_group)
    assert result.mean_squared_error_group_max == max(row["mean_squared_error"] for row in result.by_group)
    means = [row["mean_prediction"] for row in result.by_group]
    assert close(result.mean_prediction_difference, max(means) - min(means))
    assert close(result.mean_prediction_ratio, min(means) / max(means))


def test_constant_target_has_undefined_r2() -> None:
    y, pred, group, _ = data(2)
    y[group == "c"] = 51.3
    result = assess(y, pred, sensitive_features=group, task="regression")
    row_c = next(row for row in result.by_group if row["group"]["sf0"] == "c")
    assert math.isnan(row_c["r2_score"])
    assert result.r2_score_group_min == min(r["r2_score"] for r in result.by_group if r is not row_c)
    assert any("sf0='c'" in w and "r2_score is undefined" in w for w in result.warnings)


def test_regression_intervals_and_integer_targets() -> None:
    y, pred, group, w = data(3, n=300)
    result = assess(np.round(y).astype(int), pred, sensitive_features=group, task="regression", n_boot=100)
    low, high = result.ci["mean_absolute_error_group_max"]
    assert low < high
    assert set(result.ci) >= {"mean_absolute_error", "r2_score_group_min", "mean_prediction_ratio"}
    weighted = assess(y, pred, sensitive_features=group, task="regression", n_boot=30, sample_weight=w)
    assert weighted.ci["mean_squared_error"][0] < weighted.ci["mean_squared_error"][1]


def test_regression_bad_input() -> None:
    with pytest.raises(ValueError, match="y_pred must be numeric for task='regression'"):
        assess([1.0, 2.0], ["a", "b"], sensitive_features=[0, 1], task="regression")
    with pytest.raises(ValueError, match="y_true contains NaN"):
        assess([1.0, math.nan], [1.0, 2.0], sensitive_features=[0, 1], task="regression")
