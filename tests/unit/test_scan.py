"""Subgroup scan (pytest_fairmind.subgroup_scan): counts against brute force, tests against statsmodels/scipy,
Benjamini-Hochberg against statsmodels, planted bias, false alarms on null data, weights, errors."""

from __future__ import annotations

import ast
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

import pytest_fairmind.subgroup_scan as scan_module
from pytest_fairmind.subgroup_scan import SCAN_METRICS, ScanResult, scan

ALPHA = 0.05
ROW_KEYS = {
    "conditions",
    "count",
    "value",
    "complement_value",
    "ratio",
    "difference",
    "p_value",
    "q_value",
    "significant",
}


# --------------------------------------------------------------------------------------------------
# Helpers: data and a brute-force oracle (one boolean mask per subgroup)


def make_data(
    n: int, levels: Sequence[int], rng: np.random.Generator, rate: float = 0.5
) -> tuple[NDArray[Any], NDArray[Any], dict[str, NDArray[Any]]]:
    features = {f"f{i}": rng.integers(0, k, n) for i, k in enumerate(levels)}
    y_true = (rng.random(n) < 0.5).astype(int)
    y_pred = (rng.random(n) < rate).astype(int)
    return y_true, y_pred, features


def rate_rows(metric: str, y_true: NDArray[Any], y_pred: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Rows that enter the rate and their successes, written out independently of the module."""
    t, p = y_true == 1, y_pred == 1
    return {
        "selection_rate": (np.ones_like(t), p),
        "true_positive_rate": (t, p),
        "false_positive_rate": (~t, p),
        "false_negative_rate": (t, ~p),
        "accuracy": (np.ones_like(t), t == p),
    }[metric]


def brute_force(
    y_true: NDArray[Any],
    y_pred: NDArray[Any],
    features: Mapping[str, NDArray[Any]],
    metric: str,
    max_order: int,
    min_support: int,
    weights: NDArray[Any] | None = None,
) -> dict[frozenset[tuple[str, Any]], tuple[int, float, float]]:
    """conditions -> (count, value, complement value) for every subgroup the scan should test."""
    rows, success = rate_rows(metric, y_true, y_pred)
    w = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=float)
    total = int(rows.sum())
    counts: dict[frozenset[tuple[str, Any]], int] = {}
    out: dict[frozenset[tuple[str, Any]], tuple[int, float, float]] = {}
    names = list(features)
    for order in range(1, max_order + 1):
        for combo in itertools.combinations(names, order):
            for values in itertools.product(*(np.unique(features[c]).tolist() for c in combo)):
                mask = rows.copy()
                for c, v in zip(combo, values, strict=True):
                    mask &= features[c] == v
                key = frozenset(zip(combo, values, strict=True))
                count = int(mask.sum())
                counts[key] = count
                parents = [key - {cond} for cond in key] if order > 1 else []
                if count < min_support or count == total or any(counts[p] == count for p in parents):
                    continue
                inside, outside = mask, rows & ~mask
                value = float((w * success)[inside].sum() / w[inside].sum())
                complement = float((w * success)[outside].sum() / w[outside].sum())
                out[key] = (count, value, complement)
    return out


def by_conditions(result: ScanResult) -> dict[frozenset[tuple[str, Any]], dict[str, Any]]:
    return {frozenset(row["conditions"].items()): row for row in result.subgroups}


Z_TEST_MIN_EXPECTED = 1000  # the z-test decides where every expected cell is at least this (docs/scan.md)


def z_test_applies(n1: float, x_total: float, n_total: float) -> bool:
    pooled = x_total / n_total
    return min(n1, n_total - n1) * min(pooled, 1 - pooled) >= Z_TEST_MIN_EXPECTED


# --------------------------------------------------------------------------------------------------
# Counts, rates and the tests against the reference implementations


@pytest.mark.parametrize("metric", SCAN_METRICS)
def test_counts_and_rates_match_brute_force(metric: str) -> None:
    rng = np.random.default_rng(11)
    y_true, y_pred, features = make_data(3000, [3, 4, 2], rng, rate=0.3)
    result = scan(y_true, y_pred, features=features, metric=metric, max_order=3, min_support=20, top=None)
    expected = brute_force(y_true, y_pred, features, metric, 3, 20)
    got = by_conditions(result)
    assert set(got) == set(expected)
    assert result.subgroups_tested == len(expected) == len(result.subgroups)
    for key, (count, value, complement) in expected.items():
        row = got[key]
        assert row["count"] == count
        assert row["value"] == pytest.approx(value, abs=1e-12)
        assert row["complement_value"] == pytest.approx(complement, abs=1e-12)
        assert row["difference"] == pytest.approx(value - complement, abs=1e-12)
        assert row["ratio"] == pytest.approx(value / complement, rel=1e-12)


def test_z_test_p_values_match_statsmodels() -> None:
    rng = np.random.default_rng(3)
    y_true, y_pred, features = make_data(200_000, [3, 5, 4], rng, rate=0.4)
    y_pred = np.where((features["f0"] == 1) & (rng.random(200_000) < 0.05), 0, y_pred)  # some real signal
    result = scan(y_true, y_pred, features=features, min_support=30, top=None)
    n_total, x_total = len(y_pred), int(y_pred.sum())
    compared = 0
    for row in result.subgroups:
        n1 = row["count"]
        x1 = round(row["value"] * n1)
        assert z_test_applies(n1, x_total, n_total)
        _, p = proportions_ztest([x1, x_total - x1], [n1, n_total - n1])
        assert row["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12)
        compared += 1
    assert compared == result.subgroups_tested == result.test_counts["z"] > 50
    assert min(row["p_value"] for row in result.subgroups) < 1e-6
    assert max(row["p_value"] for row in result.subgroups) > 0.1


def test_small_counts_use_fisher_exact_matching_scipy() -> None:
    rng = np.random.default_rng(5)
    y_true, y_pred, features = make_data(4000, [6, 5, 3], rng, rate=0.02)
    result = scan(y_true, y_pred, features=features, min_support=15, top=None)
    n_total, x_total = len(y_pred), int(y_pred.sum())
    kinds = {"z": 0, "fisher": 0}
    for row in result.subgroups:
        n1 = row["count"]
        x1 = round(row["value"] * n1)
        if z_test_applies(n1, x_total, n_total):
            _, p = proportions_ztest([x1, x_total - x1], [n1, n_total - n1])
            kinds["z"] += 1
        else:
            table = [[x1, n1 - x1], [x_total - x1, n_total - n1 - x_total + x1]]
            p = fisher_exact(table, alternative="two-sided").pvalue
            kinds["fisher"] += 1
        assert row["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12)
    assert kinds == result.test_counts
    assert kinds["fisher"] > 50


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 3000),
    data=st.data(),
)
def test_fisher_exact_matches_scipy(n: int, data: st.DataObject) -> None:
    n1 = data.draw(st.integers(1, n - 1) if n > 1 else st.just(1))
    k = data.draw(st.integers(0, n))
    x = data.draw(st.integers(max(0, k - (n - n1)), min(n1, k)))
    ours = scan_module._fisher_exact(np.array([x]), np.array([n1]), np.array([k]), np.array([n]))[0]
    theirs = fisher_exact([[x, n1 - x], [k - x, n - n1 - k + x]]).pvalue
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-14)


def test_fisher_exact_vectorised_over_many_tables_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    n = rng.integers(2, 3000, 400)
    n1 = np.array([rng.integers(1, v) for v in n])
    k = np.array([rng.integers(0, v + 1) for v in n])
    lo, hi = np.maximum(0, k - (n - n1)), np.minimum(n1, k)
    x = np.array([rng.integers(a, b + 1) for a, b in zip(lo, hi, strict=True)])
    expected = [
        fisher_exact([[a, b - a], [c - a, d - b - c + a]]).pvalue
        for a, b, c, d in zip(x, n1, k, n, strict=True)
    ]
    monkeypatch.setattr(scan_module, "_FISHER_CHUNK", 5000)  # many chunks, some tables alone in one
    got = scan_module._fisher_exact(x, n1, k, n)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-14)


def test_q_values_and_rejections_match_statsmodels_bh() -> None:
    rng = np.random.default_rng(21)
    y_true, y_pred, features = make_data(20_000, [4, 4, 3, 5], rng, rate=0.5)
    y_pred = np.where((features["f1"] == 2) & (rng.random(20_000) < 0.08), 0, y_pred)
    result = scan(y_true, y_pred, features=features, top=None, alpha=ALPHA)
    p = np.array([row["p_value"] for row in result.subgroups])
    reject, q, _, _ = multipletests(p, alpha=ALPHA, method="fdr_bh")
    np.testing.assert_allclose([row["q_value"] for row in result.subgroups], q, rtol=1e-9, atol=1e-15)
    assert [row["significant"] for row in result.subgroups] == reject.tolist()
    assert 0 < result.significant == int(reject.sum()) < result.subgroups_tested


@settings(max_examples=150, deadline=None)
@given(
    p=st.lists(
        st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1e-300, 0.01, 0.05, 1.0])), min_size=1, max_size=80
    ),
    alpha=st.floats(0.001, 0.5),
)
def test_benjamini_hochberg_matches_statsmodels_with_ties(p: list[float], alpha: float) -> None:
    q, reject = scan_module._benjamini_hochberg(np.array(p), alpha)
    expected_reject, expected_q, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    np.testing.assert_allclose(q, expected_q, rtol=1e-12, atol=1e-300)
    assert reject.tolist() == expected_reject.tolist()


# --------------------------------------------------------------------------------------------------
# What the scan finds


def test_planted_two_condition_bias_is_found_and_ranked_first() -> None:
    rng = np.random.default_rng(2024)
    n = 200_000
    features = {
        "region": np.array(["north", "south", "east", "west", "centre"])[rng.integers(0, 5, n)],
        "age_band": np.array(["18-24", "25-39", "40-59", "60+"])[rng.integers(0, 4, n)],
        "channel": rng.integers(0, 3, n),
        "segment": rng.integers(0, 5, n),
    }
    planted = (features["region"] == "east") & (features["age_band"] == "18-24")
    y_pred = (rng.random(n) < np.where(planted, 0.35, 0.5)).astype(int)
    y_true = rng.integers(0, 2, n)
    result = scan(y_true, y_pred, features=features)
    first = result.subgroups[0]
    assert first["conditions"] == {"region": "east", "age_band": "18-24"}
    assert first["significant"]
    assert first["difference"] == pytest.approx(-0.15, abs=0.02)
    assert first["value"] == pytest.approx(0.35, abs=0.02)
    assert result.worst_difference == first["difference"]
    assert result.worst_ratio == pytest.approx(first["value"] / first["complement_value"])
    assert result.worst_subgroup == first
    assert result.worst_ratio < 0.8


def test_harm_direction_follows_the_metric() -> None:
    # A subgroup whose false positive rate is high is the harmed one (negative harm for that metric).
    rng = np.random.default_rng(9)
    n = 40_000
    y_true, _, features = make_data(n, [4, 3], rng)
    target = features["f0"] == 2
    false_positive = rng.random(n) < np.where(target, 0.3, 0.1)
    y_pred = np.where(y_true == 1, rng.random(n) < 0.8, false_positive).astype(int)
    fpr = scan(y_true, y_pred, features=features, metric="false_positive_rate")
    assert fpr.subgroups[0]["conditions"] == {"f0": 2}
    assert fpr.subgroups[0]["value"] > fpr.subgroups[0]["complement_value"]
    assert fpr.worst_ratio == pytest.approx(
        fpr.subgroups[0]["complement_value"] / fpr.subgroups[0]["value"]
    )  # lower rate over higher
    assert fpr.worst_difference > 0.15
    # The same rows seen as accuracy: actual negatives predicted positive are errors.
    acc = scan(y_true, y_pred, features=features, metric="accuracy")
    assert acc.subgroups[0]["conditions"] == {"f0": 2}
    assert acc.subgroups[0]["difference"] < 0


def test_rows_sorted_by_q_then_harm_and_top_keeps_the_head() -> None:
    rng = np.random.default_rng(4)
    y_true, y_pred, features = make_data(30_000, [2, 3, 4], rng)
    y_pred = np.where((features["f2"] == 0) & (rng.random(30_000) < 0.1), 0, y_pred)
    every = scan(y_true, y_pred, features=features, top=None)
    keys = [(row["q_value"], row["difference"]) for row in every.subgroups]
    assert keys == sorted(keys, key=lambda k: k[0]) and any(
        a[0] == b[0] for a, b in itertools.pairwise(keys)
    )  # q ties exist: BH ties are common
    for a, b in itertools.pairwise(keys):
        if a[0] == b[0]:
            assert a[1] <= b[1]  # selection rate: lower difference, more harm, first
    head = scan(y_true, y_pred, features=features, top=5)
    assert head.subgroups == every.subgroups[:5]
    assert (head.subgroups_tested, head.significant) == (every.subgroups_tested, every.significant)
    # A binary feature's two values are complements with one test: the harmed side comes first.
    f0 = [row for row in every.subgroups if set(row["conditions"]) == {"f0"}]
    assert len(f0) == 2 and f0[0]["p_value"] == pytest.approx(f0[1]["p_value"], rel=1e-12)


def test_redundant_conjunctions_are_not_tested() -> None:
    rng = np.random.default_rng(6)
    n = 5000
    city = rng.integers(0, 6, n)
    features = {"city": city, "country": np.where(city < 3, "A", "B"), "sex": rng.integers(0, 2, n)}
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    result = scan(y_true, y_pred, features=features, top=None, min_support=1)
    conditions = [row["conditions"] for row in result.subgroups]
    assert not any({"city", "country"} <= set(c) for c in conditions)  # city implies country
    assert {"city": 1} in conditions and {"country": "A"} in conditions
    assert result.subgroups_tested == len(brute_force(y_true, y_pred, features, "selection_rate", 2, 1))


# --------------------------------------------------------------------------------------------------
# False alarms on data without bias


def any_significant_rate(draws: int, seed: int, **kwargs: Any) -> float:
    rng = np.random.default_rng(seed)
    n, levels = kwargs.pop("n", 2000), kwargs.pop("levels", [3, 3, 4, 2])
    rate, weighted = kwargs.pop("rate", 0.3), kwargs.pop("weighted", False)
    hits = 0
    for _ in range(draws):
        y_true, y_pred, features = make_data(n, levels, rng, rate=rate)
        weights = rng.gamma(2.0, 1.0, n) if weighted else None
        result = scan(y_true, y_pred, features=features, sample_weight=weights, **kwargs)
        hits += result.significant > 0
    return hits / draws


def binomial_ceiling(target: float, draws: int) -> float:
    """One-sided tolerance: rate <= target + 2.5 SE."""
    return target + 2.5 * math.sqrt(target * (1 - target) / draws)


def test_null_data_any_significant_at_most_alpha() -> None:
    # Small subgroups: Fisher's exact test decides.
    draws = 1000
    rate = any_significant_rate(draws, seed=100, alpha=ALPHA)
    assert rate <= binomial_ceiling(ALPHA, draws)


def test_null_data_any_significant_at_most_alpha_z_test() -> None:
    # Large subgroups: the z-test decides (the slow variant runs 600 draws).
    draws = 300
    rate = any_significant_rate(draws, seed=101, alpha=ALPHA, n=60_000, levels=[3, 3, 2], rate=0.5)
    assert rate <= binomial_ceiling(ALPHA, draws)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        {"metric": "true_positive_rate", "n": 3000},
        {"rate": 0.02, "n": 4000, "min_support": 20},  # rare positives
        {"n": 60_000, "levels": [3, 3, 2], "rate": 0.5},  # the z-test decides
        {"weighted": True},
        {"weighted": True, "n": 60_000, "levels": [3, 3, 2], "rate": 0.5},
        {"max_order": 3, "levels": [3, 3, 2, 2, 2], "n": 3000},
        {"alpha": 0.2},
    ],
    ids=["tpr", "rare", "z-test", "weighted", "weighted-z-test", "order3", "alpha0.2"],
)
def test_null_data_any_significant_at_most_alpha_slow(case: dict[str, Any]) -> None:
    draws = 600
    alpha = case.get("alpha", ALPHA)
    rate = any_significant_rate(draws, seed=7, **{"alpha": ALPHA, **case})
    assert rate <= binomial_ceiling(alpha, draws)


# --------------------------------------------------------------------------------------------------
# Weights


def test_unit_weights_give_the_unweighted_scan() -> None:
    rng = np.random.default_rng(12)
    y_true, y_pred, features = make_data(4000, [4, 3, 5], rng, rate=0.01)
    plain = scan(y_true, y_pred, features=features, top=None, min_support=10)
    weighted = scan(y_true, y_pred, features=features, top=None, min_support=10, sample_weight=np.ones(4000))
    assert weighted.test_counts == plain.test_counts and plain.test_counts["fisher"] > 0
    assert [r["conditions"] for r in weighted.subgroups] == [r["conditions"] for r in plain.subgroups]
    for a, b in zip(weighted.subgroups, plain.subgroups, strict=True):
        for name in ("count", "value", "complement_value", "p_value", "q_value", "significant"):
            assert a[name] == pytest.approx(b[name], rel=1e-9, abs=1e-15)


def test_weighted_rates_and_tests_on_kish_effective_counts() -> None:
    rng = np.random.default_rng(13)
    n = 60_000
    y_true, y_pred, features = make_data(n, [3, 4, 5], rng, rate=0.4)
    w = rng.gamma(1.5, 2.0, n)
    result = scan(y_true, y_pred, features=features, sample_weight=w, top=None, metric="true_positive_rate")
    expected = brute_force(y_true, y_pred, features, "true_positive_rate", 2, 30, weights=w)
    got = by_conditions(result)
    assert set(got) == set(expected)
    rows, _ = rate_rows("true_positive_rate", y_true, y_pred)
    kinds = {"z": 0, "fisher": 0}
    for key, (count, value, complement) in expected.items():
        row = got[key]
        assert (row["count"], row["value"]) == (count, pytest.approx(value, rel=1e-12))
        assert row["complement_value"] == pytest.approx(complement, rel=1e-12)
        mask = rows.copy()
        for feature, level in key:
            mask &= features[feature] == level
        outside = rows & ~mask
        n_in = w[mask].sum() ** 2 / (w[mask] ** 2).sum()  # Kish's effective sample sizes
        n_out = w[outside].sum() ** 2 / (w[outside] ** 2).sum()
        a_in, a_out = value * n_in, complement * n_out
        if z_test_applies(n_in, a_in + a_out, n_in + n_out):
            _, p = proportions_ztest([a_in, a_out], [n_in, n_out])
            kinds["z"] += 1
        else:  # Fisher's exact test on the effective counts, rounded
            x1, m1, x2, m2 = (round(v) for v in (a_in, n_in, a_out, n_out))
            p = fisher_exact([[x1, m1 - x1], [x2, m2 - x2]]).pvalue
            kinds["fisher"] += 1
        assert row["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-12)
    assert kinds == result.test_counts and min(kinds.values()) > 10


def test_weights_do_not_change_row_counts_and_zero_weight_subgroups_are_skipped() -> None:
    rng = np.random.default_rng(14)
    n = 3000
    y_true, y_pred, features = make_data(n, [3, 2], rng)
    w = np.where(features["f0"] == 0, 0.0, 1.0)
    result = scan(y_true, y_pred, features=features, sample_weight=w, top=None)
    assert all(0 not in (row["conditions"].get("f0"),) for row in result.subgroups)
    assert any("zero total sample_weight" in warning for warning in result.warnings)
    counts = {frozenset(r["conditions"].items()): r["count"] for r in result.subgroups}
    assert counts[frozenset({("f1", 1)})] == int((features["f1"] == 1).sum())  # rows, not weights


# --------------------------------------------------------------------------------------------------
# Inputs


def test_input_forms_give_the_same_scan() -> None:
    rng = np.random.default_rng(15)
    n = 3000
    sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
    band = np.array(["18-24", "25-59", "60+"])[rng.integers(0, 3, n)]
    score = rng.integers(1, 4, n)
    y_true, y_pred = rng.integers(0, 2, n), (rng.random(n) < np.where(sex == "female", 0.3, 0.4)).astype(int)
    flag = rng.random(n) < 0.5
    as_dict = {"sex": sex, "band": band, "score": score, "flag": flag}
    reference = scan(y_true, y_pred, features=as_dict, top=None)
    frames: list[Any] = [
        pd.DataFrame(as_dict),
        pd.DataFrame({"sex": pd.Categorical(sex), "band": band.astype(object), "score": score, "flag": flag}),
        pd.DataFrame(
            {
                "sex": pd.array(sex, dtype="string"),
                "band": band,
                "score": pd.array(score, "Int64"),
                "flag": pd.array(flag, "boolean"),
            }
        ),
        pl.DataFrame(as_dict),
        pl.DataFrame(
            {"sex": pl.Series(sex).cast(pl.Categorical), "band": band, "score": score, "flag": flag}
        ),
        pa.table(as_dict),
        {"sex": sex.tolist(), "band": list(band), "score": score.tolist(), "flag": pa.array(flag)},
    ]
    labels: list[tuple[Any, Any]] = [
        (pd.Series(y_true), y_pred.tolist()),
        (pl.Series(y_true), pa.array(y_pred)),
        (pa.chunked_array([y_true[:100], y_true[100:]]), pd.DataFrame({"p": y_pred})),
    ]
    for i, frame in enumerate(frames):
        truth, predicted = labels[i % len(labels)]
        result = scan(truth, predicted, features=frame, top=None)
        assert result.subgroups == reference.subgroups, type(frame)
    assert reference.feature_names == ("sex", "band", "score", "flag")


def test_categorical_order_and_unused_categories() -> None:
    rng = np.random.default_rng(16)
    n = 2000
    bands = pd.Categorical(
        np.array(["old", "young"])[rng.integers(0, 2, n)], categories=["young", "old", "unused"], ordered=True
    )
    result = scan(rng.integers(0, 2, n), rng.integers(0, 2, n), features={"band": bands}, top=None)
    assert {row["conditions"]["band"] for row in result.subgroups} == {"young", "old"}


def test_a_feature_with_a_single_value_is_named_in_the_warnings() -> None:
    rng = np.random.default_rng(21)
    n = 1000
    one_used = pd.Categorical(["b"] * n, categories=["a", "b", "c"])  # unused categories: still one value
    features = {"constant": np.full(n, 7), "one_used": one_used, "x": rng.integers(0, 2, n)}
    result = scan(rng.integers(0, 2, n), rng.integers(0, 2, n), features=features)
    single = [w for w in result.warnings if "has a single value" in w]
    assert single == [
        f"features[{name!r}] has a single value: its condition selects every row and is not tested"
        for name in ("constant", "one_used")
    ]
    assert {name for row in result.subgroups for name in row["conditions"]} == {"x"}


def test_labels_follow_pos_label() -> None:
    rng = np.random.default_rng(17)
    n = 2000
    y_true, y_pred, features = make_data(n, [3], rng)
    reference = scan(y_true, y_pred, features=features, metric="true_positive_rate")
    words = np.array(["no", "yes"])
    as_words = scan(
        words[y_true], words[y_pred], features=features, metric="true_positive_rate", pos_label="yes"
    )
    assert as_words.subgroups == reference.subgroups
    signs = scan(2 * y_true - 1, 2 * y_pred - 1, features=features, metric="true_positive_rate")
    assert signs.subgroups == reference.subgroups
    flipped = scan(1 - y_true, 1 - y_pred, features=features, metric="true_positive_rate", pos_label=0)
    assert flipped.subgroups == reference.subgroups
    assert (
        scan(y_true.astype(bool), y_pred.astype(bool), features=features).subgroups
        == scan(y_true, y_pred, features=features).subgroups
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    levels=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    n=st.integers(1, 400),
    metric=st.sampled_from(SCAN_METRICS),
    max_order=st.integers(1, 3),
    min_support=st.integers(1, 40),
)
def test_scan_matches_brute_force_property(
    seed: int, levels: list[int], n: int, metric: str, max_order: int, min_support: int
) -> None:
    rng = np.random.default_rng(seed)
    y_true, y_pred, features = make_data(n, levels, rng, rate=float(rng.random()))
    result = scan(
        y_true,
        y_pred,
        features=features,
        metric=metric,
        max_order=max_order,
        min_support=min_support,
        top=None,
    )
    expected = brute_force(y_true, y_pred, features, metric, min(max_order, len(levels)), min_support)
    got = by_conditions(result)
    assert set(got) == set(expected)
    for key, (count, value, complement) in expected.items():
        assert got[key]["count"] == count
        assert got[key]["value"] == pytest.approx(value, abs=1e-12)
        assert got[key]["complement_value"] == pytest.approx(complement, abs=1e-12)
        assert 0.0 <= got[key]["p_value"] <= 1.0 and got[key]["p_value"] <= got[key]["q_value"] <= 1.0
    # Shuffling rows changes nothing.
    perm = rng.permutation(n)
    shuffled = scan(
        y_true[perm],
        y_pred[perm],
        features={k: v[perm] for k, v in features.items()},
        metric=metric,
        max_order=max_order,
        min_support=min_support,
        top=None,
    )
    assert shuffled.subgroups == result.subgroups


# --------------------------------------------------------------------------------------------------
# Result


def test_result_values_are_plain_python_and_json_ready() -> None:
    rng = np.random.default_rng(18)
    y_true, y_pred, features = make_data(5000, [3, 3], rng)
    features["flag"] = rng.random(5000) < 0.5
    features["level"] = rng.integers(0, 3, 5000).astype(np.float64)
    result = scan(y_true, y_pred, features=features, scope="audit")
    metrics = result.metrics()
    assert list(metrics) == [
        "audit/selection_rate.subgroups_tested",
        "audit/selection_rate.significant",
        "audit/selection_rate.worst_ratio",
        "audit/selection_rate.worst_difference",
    ]
    assert [type(v) for v in metrics.values()] == [float] * 4  # recorded keys are floats
    for row in result.subgroups:
        assert set(row) == ROW_KEYS
        assert type(row["count"]) is int and type(row["significant"]) is bool
        assert all(type(row[k]) is float for k in ROW_KEYS - {"conditions", "count", "significant"})
        assert all(type(v) in (int, float, str, bool) for v in row["conditions"].values())
    entry = result.report_entry()
    assert entry == {
        "metric": "selection_rate",
        "subgroups_tested": result.subgroups_tested,
        "rows": result.subgroups,
    }
    json.dumps(entry, allow_nan=False)
    assert "ScanResult(scope='audit'" in repr(result)


def test_to_pandas() -> None:
    rng = np.random.default_rng(19)
    y_true, y_pred, features = make_data(3000, [3, 2], rng)
    result = scan(y_true, y_pred, features=features, top=8)
    frame = result.to_pandas()
    assert list(frame.columns) == [
        "f0",
        "f1",
        "count",
        "value",
        "complement_value",
        "ratio",
        "difference",
        "p_value",
        "q_value",
        "significant",
    ]
    assert len(frame) == 8
    assert frame["count"].dtype == np.int64 and frame["significant"].dtype == bool
    for (_, line), row in zip(frame.iterrows(), result.subgroups, strict=True):
        assert {k: line[k] for k in ("f0", "f1") if line[k] is not None} == row["conditions"]
        assert line["q_value"] == row["q_value"]


def test_nothing_meets_min_support_warns_and_tests_nothing() -> None:
    rng = np.random.default_rng(20)
    y_true, y_pred, features = make_data(100, [3, 3], rng)
    result = scan(y_true, y_pred, features=features, min_support=1000)
    assert result.subgroups_tested == 0 and result.subgroups == []
    assert result.metrics() == {
        "scan/selection_rate.subgroups_tested": 0,
        "scan/selection_rate.significant": 0,
        "scan/selection_rate.worst_ratio": 1.0,
        "scan/selection_rate.worst_difference": 0.0,
    }
    assert any("min_support=1000" in w for w in result.warnings)
    no_positives = scan(np.zeros(100, int), y_pred, features=features, metric="true_positive_rate")
    assert no_positives.subgroups_tested == 0
    assert any("actual positive" in w for w in no_positives.warnings)


def test_no_significant_subgroup_gives_neutral_worst_values() -> None:
    rng = np.random.default_rng(22)
    y_true, y_pred, features = make_data(500, [2, 2], rng)
    result = scan(y_true, y_pred, features=features, alpha=1e-12)
    assert result.subgroups_tested > 0 and result.significant == 0
    assert (result.worst_ratio, result.worst_difference, result.worst_subgroup) == (1.0, 0.0, None)


def test_package_scan_is_the_function_whichever_import_came_first() -> None:
    # The computation lives in ``subgroup_scan`` so that no submodule shadows the exported function.
    import pytest_fairmind

    assert pytest_fairmind.scan is scan
    assert pytest_fairmind.ScanResult is ScanResult
    y_true, y_pred, features = small_data()
    assert (
        pytest_fairmind.scan(y_true, y_pred, features=features).subgroups
        == scan(y_true, y_pred, features=features).subgroups
    )


def test_module_imports_numpy_only() -> None:
    tree = ast.parse(Path(scan_module.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {
        "__future__",
        "inspect",
        "itertools",
        "re",
        "types",
        "math",
        "sys",
        "collections",
        "dataclasses",
        "typing",
        "numpy",
        "pytest_fairmind",  # metrics.inputs / metrics.labels: the shared input readers
    }


# --------------------------------------------------------------------------------------------------
# Errors


def small_data() -> tuple[NDArray[Any], NDArray[Any], dict[str, NDArray[Any]]]:
    return make_data(200, [3, 2], np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "precision"}, "metric must be one of"),
        ({"metric": ["accuracy"]}, "metric must be one of"),
        ({"max_order": 0}, "max_order must be an int >= 1"),
        ({"max_order": 1.5}, "max_order must be an int >= 1"),
        ({"min_support": 0}, "min_support must be an int >= 1"),
        ({"alpha": 0}, "alpha must be a level between 0 and 1"),
        ({"alpha": 1.0}, "alpha must be a level between 0 and 1"),
        ({"alpha": "0.05"}, "alpha must be a level between 0 and 1"),
        ({"top": 0}, "top must be an int >= 1 or None"),
        ({"scope": ""}, "scope must be a non-empty str"),
        ({"max_subgroups": 5}, "max_subgroups="),
        ({"max_levels": 2}, "max_levels="),
        ({"sample_weight": np.ones(10)}, "sample_weight has 10 rows"),
        ({"sample_weight": -np.ones(200)}, "sample_weight contains negative values"),
        ({"pos_label": [1]}, "pos_label must be a single label"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, Any], message: str) -> None:
    y_true, y_pred, features = small_data()
    with pytest.raises(ValueError, match=message):
        scan(y_true, y_pred, features=features, **kwargs)


def test_limits_say_how_to_raise_them() -> None:
    rng = np.random.default_rng(1)
    features = {f"f{i}": rng.integers(0, 10, 1000) for i in range(6)}
    too_many = r"1,560 candidate subgroups, more than max_subgroups=1,000: raise max_subgroups="
    with pytest.raises(ValueError, match=too_many):
        scan(rng.integers(0, 2, 1000), rng.integers(0, 2, 1000), features=features, max_subgroups=1000)
    ids = {"id": np.arange(1000)}
    with pytest.raises(
        ValueError, match=r"features\['id'\] has 1000 distinct values, more than max_levels=100"
    ):
        scan(rng.integers(0, 2, 1000), rng.integers(0, 2, 1000), features=ids)
    with pytest.raises(ValueError, match=r"features\['id'\] has 1000 distinct values"):
        scan(rng.integers(0, 2, 1000), rng.integers(0, 2, 1000), features={"id": np.arange(1000).astype(str)})
    ok = scan(
        rng.integers(0, 2, 1000), rng.integers(0, 2, 1000), features=ids, max_levels=1000, min_support=1
    )
    assert ok.subgroups_tested == 1000


@pytest.mark.parametrize(
    ("y_true", "y_pred", "features", "message"),
    [
        (np.zeros(10), np.zeros(9), {"a": np.zeros(10)}, "y_pred has 9 rows but y_true has 10"),
        (np.zeros(10), np.zeros(10), {"a": np.zeros(9)}, r"features\['a'\] has 9 rows"),
        (np.zeros(0), np.zeros(0), {"a": np.zeros(0)}, "y_true is empty"),
        (np.zeros(4), np.zeros(4), [[0, 1, 0, 1]], "features must be a DataFrame"),
        (np.zeros(4), np.zeros(4), {}, "features has no columns"),
        (np.zeros(4), np.zeros(4), {"a": [0.0, np.nan, 1.0, 1.0]}, "missing values"),
        (np.zeros(4), np.zeros(4), {"a": ["x", None, "y", "y"]}, "missing values"),
        (np.zeros(4), np.zeros(4), {"a": pd.Series(["x", None, "y", "y"])}, "missing values"),
        (np.zeros(4), np.zeros(4), {"a": pl.Series([1, None, 2, 2])}, "missing values"),
        (np.array([0, 2, 1, 0]), np.zeros(4), {"a": np.zeros(4)}, "pos_label=1 .the default."),
        (np.array(["a", "b", "a", "b"]), np.zeros(4), {"a": np.zeros(4)}, "pass pos_label=<one of"),
        (np.array([0.0, np.nan, 1, 0]), np.zeros(4), {"a": np.zeros(4)}, "y_true contains missing values"),
        (np.array([0, -1, 1, 0]), np.zeros(4), {"a": np.zeros(4)}, "a scan needs binary labels"),
        (np.array([0, 1, 1, 0]), -np.ones(4), {"a": np.zeros(4)}, r"mix labels \[-1.0, 0, 1\]"),
        (np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.6, 0.1]), {"a": np.zeros(4)}, "threshold the scores"),
        (np.zeros((4, 2)), np.zeros(4), {"a": np.zeros(4)}, "y_true must be 1-D"),
        ("0101", np.zeros(4), {"a": np.zeros(4)}, "y_true must be a 1-D array-like"),
        (np.zeros(4), np.zeros(4), {"a": np.zeros((4, 2))}, r"features\['a'\] must be 1-D"),
    ],
)
def test_bad_data_raises_naming_the_argument(y_true: Any, y_pred: Any, features: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scan(y_true, y_pred, features=features)


def test_unknown_labels_with_explicit_pos_label() -> None:
    features = {"a": np.zeros(4)}
    with pytest.raises(ValueError, match="is not one of the labels"):
        scan(np.array(["a", "b", "a", "b"]), np.array(["a", "b", "a", "b"]), features=features, pos_label="c")
    with pytest.raises(ValueError, match="binary labels allow one negative label"):
        scan(np.array(["a", "b", "c", "b"]), np.array(["a", "b", "a", "b"]), features=features, pos_label="a")
