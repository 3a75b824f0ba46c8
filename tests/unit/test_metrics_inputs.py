"""The metrics engine's inputs: containers, label kinds, scope naming, plain output types, errors."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pytest_fairmind.metrics import AGGREGATE_METRICS, GROUP_METRICS, FairnessResult, assess
from pytest_fairmind.metrics import features as metrics_features

Y_TRUE = [1, 0, 1, 1, 0, 0, 1, 0]
Y_PRED = [1, 0, 0, 1, 1, 0, 1, 1]
SEX = ["F", "F", "M", "M", "F", "M", "F", "M"]
AGE = [30, 40, 30, 40, 30, 30, 40, 40]


def same_numbers(a: FairnessResult, b: FairnessResult) -> bool:
    return json.dumps(a.metrics()) == json.dumps(b.metrics()) and json.dumps(
        [{k: v for k, v in row.items() if k != "group"} for row in a.by_group]
    ) == json.dumps([{k: v for k, v in row.items() if k != "group"} for row in b.by_group])


# --------------------------------------------------------------------------------------------------
# Containers and scope naming


@pytest.mark.parametrize(
    ("features", "scope"),
    [
        (SEX, "sf0"),
        (np.array(SEX), "sf0"),
        (np.array(SEX, dtype=object), "sf0"),
        (tuple(SEX), "sf0"),
        (pd.Series(SEX), "sf0"),
        (pd.Series(SEX, name="sex"), "sex"),
        (pd.Series(SEX, name="sex", dtype="category"), "sex"),
        (pd.Series(SEX, name="sex", dtype=object), "sex"),
        (pd.Categorical(SEX), "sf0"),
        (pd.Index(SEX, name="sex"), "sex"),
        (pd.DataFrame({"sex": SEX}), "sex"),
        ({"sex": SEX}, "sex"),
        ({"sex": np.array(SEX)}, "sex"),
        (np.array(SEX)[:, None], "sf0"),
    ],
)
def test_one_feature_in_any_container(features: Any, scope: str) -> None:
    reference = assess(Y_TRUE, Y_PRED, sensitive_features=SEX)
    result = assess(Y_TRUE, Y_PRED, sensitive_features=features)
    assert result.scope == scope
    assert [list(row["group"].values()) for row in result.by_group] == [["F"], ["M"]]
    assert same_numbers(result, reference)


@pytest.mark.parametrize(
    ("features", "scope"),
    [
        (pd.DataFrame({"sex": SEX, "age": AGE}), "sex.age"),
        (pd.DataFrame({"age": AGE, "sex": SEX}), "age.sex"),
        ({"sex": SEX, "age": AGE}, "sex.age"),
        ([pd.Series(SEX, name="sex"), pd.Series(AGE, name="age")], "sex.age"),
        ([pd.Series(SEX, name="sex"), np.array(AGE)], "sex.sf1"),
        ([np.array(SEX), np.array(AGE)], "sf0.sf1"),
        (np.array([SEX, AGE], dtype=object).T, "sf0.sf1"),
        (list(zip(SEX, AGE, strict=True)), "sf0.sf1"),
    ],
)
def test_crossed_features_in_any_container(features: Any, scope: str) -> None:
    result = assess(Y_TRUE, Y_PRED, sensitive_features=features)
    assert result.scope == scope
    assert len(result.by_group) == 4
    assert result.sensitive_feature_names == tuple(scope.split("."))
    labels = [tuple(row["group"].values()) for row in result.by_group]
    assert labels == sorted(labels)
    assert all(type(v) in (int, str) for label in labels for v in label)


def test_scope_argument_overrides_names() -> None:
    result = assess(Y_TRUE, Y_PRED, sensitive_features={"sex": SEX}, scope="holdout/sex")
    assert result.scope == "holdout/sex"
    assert result.by_group[0]["group"] == {"sex": "F"}


@pytest.mark.parametrize("container", [list, np.array, pd.Series])
@pytest.mark.parametrize(
    ("y_true", "y_pred", "pos_label"),
    [
        (Y_TRUE, Y_PRED, 1),
        ([2 * v - 1 for v in Y_TRUE], [2 * v - 1 for v in Y_PRED], 1),
        ([bool(v) for v in Y_TRUE], [bool(v) for v in Y_PRED], 1),
        ([bool(v) for v in Y_TRUE], [bool(v) for v in Y_PRED], True),
        ([float(v) for v in Y_TRUE], [float(v) for v in Y_PRED], 1),
        (["yes" if v else "no" for v in Y_TRUE], ["yes" if v else "no" for v in Y_PRED], "yes"),
        ([7 if v else 3 for v in Y_TRUE], [7 if v else 3 for v in Y_PRED], 7),
        ([10**6 if v else 0 for v in Y_TRUE], [10**6 if v else 0 for v in Y_PRED], 10**6),
        ([0 if v else 1 for v in Y_TRUE], [0 if v else 1 for v in Y_PRED], 0),
    ],
)
def test_label_kinds(container: Any, y_true: list[Any], y_pred: list[Any], pos_label: Any) -> None:
    reference = assess(Y_TRUE, Y_PRED, sensitive_features=SEX)
    result = assess(container(y_true), container(y_pred), sensitive_features=SEX, pos_label=pos_label)
    assert same_numbers(result, reference)


def test_pandas_extension_label_dtypes() -> None:
    reference = assess(Y_TRUE, Y_PRED, sensitive_features=SEX)
    for dtype in ("Int64", "boolean", "category"):
        result = assess(
            pd.Series(Y_TRUE, dtype=dtype), pd.Series(Y_PRED, dtype=dtype), sensitive_features=pd.Series(SEX)
        )
        assert same_numbers(result, reference), dtype
    dtypes: tuple[Any, ...] = ("string", "str", "category", object)
    for dtype in dtypes:
        truth = pd.Series(["yes" if v else "no" for v in Y_TRUE], dtype=dtype)
        pred = pd.Series(["yes" if v else "no" for v in Y_PRED], dtype=dtype)
        assert same_numbers(assess(truth, pred, sensitive_features=SEX, pos_label="yes"), reference), dtype
    with pytest.raises(ValueError, match=r"unknown labels.*y_pred"):  # 0/1 predictions next to yes/no truths
        assess(truth, np.array(Y_PRED), sensitive_features=SEX, pos_label="yes")


def test_pandas_index_is_ignored_positionally() -> None:
    y_true = pd.Series(Y_TRUE, index=range(100, 108))
    y_pred = pd.Series(Y_PRED, index=range(8)[::-1])
    assert same_numbers(
        assess(y_true, y_pred, sensitive_features=pd.Series(SEX, index=list("abcdefgh"))),
        assess(Y_TRUE, Y_PRED, sensitive_features=SEX),
    )


def test_categorical_sorts_by_value_and_drops_unused_categories() -> None:
    cat = pd.Categorical(
        ["mid", "low", "high", "mid"], categories=["low", "mid", "high", "unused"], ordered=True
    )
    result = assess([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=pd.Series(cat, name="band"))
    assert [row["group"]["band"] for row in result.by_group] == ["high", "low", "mid"]


def test_group_labels_become_plain_python() -> None:
    sf = {
        "i": np.array([1, 2, 1, 2], dtype=np.int32),
        "f": np.array([0.5, 0.5, 1.5, 1.5]),
        "b": np.array([True, False, True, False]),
        "s": np.array(["x", "y", "x", "y"]),
    }
    result = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=sf)
    for row in result.by_group:
        assert [type(v) for v in row["group"].values()] == [int, float, bool, str]
        assert type(row["count"]) is int
        assert all(type(row[m]) is float for m in GROUP_METRICS if m != "count")
    assert all(type(v) in (int, float) for v in result.metrics().values())
    text = json.dumps(result.by_group, allow_nan=True)
    assert json.loads(text)[0]["group"] == {"i": 1, "f": 0.5, "b": True, "s": "x"}
    assert list(result.by_group[0]) == ["group", *GROUP_METRICS]


def test_other_hashable_labels_become_strings() -> None:
    labels = np.empty(4, dtype=object)
    labels[:] = [("a", 1), ("b", 2), ("a", 1), ("b", 2)]
    result = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=labels)
    assert [row["group"]["sf0"] for row in result.by_group] == ["('a', 1)", "('b', 2)"]
    mixed = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=np.array([1, "a", 1, "a"], dtype=object))
    assert [row["group"]["sf0"] for row in mixed.by_group] == [1, "a"]  # deterministic for mixed types
    dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"] * 2), name="day")
    dated = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=dates)
    assert [row["group"]["day"] for row in dated.by_group] == ["2024-01-01 00:00:00", "2024-02-01 00:00:00"]


def test_integer_features_far_apart_and_many_groups() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    far = rng.choice(np.array([-(10**15), 0, 10**15]), n)
    ids = rng.integers(0, 3000, n)
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    result = assess(y_true, y_pred, sensitive_features={"far": far, "id": ids})
    frame = pd.DataFrame({"far": far, "id": ids, "t": y_true, "p": y_pred})
    sizes = frame.groupby(["far", "id"]).size()
    assert [tuple(row["group"].values()) for row in result.by_group] == list(sizes.index)
    assert [row["count"] for row in result.by_group] == sizes.tolist()
    sel = frame.groupby(["far", "id"])["p"].mean()
    assert np.allclose([row["selection_rate"] for row in result.by_group], sel.to_numpy())


def test_extreme_integer_labels_stay_exact() -> None:
    big = np.array([2**63 + 5, 2**63 + 6, 2**63 + 5], dtype=np.uint64)
    result = assess([1, 0, 1], [1, 0, 0], sensitive_features=big)
    assert [row["group"]["sf0"] for row in result.by_group] == [2**63 + 5, 2**63 + 6]
    low = np.array([-(2**62), 2**62, -(2**62)], dtype=np.int64)
    result = assess([1, 0, 1], [1, 0, 0], sensitive_features=low)
    assert [row["group"]["sf0"] for row in result.by_group] == [-(2**62), 2**62]


def test_many_distinct_strings_fall_back_from_equality_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.array([f"g{i % 7}" for i in range(50)])
    y = np.arange(50) % 2
    reference = assess(y, y, sensitive_features=values.tolist())
    monkeypatch.setattr(metrics_features, "EQ_SCAN_LIMIT", 2)
    result = assess(y, y, sensitive_features=values)
    assert json.dumps(result.by_group) == json.dumps(reference.by_group)
    assert [row["group"]["sf0"] for row in result.by_group] == [f"g{i}" for i in range(7)]


def test_to_pandas() -> None:
    result = assess(Y_TRUE, Y_PRED, sensitive_features=pd.DataFrame({"sex": SEX, "age": AGE}))
    frame = result.to_pandas()
    assert list(frame.columns) == list(GROUP_METRICS)
    assert frame.index.names == ["sex", "age"]
    assert frame.loc[("F", 30), "count"] == 2
    assert frame["count"].dtype == np.int64
    single = assess(Y_TRUE, Y_PRED, sensitive_features={"sex": SEX}).to_pandas()
    assert single.index.name == "sex" and list(single.index) == ["F", "M"]
    assert single.loc["F", "selection_rate"] == pytest.approx(0.75)


def test_repr_is_readable() -> None:
    result = assess(Y_TRUE, Y_PRED, sensitive_features={"sex": SEX}, n_boot=50)
    text = repr(result)
    assert text.startswith("FairnessResult(scope='sex', groups=2, count=8)")
    for name in AGGREGATE_METRICS:
        assert name in text
    assert "95% CI" in text


def test_result_metrics_and_attributes() -> None:
    result = assess(Y_TRUE, Y_PRED, sensitive_features=SEX)
    assert list(result.metrics()) == list(AGGREGATE_METRICS)
    assert result.metrics()["count"] == 8 and type(result.count) is int
    assert result.accuracy == pytest.approx(5 / 8)
    assert result.selection_rate == pytest.approx(5 / 8)
    assert result.demographic_parity_difference == pytest.approx(0.25)
    assert result.demographic_parity_ratio == pytest.approx(0.5 / 0.75)
    assert result.warnings == [] and result.ci == {}


# --------------------------------------------------------------------------------------------------
# Errors name the argument


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_pred": Y_PRED[:-1]}, "y_pred has 7 rows but y_true has 8"),
        ({"y_true": [], "y_pred": [], "sensitive_features": []}, "y_true is empty"),
        ({"sensitive_features": SEX[:-1]}, "sensitive feature 'sf0' has 7 rows but y_true has 8"),
        ({"sensitive_features": {"sex": SEX, "age": AGE[:3]}}, "sensitive feature 'age' has 3 rows"),
        ({"sensitive_features": pd.Series(SEX[:5], name="sex")}, "sensitive feature 'sex' has 5 rows"),
        ({"sample_weight": [1.0] * 7}, "sample_weight has 7 rows"),
        ({"sample_weight": [1.0] * 7 + [-1.0]}, "sample_weight contains negative"),
        ({"sample_weight": [1.0] * 7 + [math.nan]}, "sample_weight contains NaN"),
        ({"sample_weight": [0.0] * 8}, "sample_weight sums to 0"),
        ({"sample_weight": ["a"] * 8}, "sample_weight must be numeric"),
        ({"y_true": [1.0] * 7 + [math.nan]}, "y_true contains missing values"),
        ({"y_pred": [1, 0, None, 1, 0, 0, 1, 1]}, "y_pred contains missing values"),
        ({"y_true": pd.Series([1, 0, None, 1, 0, 0, 1, 0], dtype="Int64")}, "y_true contains missing"),
        ({"y_true": [2, 0, 1, 1, 0, 0, 1, 0]}, "y_true has labels .*pos_label=1 .*default"),
        ({"y_true": ["a", "b"] * 4}, r"y_true has labels \['a', 'b'\].*pos_label="),
        ({"y_pred": [-1, 0, 1, 1, 0, 0, 1, 0]}, "y_pred has labels"),
        ({"y_pred": [-1, 1, -1, 1, -1, 1, -1, 1]}, "y_true and y_pred mix labels"),
        ({"y_true": ["a", "b", "c", "a", "b", "c", "a", "b"], "pos_label": "a"}, "unknown labels"),
        ({"y_true": [1, 0] * 4, "y_pred": [2, 0] * 4, "pos_label": 2}, "unknown labels"),
        ({"pos_label": "yes"}, r"pos_label='yes' is not one of the labels \[0, 1\]"),
        ({"pos_label": math.nan}, "pos_label"),
        ({"pos_label": [1]}, "pos_label"),
        ({"sensitive_features": ["F", None, "M", "M", "F", "M", "F", "M"]}, "'sf0' contains missing"),
        ({"sensitive_features": np.array([1.0, math.nan] * 4)}, "'sf0' contains missing"),
        ({"sensitive_features": pd.Series(["F", None] * 4, name="sex")}, "'sex' contains missing"),
        ({"sensitive_features": pd.Series(["F", None] * 4, dtype="category")}, "contains missing"),
        ({"sensitive_features": None}, "sensitive_features is required"),
        ({"sensitive_features": {}}, "sensitive_features is an empty mapping"),
        ({"sensitive_features": np.zeros((8, 1, 1))}, "sensitive_features must be 1-D or 2-D"),
        ({"sensitive_features": "F"}, "sensitive_features must be array-like"),
        ({"sensitive_features": {"a": SEX, 1: AGE, "1": AGE}}, "duplicate feature names"),
        ({"sensitive_features": [[1], [2, 3]] + [[1]] * 6}, "same length"),
        ({"sensitive_features": [[1, 2]] * 8, "y_true": Y_TRUE}, None),
        ({"y_true": np.zeros((8, 2))}, "y_true must be 1-D"),
        ({"y_true": 1}, "y_true must be a 1-D array-like"),
        ({"n_boot": 0}, "n_boot must be an int >= 1"),
        ({"n_boot": 10.5}, "n_boot"),
        ({"n_boot": True}, "n_boot"),
        ({"ci": 0.0}, "ci must be a confidence level"),
        ({"ci": 1.0}, "ci must be a confidence level"),
        ({"ci": "95%"}, "ci must be"),
        ({"min_group_size": 0}, "min_group_size must be an int >= 1"),
        ({"min_group_size": 2.5}, "min_group_size"),
        ({"scope": ""}, "scope must be a non-empty str"),
        ({"random_state": "seed", "n_boot": 10}, "random_state"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(
    kwargs: dict[str, Any], message: str | None
) -> None:
    args: dict[str, Any] = {"y_true": Y_TRUE, "y_pred": Y_PRED, "sensitive_features": SEX, **kwargs}
    if message is None:  # a valid input among the invalid ones, to keep the table honest
        assess(**args)
        return
    with pytest.raises(ValueError, match=message):
        assess(**args)


def test_empty_input_numpy() -> None:
    with pytest.raises(ValueError, match="y_true is empty"):
        assess(np.array([], dtype=int), np.array([], dtype=int), sensitive_features=np.array([]))
