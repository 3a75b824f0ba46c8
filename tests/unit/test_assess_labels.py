"""The binary label family: fairlearn 0.15's generated metrics and scikit-learn per group."""

from __future__ import annotations

import math
import warnings
from typing import Any

import fairlearn.metrics as flm
import numpy as np
import pytest
import sklearn.metrics as skm

from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.table import BINARY

#: Per-group column -> scikit-learn/fairlearn per-group function under the NaN policy.
PER_GROUP: dict[str, Any] = {
    "false_negative_rate": flm.false_negative_rate,
    "true_negative_rate": flm.true_negative_rate,
    "zero_one_loss": skm.zero_one_loss,
    "precision": lambda t, p, **kw: skm.precision_score(t, p, labels=[0, 1], zero_division=np.nan, **kw),
    "recall": lambda t, p, **kw: skm.recall_score(t, p, labels=[0, 1], zero_division=np.nan, **kw),
    "f1": lambda t, p, **kw: skm.f1_score(t, p, labels=[0, 1], zero_division=np.nan, **kw),
    "balanced_accuracy": skm.balanced_accuracy_score,
}

NEW_AGGREGATES = [a for a in BINARY.aggregates if a.kind not in ("overall", "count") and hasattr(flm, a.name)]


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def data(
    seed: int, n: int = 900, degenerate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    if degenerate:  # group 1 has no actual positives, group 2 no predicted positives
        y_true[group == 1] = 0
        y_pred[group == 2] = 0
    return y_true, y_pred, group, rng.uniform(0.1, 3.0, n)


def test_every_generated_fairlearn_metric_is_an_aggregate() -> None:
    names = {a.name for a in BINARY.aggregates}
    generated = {
        name
        for name in dir(flm)
        if name.endswith(("_difference", "_ratio", "_group_min", "_group_max"))
        and not name.startswith(("roc_auc", "log_loss", "mean_", "r2_"))
    }
    assert generated <= names, generated - names


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregates_equal_fairlearn_generated_metrics(seed: int, weighted: bool) -> None:
    y_true, y_pred, group, w = data(seed)
    weights = w if weighted else None
    result = assess(y_true, y_pred, sensitive_features=group, sample_weight=weights)
    assert len(NEW_AGGREGATES) >= 20
    for aggregate in NEW_AGGREGATES:
        expected = getattr(flm, aggregate.name)(
            y_true, y_pred, sensitive_features=group, sample_weight=weights
        )
        assert close(result[aggregate.name], float(expected)), aggregate.name
    assert result.selection_rate_ratio == result.demographic_parity_ratio


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("degenerate", [False, True])
def test_group_columns_equal_sklearn_per_group(weighted: bool, degenerate: bool) -> None:
    y_true, y_pred, group, w = data(5, degenerate=degenerate)
    result = assess(y_true, y_pred, sensitive_features=group, sample_weight=w if weighted else None)
    for g, row in enumerate(result.by_group):
        m = group == g
        kw = {"sample_weight": w[m]} if weighted else {}
        for name, fn in PER_GROUP.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = float(fn(y_true[m], y_pred[m], **kw))
            if name in ("false_negative_rate", "recall", "balanced_accuracy") and not y_true[m].any():
                expected = math.nan  # fairlearn answers 0 and scikit-learn by convention: the policy is NaN
            assert close(row[name], expected), (g, name)
    rates = [row["selection_rate"] for row in result.by_group]
    assert [row["impact_ratio"] for row in result.by_group] == pytest.approx([r / max(rates) for r in rates])


def test_undefined_groups_are_left_out_and_warned() -> None:
    y_true, y_pred, group, _ = data(7, degenerate=True)
    result = assess(y_true, y_pred, sensitive_features=group)
    precision = [row["precision"] for row in result.by_group]
    assert math.isnan(precision[2]) and not math.isnan(precision[1])
    assert result.precision_score_group_min == min(p for p in precision if not math.isnan(p))
    recall = [row["recall"] for row in result.by_group]
    assert math.isnan(recall[1])
    assert result.recall_score_group_min == min(r for r in recall if not math.isnan(r))
    balanced = [row["balanced_accuracy"] for row in result.by_group]
    assert math.isnan(balanced[1])
    assert result.balanced_accuracy_score_group_min == min(b for b in balanced if not math.isnan(b))
    lines = [w for w in result.warnings if w.startswith("group sf0=1:")]
    assert (
        len(lines) == 1
        and "true_positive_rate (and false_negative_rate, recall, balanced_accuracy)" in lines[0]
    )
    assert "no actual positives" in lines[0] and "true_positive_rate_*" in lines[0]
    assert any(
        w.startswith("group sf0=2: precision") and "no predicted positives" in w for w in result.warnings
    )


def test_impact_ratio_uses_the_groups_that_enter_aggregates() -> None:
    group = np.array([0] * 10 + [1] * 10 + [2] * 2)
    y_pred = np.array([1] * 5 + [0] * 5 + [1] * 2 + [0] * 8 + [1, 1])
    result = assess(y_pred, y_pred, sensitive_features=group, min_group_size=5)
    assert [row["impact_ratio"] for row in result.by_group] == pytest.approx([1.0, 0.4, 2.0])
    assert result.selection_rate_ratio == pytest.approx(0.4)
    nobody = assess(np.zeros(6, int), np.zeros(6, int), sensitive_features=[0, 1] * 3)
    assert all(math.isnan(row["impact_ratio"]) for row in nobody.by_group)
    assert any(w.startswith("impact_ratio is NaN") for w in nobody.warnings)


def test_section_four_names_keep_their_values() -> None:
    y_true, y_pred, group, w = data(11)
    result = assess(y_true, y_pred, sensitive_features=group, sample_weight=w)
    kw = {"sensitive_features": group, "sample_weight": w}
    assert close(result.equalized_odds_difference, flm.equalized_odds_difference(y_true, y_pred, **kw))
    assert close(result.demographic_parity_ratio, flm.demographic_parity_ratio(y_true, y_pred, **kw))
    assert list(result.metrics())[:9] == [
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
        "equal_opportunity_difference",
        "equal_opportunity_ratio",
        "accuracy",
        "selection_rate",
        "count",
    ]


def test_bootstrap_covers_every_new_aggregate() -> None:
    y_true, y_pred, group, w = data(3, n=400)
    for weights in (None, w):
        result = assess(y_true, y_pred, sensitive_features=group, sample_weight=weights, n_boot=200)
        for aggregate in NEW_AGGREGATES:
            low, high = result.ci[aggregate.name]
            assert math.isfinite(low) and low <= high, aggregate.name
            assert f"{aggregate.name}.ci_low" in result.metrics()


def test_resamples_keep_the_group_set_fixed() -> None:
    """With 3 groups, a resample that draws none of group c's single positive must not compare the
    other two groups' TPR as if c did not exist: it is counted undefined, and the warning says so."""
    rng = np.random.default_rng(0)
    n = 300
    group = np.repeat(["a", "b", "c"], n // 3)
    y_true = rng.integers(0, 2, n)
    y_true[group == "c"] = 0
    y_true[n - 1] = 1  # group c: one actual positive
    y_pred = rng.integers(0, 2, n)
    result = assess(y_true, y_pred, sensitive_features=group, n_boot=1000)
    line = next(w for w in result.warnings if w.startswith("bootstrap:") and "true_positive_rate_ratio" in w)
    undefined = int(line.split()[1])
    # P(a resample misses one given row) = (1 - 1/n)^n ~ 0.368; a binomial band of 4 SE on 1000 draws.
    assert abs(undefined - 1000 * (1 - 1 / n) ** n) <= 4 * math.sqrt(1000 * 0.368 * 0.632)
    assert not any("selection_rate_ratio undefined" in w for w in result.warnings)
