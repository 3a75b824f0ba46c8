"""Group tables and charts for provider artifacts (``pytest_fairmind.plots``, W&B's table layout).

Rows come from the real ``assess`` of every task (binary labels, scores, regression, multiclass),
so the columns checked are the ones the metrics produce, not a list copied here. Charts are read
back from the matplotlib figure they are drawn on: labels, counts, ``undefined`` marks, whiskers.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_fairmind.metrics import assess
from pytest_fairmind.plots import (
    FAMILIES,
    GATE_COLUMNS,
    OTHER,
    ROW_FIELDS,
    chart_families,
    gate_entry,
    group_chart_figure,
    group_charts_png,
    matplotlib_available,
    plain,
    value_columns,
    wrapped_label,
)
from pytest_fairmind.providers.wandb import _table_data, gate_table_data, scan_table_data
from pytest_fairmind.result import GateResult, ModelResult
from pytest_fairmind.subgroup_scan import scan

needs_matplotlib = pytest.mark.skipif(not matplotlib_available(), reason="matplotlib (the plot extra)")

RNG = np.random.default_rng(7)
N = 600
SEX = RNG.choice(["female", "male"], N)
AGE = RNG.choice(["under 25", "25 to 60", "over 60 years of age"], N)
Y = RNG.integers(0, 2, N)
SCORE = np.clip(Y * 0.3 + RNG.random(N) * 0.7, 0, 1)


def rows_of(task: str) -> list[dict[str, Any]]:
    """``by_group`` of a real ``assess`` of ``task`` on crossed features."""
    features = {"sex": SEX, "age": AGE}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small crossed groups: undefined values are warned
        if task == "labels":
            result = assess(Y, (SCORE >= 0.5).astype(int), sensitive_features=features)
        elif task == "scores":
            result = assess(Y, y_score=SCORE, threshold=0.5, sensitive_features=features)
        elif task == "regression":
            result = assess(
                SCORE, SCORE + RNG.normal(0, 0.1, N), sensitive_features=features, task="regression"
            )
        else:
            yc = RNG.integers(0, 3, N)
            result = assess(
                yc, (yc + (RNG.random(N) < 0.3)) % 3, sensitive_features={"sex": SEX}, task="multiclass"
            )
    return [dict(row) for row in result.by_group]


TASKS = ["labels", "scores", "regression", "multiclass"]


# --------------------------------------------------------------------------- columns


@pytest.mark.parametrize("task", TASKS)
def test_value_columns_are_the_rows_numeric_fields_in_order(task: str) -> None:
    rows = rows_of(task)
    expected = [k for k, v in rows[0].items() if k not in ROW_FIELDS and isinstance(v, (int, float))]
    assert value_columns(rows) == expected
    assert "count" not in expected and "group" not in expected and "class" not in expected
    # Every value column lands in exactly one chart family; families keep the rows' columns only.
    families = chart_families(rows)
    drawn = [c for _, columns, _ in families for c in columns]
    assert sorted(drawn) == sorted(expected) and len(drawn) == len(set(drawn))


def test_families_per_task() -> None:
    names = {task: [name for name, _, _ in chart_families(rows_of(task))] for task in TASKS}
    assert names["labels"] == ["rates", "accuracy", "impact_ratio"]
    assert names["scores"] == ["rates", "accuracy", "impact_ratio", "ranking", "calibration"]
    assert names["regression"] == ["errors", "r2_score", "mean_prediction"]
    assert names["multiclass"] == ["rates", "accuracy", "impact_ratio"]
    custom = [{"group": {"g": "a"}, "count": 3, "my_metric": 0.5, "note": "text"}]
    assert chart_families(custom) == [(OTHER, ["my_metric"], False)]
    assert {c for _, columns, _ in FAMILIES for c in columns} >= set(value_columns(rows_of("scores")))


def test_wandb_group_table_for_every_task() -> None:
    for task in TASKS:
        rows = rows_of(task)
        columns, data = _table_data(rows)
        features = list(rows[0]["group"])
        head = ["class", "count"] if task == "multiclass" else ["count"]
        assert columns == [*features, *head, *value_columns(rows)], task
        for row, cells in zip(rows, data, strict=True):
            record = dict(zip(columns, cells, strict=True))
            assert [record[f] for f in features] == list(row["group"].values())
            for column in value_columns(rows):
                value = row[column]
                assert record[column] == (None if math.isnan(value) else value), (task, column)


def test_wandb_group_table_intervals_follow_their_column() -> None:
    rows: list[dict[str, Any]] = [
        {"group": {"sex": "F"}, "count": 10, "selection_rate": 0.4, "accuracy": 0.8},
        {"group": {"sex": "M"}, "count": 12, "selection_rate": 0.5, "accuracy": 0.7},
    ]
    rows[0]["ci"] = {"selection_rate": [0.2, 0.6]}
    rows[1]["ci"] = {"selection_rate": [math.nan, 0.7]}  # half an interval is none
    columns, data = _table_data(rows)
    assert columns == [
        "sex", "count", "selection_rate", "selection_rate.ci_low", "selection_rate.ci_high", "accuracy"
    ]  # fmt: skip
    assert data == [["F", 10, 0.4, 0.2, 0.6, 0.8], ["M", 12, 0.5, None, None, 0.7]]


def test_gate_entries_hold_every_field() -> None:
    gate = GateResult(
        "sex/demographic_parity_difference<=0.1",
        "sex/demographic_parity_difference",
        0.12,
        "<=0.1",
        "inconclusive",
        evidence="interval",
        ci_low=0.02,
        ci_high=0.2,
        p_value=0.08,
        p_adjusted=0.16,
        alpha=0.025,
    )
    entry = gate_entry(gate)
    assert list(entry) == list(GATE_COLUMNS)
    fields = set(GateResult.__dataclass_fields__)
    assert set(entry) == fields | {"passed"}
    assert entry["passed"] is True and entry["outcome"] == "inconclusive" and entry["alpha"] == 0.025
    failed = GateResult("a>=1", "a", math.nan, ">=1", "fail", ci_high=math.inf)
    assert plain(gate_entry(failed), words=True)["value"] == "nan"
    columns, data = gate_table_data(ModelResult("m", gates=[gate, failed]))
    assert columns == list(GATE_COLUMNS) and data[0] == list(entry.values())
    cells = dict(zip(columns, data[1], strict=True))
    assert cells["value"] is None and cells["ci_high"] is None and cells["passed"] is False  # empty cells


def test_scan_table_rows_are_the_entry() -> None:
    features = {"sex": SEX, "age": AGE}
    entry = scan(Y, (SCORE >= 0.5).astype(int), features=features, min_support=20, top=8).report_entry()
    columns, data = scan_table_data(entry)
    assert columns[0] == "conditions" and len(data) == len(entry["rows"]) > 0
    for row, cells in zip(entry["rows"], data, strict=True):
        record = dict(zip(columns, cells, strict=True))
        assert record["conditions"] == ", ".join(f"{k}={v}" for k, v in row["conditions"].items())
        assert {k: v for k, v in record.items() if k != "conditions"} == {
            k: v for k, v in plain(row).items() if k != "conditions"
        }


# --------------------------------------------------------------------------- charts


def _texts(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


@needs_matplotlib
def test_crossed_groups_are_readable_and_counted() -> None:
    rows = rows_of("labels")
    rows[1] = {**rows[1], "true_positive_rate": math.nan}
    rows[0] = {**rows[0], "ci": {"selection_rate": [0.1, 0.9], "false_positive_rate": [math.nan, 0.3]}}
    columns = ["selection_rate", "true_positive_rate", "false_positive_rate"]
    fig = group_chart_figure("sex.age", rows, columns, unit=True, title="m / sex.age")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [wrapped_label(r) for r in rows]
    for label, row in zip(labels, rows, strict=True):  # every condition is on the label, in full
        assert all(f"{k}={v}" in label.replace("\n", " ") for k, v in row["group"].items())
        assert all(len(line) <= 28 for line in label.split("\n"))
    assert any("\n" in label for label in labels)  # "age=over 60 years of age" does not fit one line
    texts = _texts(fig)
    assert [t for t in texts if t.startswith("n=")] == [f"n={r['count']}" for r in rows]
    undefined = sum(math.isnan(r[c]) for r in rows for c in columns)
    assert texts.count("undefined") == undefined >= 1
    whiskers = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(whiskers) == 1  # only selection_rate has a finite interval (row 0)
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    assert len(bars) == len(columns) and all(len(b.patches) == len(rows) for b in bars)
    for bar, column in zip(bars, columns, strict=True):
        widths = [p.get_width() for p in bar.patches]
        assert widths == [0.0 if math.isnan(r[column]) else r[column] for r in rows]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first group on top


@needs_matplotlib
def test_regression_chart_axis_holds_negative_values() -> None:
    rows = rows_of("regression")
    rows[0] = {**rows[0], "r2_score": -2.5}
    fig = group_chart_figure("sex.age", rows, ["r2_score"], unit=False)
    low, high = fig.axes[0].get_xlim()
    assert low < -2.5 and high >= max(r["r2_score"] for r in rows)


@needs_matplotlib
def test_multiclass_labels_name_the_class() -> None:
    rows = rows_of("multiclass")
    fig = group_chart_figure("sex", rows, ["selection_rate"], unit=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"class {r['class']}: sex={r['group']['sex']}" for r in rows]


@needs_matplotlib
def test_one_png_per_family_and_taller_with_more_groups(tmp_path: Path) -> None:
    rows = rows_of("scores")
    written = group_charts_png("sex.age", rows, str(tmp_path / "chart"))
    assert [f for f, _ in written] == [f for f, _, _ in chart_families(rows)]
    for family, path in written:
        assert path == str(tmp_path / f"chart.{family}.png")
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    few = group_chart_figure("s", rows[:2], ["roc_auc"]).get_size_inches()[1]
    many = group_chart_figure("s", rows, ["roc_auc"]).get_size_inches()[1]
    assert many > few
    assert group_charts_png("s", [], str(tmp_path / "none")) == []


def test_mlflow_drops_charts_before_runs_when_time_runs_short() -> None:
    import time

    from pytest_fairmind.providers.mlflow import _ChartBudget

    models = [ModelResult(f"m{i}", groups={"sex": rows_of("labels")} if i % 2 else {}) for i in range(6)]
    now = time.monotonic()
    # 10 s a model so far and 5 models left: 75 s needed with the margin, 60 s left.
    short = _ChartBudget(True, deadline=now + 60, started=now - 10)
    assert short.draw(models[0], 0, models)  # no pace yet: the first model gets its charts
    assert [short.draw(m, 1 + i, models) for i, m in enumerate(models[1:])] == [False] * 5
    assert short.left_out == 3  # the models with a group table
    roomy = _ChartBudget(True, deadline=now + 1000, started=now - 10)
    assert all(roomy.draw(m, i, models) for i, m in enumerate(models)) and roomy.left_out == 0
    assert not _ChartBudget(False, deadline=now + 1000).draw(models[1], 0, models)
