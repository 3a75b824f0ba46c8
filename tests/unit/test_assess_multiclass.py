"""Multiclass one-vs-rest: each class's metrics equal fairlearn's on that class's 0/1 indicators."""

from __future__ import annotations

import math

import fairlearn.metrics as flm
import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.table import BINARY

GENERATED = [a for a in BINARY.aggregates if a.kind not in ("overall", "count") and hasattr(flm, a.name)]


def data(seed: int, n: int = 900) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    labels = np.array(["cat", "dog", "eel"])
    y_true = labels[rng.integers(0, 3, n)]
    y_pred = np.where(rng.random(n) < 0.7, y_true, labels[rng.integers(0, 3, n)])
    return y_true, y_pred, rng.integers(0, 3, n), rng.uniform(0.2, 2.0, n)


@pytest.mark.parametrize("weighted", [False, True])
def test_each_class_equals_fairlearn_one_vs_rest(weighted: bool) -> None:
    y_true, y_pred, group, w = data(0)
    sw = w if weighted else None
    result = assess(
        y_true, y_pred, sensitive_features=group, task="multiclass", per_class=True, sample_weight=sw
    )
    assert result.task == "multiclass"
    assert math.isclose(result.accuracy, accuracy_score(y_true, y_pred, sample_weight=sw))
    per_class: dict[str, dict[str, float]] = {}
    for label in ("cat", "dog", "eel"):
        t, p = (y_true == label).astype(int), (y_pred == label).astype(int)
        per_class[label] = {}
        for aggregate in GENERATED:
            expected = float(getattr(flm, aggregate.name)(t, p, sensitive_features=group, sample_weight=sw))
            assert math.isclose(result[f"class.{label}/{aggregate.name}"], expected, abs_tol=1e-9), (
                aggregate.name
            )
            per_class[label][aggregate.name] = expected
    for aggregate in GENERATED:
        values = [per_class[c][aggregate.name] for c in per_class]
        worst = max(values) if aggregate.kind in ("difference", "group_max") else min(values)
        assert math.isclose(result[aggregate.name], worst, abs_tol=1e-9), aggregate.name
    rows = [row for row in result.by_group if row["class"] == "dog"]
    assert [row["group"] for row in rows] == [{"sf0": 0}, {"sf0": 1}, {"sf0": 2}]


def test_per_class_keys_only_when_asked() -> None:
    y_true, y_pred, group, _ = data(1)
    result = assess(y_true, y_pred, sensitive_features=group, task="multiclass")
    assert not any(key.startswith("class.") for key in result.metrics())
    assert result.equalized_odds_difference == result["equalized_odds_difference"]
    assert len(result.by_group) == 9 and result.to_pandas().index.names == ["sf0", "class"]


def test_class_labels_that_are_not_key_parts_need_names() -> None:
    y_true = np.array(["<=50K", ">50K"] * 10)
    y_pred = y_true[::-1].copy()
    group = [0, 1] * 10
    with pytest.raises(ValueError, match=r"class label '<=50K' is not a valid key part.*class_names="):
        assess(y_true, y_pred, sensitive_features=group, task="multiclass")
    named = assess(
        y_true,
        y_pred,
        sensitive_features=group,
        task="multiclass",
        per_class=True,
        class_names={"<=50K": "low", ">50K": "high"},
    )
    assert "class.low/accuracy_score_group_min" in named.metrics()


def test_integer_classes_and_nan_classes_skipped() -> None:
    rng = np.random.default_rng(2)
    group = np.repeat([0, 1], 50)
    y_true = rng.integers(0, 2, 100)
    y_true[:5] = 2  # class 2 occurs in group 0 only: its TPR difference is undefined
    y_pred = np.where(rng.random(100) < 0.8, y_true, rng.integers(0, 3, 100))
    result = assess(y_true, y_pred, sensitive_features=group, task="multiclass", per_class=True)
    assert math.isnan(result["class.2/true_positive_rate_difference"])
    defined = [result[f"class.{c}/true_positive_rate_difference"] for c in (0, 1)]
    assert result.true_positive_rate_difference == max(defined)
    assert any(w.startswith("true_positive_rate_difference: classes 2 are NaN") for w in result.warnings)
    assert result["count"] == 100
