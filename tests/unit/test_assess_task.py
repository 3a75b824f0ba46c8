"""``task=``: inference from the labels or a ``y_score``, and hints that say what to pass instead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_fairmind.metrics import assess

SEX = ["F", "M"] * 4
Y_TRUE = [1, 0, 1, 1, 0, 0, 1, 0]


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [
        (Y_TRUE, [1, 0, 0, 1, 0, 1, 1, 0]),
        (np.array(Y_TRUE, dtype=float), np.array([1.0, 0, 0, 1, 0, 1, 1, 0])),  # integral floats
        ([True, False] * 4, [True] * 8),  # one predicted label is fine
        ([1, -1] * 4, [-1, 1] * 4),
    ],
)
def test_two_labels_infer_binary(y_true: Any, y_pred: Any) -> None:
    result = assess(y_true, y_pred, sensitive_features=SEX)
    assert result.task == "binary"
    assert result.demographic_parity_difference == result["demographic_parity_difference"]


def test_y_score_infers_binary() -> None:
    result = assess(Y_TRUE, sensitive_features=SEX, y_score=np.linspace(0, 1, 8))
    assert result.task == "binary" and "roc_auc_score_group_min" in result.metrics()


@pytest.mark.parametrize("arg", ["y_true", "y_pred"])
def test_non_integral_floats_get_the_scores_and_regression_hint(arg: str) -> None:
    args: dict[str, Any] = {"y_true": Y_TRUE, "y_pred": [1, 0, 0, 1, 0, 1, 1, 0]}
    args[arg] = [0.2, 0.9, 0.4, 0.7, 0.1, 0.6, 0.8, 0.3]
    with pytest.raises(
        ValueError, match=rf"{arg} holds non-integral floats.*task='regression'.*y_score=.*threshold="
    ):
        assess(**args, sensitive_features=SEX)


@pytest.mark.parametrize("pos_label", [1, "a"])
def test_several_labels_get_the_multiclass_hint(pos_label: Any) -> None:
    labels = [0, 1, 2, 1, 0, 2, 1, 0] if pos_label == 1 else list("abcabcab")
    with pytest.raises(ValueError, match="task='multiclass'"):
        assess(labels, labels, sensitive_features=SEX, pos_label=pos_label)
    wide = [0, 10, 20, 10, 0, 20, 10, 0]  # a range counted by comparison, not directly
    with pytest.raises(ValueError, match=r"y_true has labels \[0, 10, 20\].*task='multiclass'"):
        assess(wide, wide, sensitive_features=SEX)


def test_two_unknown_labels_suggest_one_of_them() -> None:
    labels = ["no", "yes"] * 4
    with pytest.raises(
        ValueError, match=r"pos_label=<one of the actual labels>, e\.g\. pos_label='no' or pos_label='yes'"
    ):
        assess(labels, labels, sensitive_features=SEX)
    with pytest.raises(ValueError, match=r"pos_label='y' is not one of the labels.*pos_label='no'"):
        assess(labels, labels, sensitive_features=SEX, pos_label="y")
    with pytest.raises(
        ValueError, match=r"pos_label=<one of the actual labels>, e\.g\. pos_label=0 or pos_label=2"
    ):
        assess([0, 2] * 4, [0, 2] * 4, sensitive_features=SEX)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"y_pred": Y_TRUE, "y_score": np.ones(8), "threshold": 0.5},
            "y_pred and threshold exclude each other",
        ),
        ({}, "pass y_pred"),
        ({"y_pred": Y_TRUE, "threshold": 0.5}, "exclude each other"),
        ({"y_score": None, "threshold": 0.5, "y_pred": None}, "pass y_pred"),
        ({"y_score": np.ones(8), "threshold": "half"}, "threshold must be a number"),
        ({"y_score": np.ones(8), "threshold": float("nan")}, "threshold must not be NaN"),
        ({"y_pred": Y_TRUE, "task": "ranking"}, "task must be one of 'binary', 'regression', 'multiclass'"),
        ({"y_pred": Y_TRUE, "task": "regression", "y_score": np.ones(8)}, "for task='binary'"),
        ({"task": "regression"}, "pass y_pred"),
        ({"y_score": np.ones(5)}, "y_score has 5 rows"),
        ({"y_score": np.array([0.1] * 7 + [np.nan])}, "y_score contains NaN"),
        ({"y_score": np.array(["a"] * 8)}, "y_score must be numeric"),
        ({"y_score": np.ones((8, 2))}, "y_score must be 1-D"),
    ],
)
def test_bad_task_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assess(Y_TRUE, sensitive_features=SEX, **kwargs)


def test_y_pred_with_y_score_takes_labels_from_one_and_scores_from_the_other() -> None:
    y_pred = [1, 0, 0, 1, 0, 1, 1, 0]
    scores = np.linspace(0.05, 0.95, 8)
    both = assess(Y_TRUE, y_pred, sensitive_features=SEX, y_score=scores)
    labels = assess(Y_TRUE, y_pred, sensitive_features=SEX)
    only_scores = assess(Y_TRUE, sensitive_features=SEX, y_score=scores)
    for name, value in labels.metrics().items():
        assert both[name] == value
    for name, value in only_scores.metrics().items():
        assert both[name] == value
    assert "accuracy" not in only_scores.metrics()


def test_threshold_gives_the_label_family_of_the_thresholded_scores() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 300)
    scores = rng.random(300)
    groups = rng.choice(["a", "b", "c"], 300)
    by_threshold = assess(y_true, sensitive_features=groups, y_score=scores, threshold=0.4)
    by_labels = assess(y_true, (scores >= 0.4).astype(int), sensitive_features=groups, y_score=scores)
    assert by_threshold.metrics() == by_labels.metrics()
    assert by_threshold.by_group == by_labels.by_group
    named = assess(
        np.where(y_true == 1, "yes", "no"),
        sensitive_features=groups,
        y_score=scores,
        threshold=0.4,
        pos_label="yes",
    )
    assert named.metrics() == by_labels.metrics()


def test_attributes_follow_the_task() -> None:
    result = assess(
        [1.5, 2.0, 3.5, 1.0], [1.0, 2.5, 3.0, 1.5], sensitive_features=["a", "b"] * 2, task="regression"
    )
    assert result.r2_score_group_min == result["r2_score_group_min"]
    with pytest.raises(
        AttributeError, match="'demographic_parity_difference' is not a metric of task='regression'"
    ):
        _ = result.demographic_parity_difference
    binary = assess(Y_TRUE, Y_TRUE, sensitive_features=SEX)
    with pytest.raises(AttributeError, match="task='binary'"):
        _ = binary.mean_absolute_error_group_max
    with pytest.raises(KeyError, match="roc_auc"):
        _ = binary["roc_auc_score_group_min"]
