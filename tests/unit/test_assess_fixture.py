"""The fixture's ``assess`` passes every v2 argument through and records what the result holds."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from pytest_fairmind import Fairmind
from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.table import DIRECTIONS


def test_signature_is_the_plain_functions_plus_model() -> None:
    fixture = inspect.signature(Fairmind.assess).parameters
    plain = inspect.signature(assess).parameters
    assert [name for name in fixture if name not in ("self", "model")] == list(plain)
    for name, param in plain.items():
        assert fixture[name].default == param.default, name
        assert fixture[name].kind == param.kind, name
    assert fixture["model"].default is None and fixture["model"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "regression", "y_pred": [1.5, 2.5, 0.5, 3.0, 2.0, 1.0]},
        {"y_score": [0.1, 0.8, 0.3, 0.9, 0.6, 0.2], "threshold": 0.5},
        {"y_pred": [0, 1, 1, 1, 0, 0], "metrics": {"hits": lambda t, p: float(np.sum(t == p))}},
        {"task": "multiclass", "y_pred": [0, 1, 2, 1, 0, 2], "per_class": True},
    ],
)
def test_fixture_records_the_results_metrics_and_groups(kwargs: dict[str, Any]) -> None:
    sink: list[Any] = []
    fairmind = Fairmind("t.py::test", "m", sink)
    y_true: list[float] = [0, 1, 2, 1, 0, 2] if kwargs.get("task") == "multiclass" else [0, 1, 0, 1, 1, 0]
    if kwargs.get("task") == "regression":
        y_true = [1.0, 2.0, 0.5, 2.5, 2.0, 1.5]
    result = fairmind.assess(y_true, sensitive_features={"sex": ["F", "M"] * 3}, n_boot=0, **kwargs)
    assert result.n_boot is None  # n_boot=0: no bootstrap
    plain = assess(y_true, sensitive_features={"sex": ["F", "M"] * 3}, **kwargs)
    np.testing.assert_equal(result.metrics(), plain.metrics())  # NaN equals NaN here
    [record] = sink
    assert set(record["metrics"]) == {f"sex/{key}" for key in result.metrics()}
    np.testing.assert_equal(record["groups"]["sex"], result.by_group)


def test_built_in_directions_follow_the_name_pattern() -> None:
    expected = {"_difference": "lower", "_ratio": "higher", "_group_min": "higher", "_group_max": "lower"}
    for name, better in DIRECTIONS.items():
        suffix = next((s for s in expected if name.endswith(s)), None)
        assert better == (expected[suffix] if suffix else DIRECTIONS[name]), name
    assert DIRECTIONS["accuracy"] == "higher" and DIRECTIONS["mean_squared_error"] == "lower"
