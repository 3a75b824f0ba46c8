"""Scores by group: scikit-learn per group, BPSN/BNSP AUC from their definition, ties, one-class groups."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fairmind.metrics import assess

SKLEARN: dict[str, Any] = {
    "roc_auc": skm.roc_auc_score,
    "average_precision": skm.average_precision_score,
    "brier_score": skm.brier_score_loss,
    "log_loss": lambda t, s, **kw: skm.log_loss(t, s, labels=[0, 1], **kw),
}


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def pairwise_auc(pos: np.ndarray, neg: np.ndarray, wp: np.ndarray, wn: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + half the ties, over weighted pairs: the definition."""
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    greater = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    pair = wp[:, None] * wn[None, :]
    return float((greater * pair).sum() / pair.sum())


def borkan(y: np.ndarray, s: np.ndarray, in_group: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """BPSN AUC (background positives vs subgroup negatives) and BNSP AUC (subgroup positives vs
    background negatives), Borkan et al. 2019."""
    bp, sn = (~in_group) & (y == 1), in_group & (y == 0)
    sp, bn = in_group & (y == 1), (~in_group) & (y == 0)
    return pairwise_auc(s[bp], s[sn], w[bp], w[sn]), pairwise_auc(s[sp], s[bn], w[sp], w[bn])


def data(seed: int, n: int = 500, groups: int = 4, decimals: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    y = rng.integers(0, 2, n)
    score = np.clip(np.round(rng.random(n) * 0.7 + 0.3 * y, decimals), 0, 1)  # many ties
    return y, score, group, rng.uniform(0.1, 3.0, n)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("seed", "decimals"), [(0, 1), (1, 2), (2, 6)])
def test_group_columns_equal_sklearn_and_the_definition(seed: int, decimals: int, weighted: bool) -> None:
    y, s, group, w = data(seed, decimals=decimals)
    weights = w if weighted else np.ones(len(y))
    result = assess(y, sensitive_features=group, y_score=s, sample_weight=w if weighted else None)
    for g, row in enumerate(result.by_group):
        m = group == g
        kw = {"sample_weight": w[m]} if weighted else {}
        for name, fn in SKLEARN.items():
            assert close(row[name], float(fn(y[m], s[m], **kw))), (g, name)
        bpsn, bnsp = borkan(y, s, m, weights)
        assert close(row["bpsn_auc"], bpsn) and close(row["bnsp_auc"], bnsp), g
        # The same subsets through scikit-learn.
        subset = (m & (y == 0)) | (~m & (y == 1))
        assert close(row["bpsn_auc"], skm.roc_auc_score(y[subset], s[subset], sample_weight=weights[subset]))
    auc = [row["roc_auc"] for row in result.by_group]
    assert result.roc_auc_score_group_min == min(auc)
    assert close(result.roc_auc_score_difference, max(auc) - min(auc))
    assert close(result.roc_auc_score_ratio, min(auc) / max(auc))
    assert result.log_loss_group_max == max(row["log_loss"] for row in result.by_group)
    assert result.brier_score_group_max == max(row["brier_score"] for row in result.by_group)
    assert result.bpsn_auc_group_min == min(row["bpsn_auc"] for row in result.by_group)
    assert result.bnsp_auc_group_min == min(row["bnsp_auc"] for row in result.by_group)
    assert result.average_precision_score_group_min == min(
        row["average_precision"] for row in result.by_group
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 60),
    seed=st.integers(0, 2**32 - 1),
    groups=st.integers(1, 4),
    container=st.sampled_from(["numpy", "list", "pandas", "polars", "pyarrow"]),
)
def test_scores_match_sklearn_for_any_small_data(n: int, seed: int, groups: int, container: str) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 1)
    group = rng.integers(0, groups, n)
    pack: Any = {
        "numpy": lambda a: a,
        "list": lambda a: a.tolist(),
        "pandas": lambda a: __import__("pandas").Series(a),
        "polars": lambda a: __import__("polars").Series(a),
        "pyarrow": lambda a: __import__("pyarrow").array(a),
    }[container]
    result = assess(pack(y), sensitive_features=pack(group), y_score=pack(s))
    present = sorted(set(group.tolist()))
    for row, g in zip(result.by_group, present, strict=True):
        m = group == g
        defined = 0 < y[m].sum() < m.sum()
        expected = skm.roc_auc_score(y[m], s[m]) if defined else math.nan
        assert close(row["roc_auc"], float(expected))
        bpsn, bnsp = borkan(y, s, m, np.ones(n))
        assert close(row["bpsn_auc"], bpsn) and close(row["bnsp_auc"], bnsp)


def test_one_class_group_is_nan_warned_and_left_out() -> None:
    y, s, group, _ = data(4)
    y[group == 2] = 1
    result = assess(y, sensitive_features=group, y_score=s)
    assert math.isnan(result.by_group[2]["roc_auc"])
    assert result.roc_auc_score_group_min == min(
        r["roc_auc"] for i, r in enumerate(result.by_group) if i != 2
    )
    assert any(w.startswith("group sf0=2: roc_auc is undefined") for w in result.warnings)
    assert not math.isnan(result.by_group[2]["average_precision"])  # positives only: AP is defined


def test_scores_outside_unit_interval_skip_brier_and_log_loss() -> None:
    y, s, group, _ = data(5)
    result = assess(y, sensitive_features=group, y_score=s * 10 - 3)
    assert "log_loss" not in result.by_group[0] and "log_loss_group_max" not in result.metrics()
    same = assess(y, sensitive_features=group, y_score=s)
    assert result.roc_auc_score_group_min == same.roc_auc_score_group_min
    assert any("not in [0, 1]" in w for w in result.warnings)


def test_score_intervals_keep_the_group_set_fixed() -> None:
    y, s, group, w = data(6, n=300)
    group[:3] = 9  # a tiny group: some resamples draw none of its positives or negatives
    y[:3] = [0, 1, 0]
    result = assess(y, sensitive_features=group, y_score=s, n_boot=300, random_state=1)
    low, high = result.ci["roc_auc_score_group_min"]
    assert low <= high
    assert any(w.startswith("bootstrap:") and "roc_auc_score_group_min" in w for w in result.warnings), (
        result.warnings
    )
    weighted = assess(y, sensitive_features=group, y_score=s, n_boot=50, sample_weight=w)
    assert set(weighted.ci) >= {"roc_auc_score_group_min", "bpsn_auc_group_min", "log_loss_group_max"}
    again = assess(y, sensitive_features=group, y_score=s, n_boot=300, random_state=1)
    assert again.ci == result.ci
