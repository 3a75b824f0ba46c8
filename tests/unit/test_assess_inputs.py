"""polars and pyarrow inputs, read through Arrow; numpy datetime64 group labels shown as dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from pytest_fairmind.metrics import assess

RNG = np.random.default_rng(0)
N = 200
Y_TRUE = RNG.integers(0, 2, N)
Y_PRED = RNG.integers(0, 2, N)
SEX = RNG.choice(["F", "M", "X"], N)
AGE = RNG.integers(20, 23, N)
REFERENCE = assess(Y_TRUE, Y_PRED, sensitive_features=pd.DataFrame({"sex": SEX, "age": AGE}))


def same(result: object) -> None:
    assert result.metrics() == REFERENCE.metrics()  # type: ignore[attr-defined]
    assert result.by_group == REFERENCE.by_group  # type: ignore[attr-defined]


def test_polars_frame_and_series() -> None:
    frame = pl.DataFrame({"sex": SEX, "age": AGE})
    same(assess(pl.Series(Y_TRUE), pl.Series(Y_PRED), sensitive_features=frame))
    same(assess(pl.DataFrame({"y": Y_TRUE}), Y_PRED, sensitive_features=frame))  # one column, not 2 rows
    same(assess(Y_TRUE, Y_PRED, sensitive_features=[pl.Series("sex", SEX), pl.Series("age", AGE)]))
    categorical = pl.DataFrame({"sex": pl.Series(SEX).cast(pl.Categorical), "age": AGE})
    same(assess(Y_TRUE, Y_PRED, sensitive_features=categorical))
    with pytest.raises(ValueError, match="y_true must be 1-D, got a table with 2 columns"):
        assess(frame, Y_PRED, sensitive_features=frame)


def test_pyarrow_arrays_and_tables() -> None:
    table = pa.table({"sex": SEX, "age": AGE})
    same(assess(pa.array(Y_TRUE), pa.chunked_array([Y_PRED[:50], Y_PRED[50:]]), sensitive_features=table))
    encoded = pa.table({"sex": pa.array(SEX).dictionary_encode(), "age": pa.array(AGE)})
    same(assess(Y_TRUE, Y_PRED, sensitive_features=encoded))
    text = np.where(Y_TRUE == 1, "yes", "no")
    named = assess(
        pa.array(text), np.where(Y_PRED == 1, "yes", "no"), sensitive_features=table, pos_label="yes"
    )
    assert named.metrics() == REFERENCE.metrics()


def test_nulls_in_arrow_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="y_true contains missing values"):
        assess(pa.array([1, None, 0, 1]), [1, 0, 0, 1], sensitive_features=["a", "b"] * 2)
    with pytest.raises(ValueError, match="'sex' contains missing values"):
        assess([1, 0, 0, 1], [1, 0, 0, 1], sensitive_features=pl.DataFrame({"sex": ["a", None, "b", "a"]}))


def test_scores_and_weights_from_arrow() -> None:
    scores = RNG.random(N)
    w = RNG.uniform(0.5, 2.0, N)
    ours = assess(
        Y_TRUE, sensitive_features=pl.Series("sex", SEX), y_score=pa.array(scores), sample_weight=pl.Series(w)
    )
    theirs = assess(Y_TRUE, sensitive_features=pd.Series(SEX, name="sex"), y_score=scores, sample_weight=w)
    assert ours.metrics() == theirs.metrics()


@pytest.mark.parametrize(
    ("unit", "shown"), [("D", "2024-01-01"), ("s", "2024-01-01 00:00:00"), ("ns", "2024-01-01 00:00:00")]
)
def test_datetime64_labels_are_dates(unit: str, shown: str) -> None:
    days = np.array(["2024-01-01", "2024-02-01"] * 2, dtype=f"datetime64[{unit}]")
    result = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features={"day": days})
    assert result.by_group[0]["group"]["day"] == shown
    from_pandas = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=pd.Series(days, name="day"))
    if unit != "D":
        assert [r["group"] for r in from_pandas.by_group] == [r["group"] for r in result.by_group]
    arrow = assess([1, 0, 1, 0], [1, 1, 0, 0], sensitive_features=pa.table({"day": days}))
    assert [r["group"] for r in arrow.by_group] == [r["group"] for r in result.by_group]
