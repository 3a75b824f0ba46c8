"""The metrics engine against fairlearn as oracle, its NaN policy, min_group_size and bootstrap intervals."""

from __future__ import annotations

import json
import math
import warnings
from functools import partial
from typing import Any, Literal

import fairlearn.metrics as fairlearn_metrics
import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as sklearn_metrics
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from pytest_fairmind.metrics import (
    AGGREGATE_METRICS,
    FairnessResult,
    assess,
    bootstrap,
    counting,
    rates,
    table,
)
from pytest_fairmind.metrics.table import ALL_CELLS, FN, FP, TN, TP, Aggregate, GroupColumn, Kind, Table

FAIRNESS = AGGREGATE_METRICS[:6]
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

FEATURE_VALUES: dict[str, list[Any]] = {
    "int": [3, -1, 10, 7],
    "str": ["b", "a", "d", "c"],
    "bool": [True, False],
}


# --------------------------------------------------------------------------------------------------
# Oracle


def fairlearn_reference(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sf: pd.DataFrame,
    weights: np.ndarray | None,
    functions: bool = False,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """fairlearn's per-group table (empty intersections dropped) and aggregate metrics.

    The aggregates come from fairlearn's metric functions when ``functions`` is true, else from one
    MetricFrame's ``difference()``/``ratio()`` exactly as those functions compute them (much faster).
    """
    sw = {"sample_weight": weights} if weights is not None else {}
    fns: dict[str, Any] = {
        "count": count,
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "accuracy": accuracy_score,
    }
    params = {name: sw for name in fns if name != "count"} if sw else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = MetricFrame(
            metrics=fns, y_true=y_true, y_pred=y_pred, sensitive_features=sf, sample_params=params
        )
        diff, ratio = mf.difference(method="between_groups"), mf.ratio(method="between_groups")
        eo = ["true_positive_rate", "false_positive_rate"]
        agg = {
            "demographic_parity_difference": diff["selection_rate"],
            "demographic_parity_ratio": ratio["selection_rate"],
            "equalized_odds_difference": max(diff[eo]),
            "equalized_odds_ratio": min(ratio[eo]),
            "equal_opportunity_difference": diff["true_positive_rate"],
            "equal_opportunity_ratio": ratio["true_positive_rate"],
            "accuracy": mf.overall["accuracy"],
            "selection_rate": mf.overall["selection_rate"],
        }
        if functions:
            kw = {"sensitive_features": sf, "sample_weight": weights}
            agg = {
                "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, **kw),
                "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, **kw),
                "equalized_odds_difference": equalized_odds_difference(y_true, y_pred, **kw),
                "equalized_odds_ratio": equalized_odds_ratio(y_true, y_pred, **kw),
                "equal_opportunity_difference": equal_opportunity_difference(y_true, y_pred, **kw),
                "equal_opportunity_ratio": equal_opportunity_ratio(y_true, y_pred, **kw),
                "accuracy": accuracy_score(y_true, y_pred, sample_weight=weights),
                "selection_rate": selection_rate(y_true, y_pred, sample_weight=weights),
            }
    by_group = mf.by_group.dropna(subset=["count"])
    return by_group, {k: float(v) for k, v in agg.items()}


def policy(rates: dict[str, np.ndarray], defined: dict[str, np.ndarray]) -> dict[str, float]:
    """Aggregates under the documented policy: undefined rates leave; fewer than 2 groups left or max 0
    give NaN; data with a single group gives fairlearn's 0 difference and ratio 1."""
    single = len(rates["selection_rate"]) == 1

    def between(name: str) -> tuple[float, float, bool]:
        values = rates[name][defined[name]]
        if len(values) < 2 and not (single and len(values) == 1):
            return math.nan, math.nan, False
        hi, lo = float(values.max()), float(values.min())
        return hi - lo, (lo / hi if hi > 0 else math.nan), hi == 0

    dp, tpr, fpr = between("selection_rate"), between("true_positive_rate"), between("false_positive_rate")
    nan_max = math.nan if math.isnan(tpr[0]) or math.isnan(fpr[0]) else max(tpr[0], fpr[0])
    # A component at 0 in every group (exact parity) is skipped; otherwise NaN propagates.
    parts = [r for r, zero in ((tpr[1], tpr[2]), (fpr[1], fpr[2])) if not zero]
    nan_min = math.nan if not parts or any(math.isnan(r) for r in parts) else min(parts)
    return {
        "demographic_parity_difference": dp[0],
        "demographic_parity_ratio": dp[1],
        "equalized_odds_difference": nan_max,
        "equalized_odds_ratio": nan_min,
        "equal_opportunity_difference": tpr[0],
        "equal_opportunity_ratio": tpr[1],
    }


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


@st.composite
def datasets(draw: st.DrawFn, max_features: int = 3) -> dict[str, Any]:
    n = draw(st.integers(1, 80))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    features: dict[str, np.ndarray] = {}
    for j in range(draw(st.integers(1, max_features))):
        kind = draw(st.sampled_from(sorted(FEATURE_VALUES)))
        pool = FEATURE_VALUES[kind]
        k = draw(st.integers(1, len(pool)))
        codes = rng.integers(0, k, n)
        features[f"f{j}"] = np.array(pool, dtype=object if kind == "str" else None)[codes]
    p_true = draw(st.sampled_from([0.05, 0.5, 0.95]))
    y_true = (rng.random(n) < p_true).astype(np.int64)
    y_pred = np.where(rng.random(n) < draw(st.sampled_from([0.5, 0.8, 1.0])), y_true, 1 - y_true)
    weighted = draw(st.booleans())
    weights = rng.uniform(0.1, 10.0, n) if weighted else None
    return {
        "y_true": y_true,
        "y_pred": y_pred,
        "features": features,
        "weights": weights,
        "labels": draw(st.sampled_from(["01", "-11", "bool", "str"])),
        "container": draw(st.sampled_from(["frame", "dict", "list", "ndarray"])),
    }


def encode(y: np.ndarray, kind: str) -> Any:
    if kind == "-11":
        return np.where(y == 1, 1, -1)
    if kind == "bool":
        return y == 1
    if kind == "str":
        return list(np.where(y == 1, "yes", "no"))
    return y


def package(features: dict[str, np.ndarray], container: str) -> Any:
    if container == "frame":
        return pd.DataFrame(features)
    if container == "list":
        return [pd.Series(v, name=k) for k, v in features.items()]
    if container == "ndarray" and len(features) == 1:
        return pd.Series(next(iter(features.values())), name="f0")
    return dict(features)


# --------------------------------------------------------------------------------------------------
# Properties against fairlearn


@PROPERTY
@given(datasets())
def test_matches_fairlearn_where_defined_and_policy_elsewhere(data: dict[str, Any]) -> None:
    check_against_fairlearn(data, functions=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(max_features=2))
def test_matches_fairlearn_metric_functions(data: dict[str, Any]) -> None:
    check_against_fairlearn(data, functions=True)


def check_against_fairlearn(data: dict[str, Any], functions: bool) -> None:
    y_true, y_pred, weights = data["y_true"], data["y_pred"], data["weights"]
    features = data["features"]
    pos = "yes" if data["labels"] == "str" else 1
    result = assess(
        encode(y_true, data["labels"]),
        encode(y_pred, data["labels"]),
        sensitive_features=package(features, data["container"]),
        sample_weight=weights,
        pos_label=pos,
    )
    frame = pd.DataFrame(features)
    fl_labels = data["labels"] if data["labels"] in ("-11", "bool") else "01"
    ref_groups, ref = fairlearn_reference(
        encode(y_true, fl_labels), encode(y_pred, fl_labels), frame, weights, functions
    )

    # Same groups, same order (fairlearn's), plain labels, same per-group numbers.
    assert result.scope == ".".join(features)
    assert len(result.by_group) == len(ref_groups)
    for row, (index, ref_row) in zip(result.by_group, ref_groups.iterrows(), strict=True):
        key = index if isinstance(index, tuple) else (index,)
        assert tuple(row["group"].values()) == tuple(v.item() if hasattr(v, "item") else v for v in key)
        assert list(row["group"]) == list(features)
        assert row["count"] == int(ref_row["count"])
        assert close(row["selection_rate"], ref_row["selection_rate"])
        assert close(row["accuracy"], ref_row["accuracy"])
    masks = group_masks(features, result)
    positives = np.array([bool(np.any((y_true == 1) & mask)) for mask in masks])
    negatives = np.array([bool(np.any((y_true == 0) & mask)) for mask in masks])
    for i, row in enumerate(result.by_group):
        ref_row = ref_groups.iloc[i]
        for rate, has in (("true_positive_rate", positives[i]), ("false_positive_rate", negatives[i])):
            if has:
                assert close(row[rate], ref_row[rate])
            else:  # fairlearn says 0.0; we say undefined
                assert math.isnan(row[rate])
                assert ref_row[rate] == 0.0
                assert any(rate in w and "undefined" in w for w in result.warnings)

    # Aggregates: fairlearn's numbers when every rate is defined in >= 2 groups, else the policy.
    rates = {name: ref_groups[name].to_numpy(dtype=float) for name in RATES}
    defined = {
        "selection_rate": np.ones(len(ref_groups), dtype=bool),
        "true_positive_rate": positives,
        "false_positive_rate": negatives,
    }
    expected = policy(rates, defined)
    for name in FAIRNESS:
        assert close(getattr(result, name), expected[name]), name
    if len(ref_groups) >= 2 and positives.all() and negatives.all():
        tpr_all_zero = bool((rates["true_positive_rate"] == 0).all())
        for name in FAIRNESS:
            if name == "equalized_odds_ratio" and tpr_all_zero:
                # fairlearn's min([nan, fpr_ratio]) is NaN by position; we use the FPR ratio.
                continue
            assert close(getattr(result, name), ref[name]), name
    assert close(result.accuracy, ref["accuracy"])
    assert close(result.selection_rate, ref["selection_rate"])
    assert result.count == len(y_true)
    json.dumps(result.by_group, allow_nan=True)
    json.dumps(result.metrics(), allow_nan=True)


def group_masks(features: dict[str, np.ndarray], result: FairnessResult) -> list[np.ndarray]:
    masks = []
    for row in result.by_group:
        mask = np.ones(len(next(iter(features.values()))), dtype=bool)
        for name, label in row["group"].items():
            mask &= np.asarray(features[name] == label, dtype=bool)
        masks.append(mask)
    return masks


@PROPERTY
@given(datasets(), st.integers(0, 3))
def test_weights_are_row_multiplicities(data: dict[str, Any], extra: int) -> None:
    """Integer weights give the rates of the data with rows repeated (counts stay rows)."""
    rng = np.random.default_rng(extra)
    y_true, y_pred, feats = data["y_true"], data["y_pred"], pd.DataFrame(data["features"])
    reps = rng.integers(1, 4, len(y_true))
    weighted = assess(y_true, y_pred, sensitive_features=feats, sample_weight=reps)
    expanded = assess(
        np.repeat(y_true, reps),
        np.repeat(y_pred, reps),
        sensitive_features=feats.loc[feats.index.repeat(reps)],
    )
    for name in (n for n in AGGREGATE_METRICS if n != "count"):
        assert close(getattr(weighted, name), getattr(expanded, name)), name
    for a, b in zip(weighted.by_group, expanded.by_group, strict=True):
        assert a["group"] == b["group"]
        for rate in RATES:
            assert close(a[rate], b[rate])
    assert weighted.count == len(y_true)


@settings(max_examples=60, deadline=None)
@given(datasets())
def test_string_labels_equal_their_01_encoding(data: dict[str, Any]) -> None:
    feats = pd.DataFrame(data["features"])
    as01 = assess(data["y_true"], data["y_pred"], sensitive_features=feats, sample_weight=data["weights"])
    strings = assess(
        encode(data["y_true"], "str"),
        np.array(encode(data["y_pred"], "str")),
        sensitive_features=feats,
        sample_weight=data["weights"],
        pos_label="yes",
    )
    flipped = assess(
        1 - data["y_true"],
        1 - data["y_pred"],
        sensitive_features=feats,
        sample_weight=data["weights"],
        pos_label=0,
    )
    for other in (strings, flipped):
        assert all(
            close(a, b) for a, b in zip(as01.metrics().values(), other.metrics().values(), strict=True)
        )
        assert json.dumps(as01.by_group) == json.dumps(other.by_group)


@settings(max_examples=60, deadline=None)
@given(datasets(), st.sampled_from([7, 64, 1000]))
def test_chunked_and_compacted_counting_agree(data: dict[str, Any], chunk: int) -> None:
    feats = pd.DataFrame(data["features"])
    args = (data["y_true"], data["y_pred"])
    plain = assess(*args, sensitive_features=feats, sample_weight=data["weights"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(counting, "CHUNK", chunk)
        chunked = assess(*args, sensitive_features=feats, sample_weight=data["weights"])
        mp.setattr(counting, "MAX_CELLS", 8)
        compacted = assess(*args, sensitive_features=feats, sample_weight=data["weights"])
    for other in (chunked, compacted):
        # Weighted sums in another order may differ in the last bit: equal to 1e-12, NaN where NaN.
        assert [row["group"] for row in plain.by_group] == [row["group"] for row in other.by_group]
        for mine, theirs in zip(plain.by_group, other.by_group, strict=True):
            for name, value in mine.items():
                if name != "group":
                    assert close(value, theirs[name], 1e-12), name
        assert plain.metrics().keys() == other.metrics().keys()
        for name, value in plain.metrics().items():
            assert close(value, other.metrics()[name], 1e-12), name


# --------------------------------------------------------------------------------------------------
# NaN policy (deliberate deviation from fairlearn's 0.0)


def test_group_without_positives_is_left_out_of_tpr_aggregates() -> None:
    y_true = [1, 1, 0, 0, 1, 0, 0, 0, 0]
    y_pred = [1, 0, 0, 1, 1, 0, 1, 0, 0]
    groups = ["a", "a", "a", "a", "b", "b", "c", "c", "c"]
    result = assess(y_true, y_pred, sensitive_features=groups)
    tpr = {row["group"]["sf0"]: row["true_positive_rate"] for row in result.by_group}
    assert tpr["a"] == 0.5 and tpr["b"] == 1.0 and math.isnan(tpr["c"])
    assert result.equal_opportunity_difference == pytest.approx(0.5)
    assert result.equal_opportunity_ratio == pytest.approx(0.5)
    assert any(
        "sf0='c'" in w and "true_positive_rate" in w and "no actual positives" in w for w in result.warnings
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fl = equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)
    assert fl == pytest.approx(1.0)  # fairlearn counts group c's TPR as 0.0


def test_group_without_negatives_is_left_out_of_fpr_aggregates() -> None:
    result = assess([1, 1, 0, 0, 1, 0], [1, 1, 1, 0, 1, 0], sensitive_features=["x", "x", "y", "y", "z", "z"])
    fpr = [row["false_positive_rate"] for row in result.by_group]
    assert math.isnan(fpr[0]) and fpr[1:] == [0.5, 0.0]
    assert result.equalized_odds_difference == pytest.approx(0.5)
    assert not math.isnan(result.equalized_odds_ratio)
    assert any("sf0='x'" in w and "false_positive_rate" in w for w in result.warnings)


def test_fewer_than_two_defined_groups_give_nan_with_warning() -> None:
    result = assess([1, 1, 0, 0], [1, 0, 0, 1], sensitive_features=["a", "a", "b", "b"])
    assert math.isnan(result.equal_opportunity_difference)
    assert math.isnan(result.equal_opportunity_ratio)
    assert math.isnan(result.equalized_odds_difference)
    assert math.isnan(result.equalized_odds_ratio)
    assert not math.isnan(result.demographic_parity_difference)
    assert any("fewer than 2 groups have a defined true_positive_rate" in w for w in result.warnings)


def test_single_group_gives_fairlearns_zero_and_one_with_warning() -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_ratio

    y_true, y_pred, groups = [1, 0, 1], [1, 0, 0], ["a", "a", "a"]
    result = assess(y_true, y_pred, sensitive_features=groups)
    assert len(result.by_group) == 1
    for name in FAIRNESS:
        assert getattr(result, name) == (1.0 if name.endswith("_ratio") else 0.0), name
    assert result.demographic_parity_difference == demographic_parity_difference(
        y_true, y_pred, sensitive_features=groups
    )
    assert result.equalized_odds_ratio == equalized_odds_ratio(y_true, y_pred, sensitive_features=groups)
    assert result.accuracy == pytest.approx(2 / 3)
    assert any("only one group" in w for w in result.warnings)


def test_ratio_with_zero_max_is_nan_with_warning() -> None:
    result = assess([1, 0, 1, 0], [0, 0, 0, 0], sensitive_features=["a", "a", "b", "b"])
    assert result.demographic_parity_difference == 0.0
    assert math.isnan(result.demographic_parity_ratio)
    assert math.isnan(result.equal_opportunity_ratio)
    assert any("demographic_parity_ratio" in w and "0 in every group" in w for w in result.warnings)


def test_zero_weight_group_has_undefined_rates() -> None:
    result = assess(
        [1, 0, 1, 0, 1, 0],
        [1, 0, 0, 0, 1, 1],
        sensitive_features=["a", "a", "b", "b", "c", "c"],
        sample_weight=[1, 1, 0, 0, 1, 1],
    )
    row = result.by_group[1]
    assert row["count"] == 2 and math.isnan(row["selection_rate"]) and math.isnan(row["accuracy"])
    assert any("sf0='b'" in w and "zero total sample_weight" in w for w in result.warnings)
    assert result.demographic_parity_difference == pytest.approx(0.5)


def test_min_group_size_excludes_from_aggregates_only() -> None:
    rng = np.random.default_rng(5)
    groups = np.array(["big1"] * 50 + ["big2"] * 60 + ["tiny"] * 3)
    y_true = rng.integers(0, 2, len(groups))
    y_pred = rng.integers(0, 2, len(groups))
    y_pred[-3:] = 1  # the tiny group would dominate the selection-rate gap
    result = assess(y_true, y_pred, sensitive_features=groups, min_group_size=10)
    without = assess(y_true[:-3], y_pred[:-3], sensitive_features=groups[:-3])
    assert [row["group"]["sf0"] for row in result.by_group] == ["big1", "big2", "tiny"]
    assert result.by_group[2]["count"] == 3 and result.by_group[2]["selection_rate"] == 1.0
    for name in FAIRNESS:
        assert close(getattr(result, name), getattr(without, name))
    everything = assess(y_true, y_pred, sensitive_features=groups)
    assert everything.demographic_parity_difference > result.demographic_parity_difference
    assert result.accuracy == everything.accuracy and result.count == 113
    assert any("sf0='tiny'" in w and "min_group_size=10" in w for w in result.warnings)


def test_many_undefined_groups_are_summarised() -> None:
    groups = np.repeat(np.arange(60), 2)
    y_true = np.tile([0, 0], 60)
    y_true[:4] = 1  # only groups 0 and 1 have actual positives
    result = assess(y_true, y_true, sensitive_features=groups, min_group_size=1)
    tpr_lines = [w for w in result.warnings if "true_positive_rate" in w]
    assert len(tpr_lines) == 21
    assert tpr_lines[-1].startswith("... and 38 more groups with an undefined true_positive_rate")
    result = assess(y_true, y_true, sensitive_features=groups, min_group_size=3)
    assert sum("min_group_size=3" in w for w in result.warnings) == 21
    assert all(math.isnan(getattr(result, name)) for name in FAIRNESS)


def test_empty_intersections_are_not_groups() -> None:
    sf = pd.DataFrame({"sex": ["F", "F", "M", "M"], "age": [20, 30, 20, 20]})
    result = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=sf)
    assert [row["group"] for row in result.by_group] == [
        {"sex": "F", "age": 20},
        {"sex": "F", "age": 30},
        {"sex": "M", "age": 20},
    ]
    assert result.scope == "sex.age"


# --------------------------------------------------------------------------------------------------
# Bootstrap intervals


def test_intervals_cover_a_known_gap() -> None:
    """95% intervals for a true gap of 0.1 cover it in roughly 95% of simulated datasets."""
    rng = np.random.default_rng(2024)
    n, sims = 2000, 200
    covered = {"demographic_parity_difference": 0, "equal_opportunity_difference": 0}
    for sim in range(sims):
        group = rng.integers(0, 2, n)
        y_true = (rng.random(n) < 0.5).astype(int)
        # P(pred=1 | group, y): selection rates differ by 0.1 for every y, so DP gap and TPR gap are 0.1.
        p = np.where(y_true == 1, 0.6, 0.2) + 0.1 * group
        y_pred = (rng.random(n) < p).astype(int)
        result = assess(y_true, y_pred, sensitive_features=group, n_boot=400, random_state=sim)
        for name in covered:
            low, high = result.ci[name]
            covered[name] += low <= 0.1 <= high
    for name, hits in covered.items():
        assert 0.88 * sims <= hits <= 0.99 * sims, (name, hits / sims)


def test_intervals_are_reproducible_and_complete() -> None:
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    sf = rng.integers(0, 3, 500)
    a = assess(y_true, y_pred, sensitive_features=sf, n_boot=200)
    b = assess(y_true, y_pred, sensitive_features=sf, n_boot=200)
    c = assess(y_true, y_pred, sensitive_features=sf, n_boot=200, random_state=1)
    d = assess(y_true, y_pred, sensitive_features=sf, n_boot=200, random_state=np.random.default_rng(1))
    assert a.ci == b.ci and a.ci != c.ci and c.ci == d.ci
    assert set(a.ci) == set(AGGREGATE_METRICS)
    assert a.ci["count"] == (500.0, 500.0)
    for name in AGGREGATE_METRICS:
        low, high = a.ci[name]
        assert low <= high
    keys = list(a.metrics())
    for name in AGGREGATE_METRICS:
        i = keys.index(name)
        assert keys[i + 1 : i + 3] == [f"{name}.ci_low", f"{name}.ci_high"]
    no_ci = assess(y_true, y_pred, sensitive_features=sf)
    assert no_ci.ci == {} and list(no_ci.metrics()) == list(AGGREGATE_METRICS)


def test_ci_level_widens_interval() -> None:
    rng = np.random.default_rng(3)
    y_true, y_pred, sf = rng.integers(0, 2, 800), rng.integers(0, 2, 800), rng.integers(0, 2, 800)
    narrow = assess(y_true, y_pred, sensitive_features=sf, n_boot=300, ci=0.5)
    wide = assess(y_true, y_pred, sensitive_features=sf, n_boot=300, ci=0.99)
    for name in ("accuracy", "demographic_parity_difference"):
        assert wide.ci[name][1] - wide.ci[name][0] > narrow.ci[name][1] - narrow.ci[name][0]


def test_weighted_bootstrap_resamples_rows() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    y_true, y_pred, sf = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 3, n)
    ones = assess(y_true, y_pred, sensitive_features=sf, sample_weight=np.ones(n), n_boot=150)
    plain = assess(y_true, y_pred, sensitive_features=sf, n_boot=150)
    for name in (n for n in AGGREGATE_METRICS if n != "count"):
        assert getattr(ones, name) == pytest.approx(getattr(plain, name))
        # Different random paths, same distribution: the intervals agree loosely.
        assert ones.ci[name] == pytest.approx(plain.ci[name], abs=0.04)
    weighted = assess(y_true, y_pred, sensitive_features=sf, sample_weight=rng.uniform(0, 3, n), n_boot=100)
    for name in (n for n in AGGREGATE_METRICS if n != "count"):
        low, high = weighted.ci[name]
        assert low <= high


def test_bootstrap_warns_when_resamples_lose_a_rate() -> None:
    # Group b has a single actual positive: many resamples drop it, leaving its TPR undefined.
    y_true = [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    y_pred = [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b", "b", "b"]
    result = assess(y_true, y_pred, sensitive_features=groups, n_boot=200)
    assert any(w.startswith("bootstrap:") and "equal_opportunity_difference" in w for w in result.warnings)
    low, high = result.ci["equal_opportunity_difference"]
    assert 0.0 <= low <= high <= 1.0


def test_min_group_size_applies_inside_resamples() -> None:
    rng = np.random.default_rng(9)
    groups = np.array([0] * 200 + [1] * 200 + [2] * 5)
    y_true, y_pred = rng.integers(0, 2, 405), rng.integers(0, 2, 405)
    result = assess(y_true, y_pred, sensitive_features=groups, min_group_size=20, n_boot=200)
    trimmed = assess(y_true[:400], y_pred[:400], sensitive_features=groups[:400], n_boot=200)
    width = result.ci["demographic_parity_difference"][1] - result.ci["demographic_parity_difference"][0]
    width_trimmed = (
        trimmed.ci["demographic_parity_difference"][1] - trimmed.ci["demographic_parity_difference"][0]
    )
    assert width == pytest.approx(width_trimmed, abs=0.05)


def test_partial_pos_label_metric_frame_agrees() -> None:
    """Explicit string pos_label matches fairlearn given the same pos_label."""
    rng = np.random.default_rng(11)
    n = 300
    y_true = np.where(rng.random(n) < 0.4, "approve", "deny")
    y_pred = np.where(rng.random(n) < 0.5, "approve", "deny")
    sf = pd.Series(rng.choice(["u", "v", "w"], n), name="region")
    result = assess(y_true, y_pred, sensitive_features=sf, pos_label="approve")
    mf = MetricFrame(
        metrics={
            "selection_rate": partial(selection_rate, pos_label="approve"),
            "true_positive_rate": partial(true_positive_rate, pos_label="approve"),
            "false_positive_rate": partial(false_positive_rate, pos_label="approve"),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sf,
    )
    diff = mf.difference()
    assert result.demographic_parity_difference == pytest.approx(diff["selection_rate"], abs=1e-9)
    assert result.equal_opportunity_difference == pytest.approx(diff["true_positive_rate"], abs=1e-9)
    assert result.equalized_odds_difference == pytest.approx(
        max(diff["true_positive_rate"], diff["false_positive_rate"]), abs=1e-9
    )
    assert result.equalized_odds_ratio == pytest.approx(
        mf.ratio().loc[["true_positive_rate", "false_positive_rate"]].min()
    )


# --------------------------------------------------------------------------------------------------
# The metrics table and the bootstrap engine


def reference(name: str) -> Any:
    """fairlearn's function of that name, or scikit-learn's for the ``*_score`` names fairlearn reuses."""
    return getattr(fairlearn_metrics, name, None) or getattr(sklearn_metrics, name)


def defined_data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """Labels and two crossed features where every group has actual positives, negatives and predicted
    positives: every rate is defined, so every number must equal fairlearn's."""
    rng = np.random.default_rng(seed)
    sf = pd.DataFrame({"a": rng.choice(["u", "v", "w"], n), "b": rng.integers(0, 2, n)})
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    return y_true, y_pred, sf, rng.uniform(0.1, 3.0, n)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_table_row_equals_its_reference(seed: int, weighted: bool) -> None:
    y_true, y_pred, sf, w = defined_data(seed)
    weights = w if weighted else None
    result = assess(y_true, y_pred, sensitive_features=sf, sample_weight=weights)
    sw = {"sample_weight": weights} if weighted else {}
    for row in table.BINARY.aggregates:
        if row.kind in ("overall", "count"):
            expected = reference(row.fairlearn_name)(y_true, y_pred, **(sw if row.kind == "overall" else {}))
        else:
            expected = reference(row.fairlearn_name)(y_true, y_pred, sensitive_features=sf, **sw)
            assert row.better == ("lower" if row.kind in ("difference", "group_max") else "higher"), row.name
        assert close(getattr(result, row.name), float(expected)), row.name
    columns = {c.name: reference(c.fairlearn) for c in table.BINARY.columns if c.form != "over_max"}
    params = {name: sw for name in columns} if weighted else None
    frame = MetricFrame(
        metrics=columns, y_true=y_true, y_pred=y_pred, sensitive_features=sf, sample_params=params
    )
    for mine, (_, theirs) in zip(result.by_group, frame.by_group.iterrows(), strict=True):
        for name in columns:
            assert close(mine[name], float(theirs[name])), name


_NEW_AGGREGATES: list[tuple[str, Kind, str, Literal["lower", "higher"]]] = [
    ("false_negative_rate_difference", "difference", "false_negative_rate", "lower"),
    ("false_negative_rate_ratio", "ratio", "false_negative_rate", "higher"),
    ("true_negative_rate_difference", "difference", "true_negative_rate", "lower"),
    ("true_negative_rate_ratio", "ratio", "true_negative_rate", "higher"),
    ("accuracy_score_difference", "difference", "accuracy", "lower"),
    ("accuracy_score_ratio", "ratio", "accuracy", "higher"),
    ("accuracy_score_group_min", "group_min", "accuracy", "higher"),
    ("zero_one_loss_group_max", "group_max", "zero_one_loss", "lower"),
    ("precision_score_group_min", "group_min", "precision", "higher"),
    ("f1_score_group_min", "group_min", "f1", "higher"),
]
#: Rows the next metrics would add: fairlearn 0.15's generated names, every kind of aggregate.
MORE_METRICS = Table(
    columns=(
        GroupColumn("false_negative_rate", (FN,), (FN, TP), "actual positives", "false_negative_rate"),
        GroupColumn("true_negative_rate", (TN,), (TN, FP), "actual negatives", "true_negative_rate"),
        GroupColumn("accuracy", (TP, TN), ALL_CELLS, "rows", "accuracy_score"),
        GroupColumn("zero_one_loss", (FP, FN), ALL_CELLS, "rows", "zero_one_loss"),
        GroupColumn("precision", (TP,), (TP, FP), "predicted positives", "precision_score"),
        GroupColumn("f1", (TP, TP), (TP, TP, FP, FN), "rows", "f1_score"),
    ),
    aggregates=tuple(
        Aggregate(name, kind, (column,), better) for name, kind, column, better in _NEW_AGGREGATES
    ),
)


@pytest.mark.parametrize("weighted", [False, True])
def test_new_metrics_are_rows_of_the_table(weighted: bool) -> None:
    y_true, y_pred, sf, w = defined_data(7)
    group = sf["a"].map({"u": 0, "v": 1, "w": 2}).to_numpy()
    weights = w if weighted else np.ones(len(w))
    cells = (
        np.bincount(group * 4 + 2 * y_true + y_pred, weights=weights, minlength=12)
        .astype(float)
        .reshape(3, 4)
    )
    rows = np.bincount(group, minlength=3)
    evaluation = rates.evaluate(MORE_METRICS, cells, rows, None)
    sw = {"sample_weight": w} if weighted else {}
    for row in MORE_METRICS.aggregates:
        expected = reference(row.fairlearn_name)(y_true, y_pred, sensitive_features=group, **sw)
        assert close(float(evaluation.values[row.name]), float(expected)), row.name
    for column in MORE_METRICS.columns:
        fn = reference(column.fairlearn)
        for g in range(3):
            mask = group == g
            kw = {"sample_weight": w[mask]} if weighted else {}
            assert close(evaluation.rates[column.name][g], fn(y_true[mask], y_pred[mask], **kw)), column.name


def confusion_rows(groups: int, per_group: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cell (group * 4 + TN/FP/FN/TP) and the rows per cell, every cell occupied."""
    rng = np.random.default_rng(seed)
    cell_of_row = np.repeat(np.arange(groups * 4), per_group)[rng.permutation(groups * 4 * per_group)]
    cell_of_row = np.concatenate([cell_of_row, rng.integers(0, groups * 4, groups * per_group)])
    return cell_of_row, np.bincount(cell_of_row, minlength=groups * 4).reshape(groups, 4)


@pytest.mark.parametrize("groups", [3, 300])  # 300 groups: 1200 cells, the vectorised row draw
def test_bootstrap_drivers_agree_on_unit_weights(groups: int) -> None:
    """With weights 1 the row-resampling driver weighs each cell by its drawn row count: the very
    replicates of the multinomial driver from the same seed (one batch)."""
    cell_of_row, row_cells = confusion_rows(groups, 3, seed=groups)
    stats = partial(rates.statistics, table.BINARY, 2)
    ones = np.ones(len(cell_of_row))
    by_cells = bootstrap.replicates(row_cells, bootstrap.CellCounts(), stats, 40, np.random.default_rng(5))
    by_rows = bootstrap.replicates(
        row_cells,
        bootstrap.RowWeights(cell_of_row, ones, row_cells.reshape(-1)),
        stats,
        40,
        np.random.default_rng(5),
    )
    assert list(by_cells) == list(AGGREGATE_METRICS)
    for name in AGGREGATE_METRICS:
        np.testing.assert_array_equal(by_rows[name], by_cells[name], err_msg=name)
        assert by_cells[name].shape == (40,)
    assert not np.all(by_cells["accuracy"] == by_cells["accuracy"][0])  # the resamples differ


def test_bootstrap_batches_do_not_change_the_replicates(monkeypatch: pytest.MonkeyPatch) -> None:
    _, row_cells = confusion_rows(4, 20, seed=1)
    stats = partial(rates.statistics, table.BINARY, None)
    whole = bootstrap.replicates(row_cells, bootstrap.CellCounts(), stats, 50, np.random.default_rng(3))
    monkeypatch.setattr(bootstrap, "BATCH_CELLS", row_cells.size * 7)  # batches of 7 resamples
    batched = bootstrap.replicates(row_cells, bootstrap.CellCounts(), stats, 50, np.random.default_rng(3))
    for name in AGGREGATE_METRICS:
        np.testing.assert_array_equal(batched[name], whole[name], err_msg=name)
