"""The summary (pytest_fairmind.summary): scan lines, gates decided on evidence, key metrics per task,
the Markdown job summary; SessionResult/ModelResult/GateResult built directly."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import pytest_fairmind.summary as summary
from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.table import AGGREGATE_METRICS, DIRECTIONS
from pytest_fairmind.result import GateResult, ModelResult, SessionResult
from pytest_fairmind.subgroup_scan import SCAN_METRICS, ScanResult, scan
from pytest_fairmind.summary import (
    FAIL,
    INCONCLUSIVE,
    OK,
    WARN,
    key_metrics,
    markdown,
    model_rows,
    verdict_lines,
    verdict_parts,
    worst,
    worst_subgroup,
)


def session_of(**models: ModelResult) -> SessionResult:
    return SessionResult(id="s1", project="proj", started="2026-01-01T00:00:00+00:00", models=dict(models))


def scan_model(name: str, *results: ScanResult) -> ModelResult:
    """A model as the aggregate builds it from ``fairmind.scan`` records: keys and report entries."""
    model = ModelResult(name)
    for result in results:
        model.metrics.update(result.metrics())
        model.scans[result.scope] = result.report_entry()
    return model


def planted(
    n: int = 40_000, seed: int = 0, metric: str = "selection_rate", top: int | None = 20
) -> ScanResult:
    """Women under 25 are selected 0.15 less often: the worst significant subgroup."""
    rng = np.random.default_rng(seed)
    sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
    band = np.array(["18-24", "25-59", "60+"])[rng.integers(0, 3, n)]
    region = rng.integers(0, 4, n)
    rate = np.where((sex == "female") & (band == "18-24"), 0.35, 0.5)
    y_pred = (rng.random(n) < rate).astype(int)
    y_true = rng.integers(0, 2, n)
    features = {"sex": sex, "band": band, "region": region}
    return scan(y_true, y_pred, features=features, metric=metric, top=top)


def null_scan(seed: int = 1) -> ScanResult:
    rng = np.random.default_rng(seed)
    n = 2000
    features = {"a": rng.integers(0, 3, n), "b": rng.integers(0, 2, n)}
    return scan(rng.integers(0, 2, n), rng.integers(0, 2, n), features=features, alpha=1e-9)


# --------------------------------------------------------------------------------------------------
# (a) scans: one line per model


def test_scan_line_names_the_worst_significant_subgroup_as_the_scan_does() -> None:
    result = planted()
    expected = result.worst_subgroup
    assert expected is not None and expected["conditions"] == {"sex": "female", "band": "18-24"}
    session = session_of(biased=scan_model("biased", result))
    found = worst_subgroup(session.models["biased"])
    assert found is not None and found.row == expected
    [line] = [p for p in verdict_parts(session) if p.text.startswith("scan:")]
    assert line.style == WARN
    assert line.text == (
        f"scan: biased: worst significant subgroup sex=female & band=18-24 (scan/selection_rate): "
        f"{expected['value']:.4g} vs {expected['complement_value']:.4g} for the rest, "
        f"ratio {expected['ratio']:.4g}, q={expected['q_value']:.3g}; "
        f"{result.significant} of {result.subgroups_tested} tested significant"
    )


def test_scan_line_without_significant_subgroup_counts_the_tests() -> None:
    result = null_scan()
    assert result.significant == 0 and result.subgroups_tested > 0
    lines = verdict_lines(session_of(fair=scan_model("fair", result)))
    assert f"scan: fair: no significant subgroup among {result.subgroups_tested} tested" in lines
    other = scan(*_labels(2000), features={"c": np.arange(2000) % 3}, scope="second", alpha=1e-9)
    both = verdict_lines(session_of(fair=scan_model("fair", result, other)))
    tested = result.subgroups_tested + other.subgroups_tested
    assert f"scan: fair: no significant subgroup among {tested} tested in 2 scans" in both


def _labels(n: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(5)
    return rng.integers(0, 2, n), rng.integers(0, 2, n)


def test_one_scan_line_per_model_and_none_for_models_without_scans() -> None:
    session = session_of(
        a=scan_model("a", planted(seed=2)),
        b=scan_model("b", null_scan()),
        c=ModelResult("c", metrics={"x/accuracy": 0.9}),
    )
    scan_lines = [line for line in verdict_lines(session) if line.startswith("scan:")]
    assert [line.split(":")[1].strip() for line in scan_lines] == ["a", "b"]


def test_worst_over_several_scans_follows_worst_ratio() -> None:
    # Two scans of one model: the line shows the one whose worst subgroup has the lower ratio.
    weak = planted(seed=3)
    strong = planted(seed=4, metric="accuracy")  # accuracy of random labels: nothing planted
    rng = np.random.default_rng(9)
    n = 40_000
    sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
    y_pred = (rng.random(n) < np.where(sex == "female", 0.2, 0.5)).astype(int)
    stronger = scan(rng.integers(0, 2, n), y_pred, features={"sex": sex}, scope="gender")
    model = scan_model("m", weak, strong, stronger)
    found = worst_subgroup(model)
    assert found is not None and found.scope == "gender"
    assert stronger.worst_subgroup is not None
    assert found.row == stronger.worst_subgroup
    lower = min(weak.worst_ratio, strong.worst_ratio, stronger.worst_ratio)
    assert math.isclose(
        min(found.row["value"], found.row["complement_value"])
        / max(found.row["value"], found.row["complement_value"]),
        lower,
    )


def test_scan_line_says_when_the_worst_subgroup_is_beyond_the_top_rows() -> None:
    # Women: a small gap over many rows (most significant); region 3: a large gap over few rows (worst).
    rng = np.random.default_rng(6)
    n = 40_000
    sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
    region = np.where(rng.random(n) < 0.0075, 3, rng.integers(0, 3, n))
    rate = np.where(region == 3, 0.2, np.where(sex == "female", 0.42, 0.5))
    y_pred = (rng.random(n) < rate).astype(int)
    features = {"sex": sex, "region": region}
    result = scan(rng.integers(0, 2, n), y_pred, features=features, max_order=1, top=1)
    assert result.worst_subgroup is not None and result.subgroups[0] != result.worst_subgroup
    [line] = [x for x in verdict_lines(session_of(m=scan_model("m", result))) if x.startswith("scan:")]
    assert f"its worst_ratio {result.worst_ratio:.4g} is a subgroup beyond the report's top 1 rows" in line


def test_harm_direction_in_the_summary_matches_the_scan() -> None:
    rules = importlib.import_module("pytest_fairmind.subgroup_scan")._RULES
    assert {m for m in SCAN_METRICS if rules[m][2]} == summary.SCAN_HARMED_WHEN_HIGH


# --------------------------------------------------------------------------------------------------
# (b) gates decided on evidence


def interval_gate(outcome: str, *, key: str = "fair/demographic_parity_ratio", **extra: Any) -> GateResult:
    fields: dict[str, Any] = {
        "expr": f"{key.rpartition('/')[2]} >= 0.8",
        "key": key,
        "value": 0.83,
        "bound": ">= 0.8",
        "outcome": outcome,
        "evidence": "interval",
        "ci_low": 0.79 if outcome == "inconclusive" else (0.81 if outcome == "pass" else 0.61),
        "ci_high": None,
        "p_value": 0.2,
        "p_adjusted": 0.4,
        "alpha": 0.0125,
    }
    fields.update(extra)
    return GateResult(**fields)


def point_gate(key: str, value: float, passed: bool) -> GateResult:
    return GateResult(f"{key.rpartition('/')[2]} >= 0.8", key, value, ">= 0.8", "pass" if passed else "fail")


@pytest.mark.parametrize(
    ("outcome", "word", "style"),
    [
        ("pass", "gate passed", OK),
        ("fail", "gate FAILED", FAIL),
        ("inconclusive", "gate INCONCLUSIVE", INCONCLUSIVE),
    ],
)
def test_each_evidence_gate_shows_value_interval_outcome_and_alpha(
    outcome: str, word: str, style: str
) -> None:
    gate = interval_gate(outcome)
    model = ModelResult("m", metrics={gate.key: 0.83}, gates=[gate])
    model.recompute_verdict()
    parts = verdict_parts(session_of(m=model))
    [line] = [p for p in parts if p.text.startswith(word)]
    low = f"{gate.ci_low:.4g}"
    assert line.text == (
        f"{word}: m: {gate.key} = 0.83, interval [{low}, inf], bound >= 0.8, alpha 0.0125 [{gate.expr}]"
    )
    assert line.style == style
    assert sum(p.text.startswith("gate ") for p in parts) == 1  # not listed again as a point failure


def test_inconclusive_has_its_own_style_in_verdict_and_gates_column() -> None:
    model = ModelResult("m", gates=[interval_gate("inconclusive"), interval_gate("pass", key="fair/x")])
    model.recompute_verdict()
    [row] = model_rows(session_of(m=model))
    assert (row.verdict.text, row.verdict.style) == ("INCONCLUSIVE", INCONCLUSIVE)
    assert (row.gates.text, row.gates.style) == ("1 passed, 1 inconclusive", INCONCLUSIVE)
    assert worst([summary.Part("a", WARN), summary.Part("b", INCONCLUSIVE)]) == INCONCLUSIVE
    assert worst([summary.Part("a", FAIL), summary.Part("b", INCONCLUSIVE)]) == FAIL
    model.gates.append(point_gate("fair/y", 0.5, passed=False))
    [row] = model_rows(session_of(m=model))
    assert (row.gates.text, row.gates.style) == ("1/3 failed, 1 inconclusive", FAIL)


def test_two_sided_interval_and_warn_only_failures() -> None:
    gate = interval_gate("fail", ci_low=0.1, ci_high=0.2, bound="<= 0.05", expr="d <= 0.05", value=0.15)
    lines = verdict_lines(session_of(m=ModelResult("m", gates=[gate])), gate_action="warn")
    assert (
        "gate failed (warn only): m: fair/demographic_parity_ratio = 0.15, interval [0.1, 0.2], "
        "bound <= 0.05, alpha 0.0125 [d <= 0.05]"
    ) in lines


def test_mixed_session_says_point_gated_keys_have_no_error_control() -> None:
    evidence = ModelResult("a", gates=[interval_gate("pass")])
    points = ModelResult("b", gates=[point_gate(f"s/k{i}", 0.9, True) for i in range(7)])
    parts = verdict_parts(session_of(a=evidence, b=points))
    [line] = [p for p in parts if "no error control" in p.text]
    assert line.style == WARN
    assert line.text == (
        "7 gated key(s) decided on point values (no interval), with no error control: "
        "b: s/k0, b: s/k1, b: s/k2, b: s/k3, b: s/k4 and 2 more"
    )
    assert f"- {line.text}" in markdown(session_of(a=evidence, b=points))


def test_no_error_control_line_only_when_it_applies() -> None:
    only_points = session_of(b=ModelResult("b", gates=[point_gate("s/k", 0.9, True)]))
    assert not any("no error control" in x for x in verdict_lines(only_points))
    only_points.settings = {"evidence": "interval"}  # asked for evidence, got none: say which keys
    assert any("no error control: b: s/k" in x for x in verdict_lines(only_points))
    only_intervals = session_of(a=ModelResult("a", gates=[interval_gate("pass")]))
    assert not any("no error control" in x for x in verdict_lines(only_intervals))
    # The gate pipeline's notice says it already: one line, not two.
    mixed = session_of(a=ModelResult("a", gates=[interval_gate("pass"), point_gate("s/k", 0.9, True)]))
    mixed.notices = [
        "1 gated key(s) have no interval and were gated on their point values, with no error control"
    ]
    assert sum("no error control" in x for x in verdict_lines(mixed)) == 1
    # A regression rule without a baseline decided nothing: not a point-gated key.
    no_baseline = GateResult("x ~ 0.01", "s/x", 0.5, "no baseline", "pass", rule="regression")
    quiet = session_of(a=ModelResult("a", gates=[interval_gate("pass"), no_baseline]))
    assert not any("no error control" in x for x in verdict_lines(quiet))


# --------------------------------------------------------------------------------------------------
# (c) key metrics per task, (d) in one pass


def _model_from_assess(scope: str, **kwargs: Any) -> ModelResult:
    result = assess(**kwargs)
    model = ModelResult("m")
    model.metrics = {f"{scope}/{k}": float(v) for k, v in result.metrics().items()}
    model.groups = {scope: result.by_group}
    return model


def _task_data(n: int = 600) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        "group": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
        "labels": rng.integers(0, 2, n),
        "predicted": rng.integers(0, 2, n),
        "scores": rng.random(n),
        "classes": rng.integers(0, 3, n),
        "predicted_classes": rng.integers(0, 3, n),
        "target": rng.normal(size=n),
        "estimate": rng.normal(size=n),
    }


def _shown(model: ModelResult) -> list[str]:
    return [k.rpartition("/")[2] for k, _ in key_metrics(model)]


def test_key_metrics_per_task_from_real_assess_results() -> None:
    d = _task_data()
    binary = _model_from_assess(
        "fair", y_true=d["labels"], y_pred=d["predicted"], sensitive_features=d["group"]
    )
    assert _shown(binary) == list(summary.HEADLINE_BY_TASK["binary"][:3])
    scores = _model_from_assess(
        "fair", y_true=d["labels"], y_score=d["scores"], sensitive_features=d["group"]
    )
    assert _shown(scores) == list(summary.HEADLINE_BY_TASK["scores"][:3])
    regression = _model_from_assess(
        "fair", y_true=d["target"], y_pred=d["estimate"], task="regression", sensitive_features=d["group"]
    )
    assert _shown(regression) == list(summary.HEADLINE_BY_TASK["regression"])
    multiclass = _model_from_assess(
        "fair",
        y_true=d["classes"],
        y_pred=d["predicted_classes"],
        task="multiclass",
        sensitive_features=d["group"],
    )
    assert _shown(multiclass) == list(summary.HEADLINE_BY_TASK["multiclass"])
    assert key_metrics(multiclass)[1] == ("fair/accuracy", multiclass.metrics["fair/accuracy"])


def test_key_metrics_mix_tasks_by_scope_and_prefer_gated_keys() -> None:
    model = ModelResult(
        "m",
        metrics={
            "reg/r2_score_group_min": 0.4,
            "reg/mean_absolute_error_group_max": 1.2,
            "reg/accuracy": 0.1,  # a callable's name in a regression scope: not a headline there
            "lab/accuracy": 0.9,
            "lab/demographic_parity_ratio": 0.85,
        },
    )
    # Each key ranks by its place in its own scope's task list, then by the metrics' order.
    assert [k for k, _ in key_metrics(model)] == [
        "reg/mean_absolute_error_group_max",
        "lab/demographic_parity_ratio",
        "reg/r2_score_group_min",
    ]
    model.gates = [
        point_gate("reg/accuracy", 0.1, passed=True),
        point_gate("lab/accuracy", 0.9, passed=False),
    ]
    assert [k for k, _ in key_metrics(model)] == ["lab/accuracy", "reg/accuracy"]
    assert [
        k for k, _ in key_metrics(ModelResult("x", metrics={"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}))
    ] == [
        "a",
        "b",
        "c",
    ]


def test_per_class_keys_make_their_scope_multiclass() -> None:
    model = ModelResult(
        "m",
        metrics={
            "mc/class.cat/demographic_parity_ratio": 0.7,
            "mc/demographic_parity_ratio": 0.7,
            "mc/accuracy": 0.6,
            "mc/equalized_odds_difference": 0.2,
        },
    )
    assert [k for k, _ in key_metrics(model)] == ["mc/equalized_odds_difference", "mc/accuracy"]


def test_headline_names_exist_in_the_metrics_table() -> None:
    known = set(AGGREGATE_METRICS) | set(DIRECTIONS)
    for task, names in summary.HEADLINE_BY_TASK.items():
        assert set(names) <= known, task


class CountingDict(dict[str, float]):
    """A metrics dict that counts how often it is iterated."""

    iterations = 0

    def __iter__(self) -> Iterator[str]:
        CountingDict.iterations += 1
        return super().__iter__()

    def keys(self) -> Any:
        CountingDict.iterations += 1
        return super().keys()

    def items(self) -> Any:
        CountingDict.iterations += 1
        return super().items()


def test_key_metrics_reads_the_metrics_once_per_model() -> None:
    metrics = CountingDict({f"t{i}/m{j}": float(j) for i in range(200) for j in range(50)})
    metrics["t7/accuracy"] = 0.9
    metrics["t3/demographic_parity_difference"] = 0.1
    model = ModelResult("m", metrics=metrics)
    CountingDict.iterations = 0
    assert [k for k, _ in key_metrics(model)] == ["t3/demographic_parity_difference", "t7/accuracy"]
    assert CountingDict.iterations == 1


# --------------------------------------------------------------------------------------------------
# Markdown: the same content


def test_markdown_has_the_scan_and_gate_lines() -> None:
    biased = scan_model("biased", planted())
    gate = interval_gate("inconclusive")
    biased.gates = [gate]
    biased.recompute_verdict()
    fair = scan_model("fair", null_scan())
    session = session_of(biased=biased, fair=fair)
    text = markdown(session)
    terminal = verdict_lines(session)
    for line in terminal:
        if line.startswith("scan:"):
            assert f"- {line}\n" in text
    assert (
        "- ❔ gate inconclusive: **biased** `fair/demographic_parity_ratio` = 0.83, interval [0.79, inf], "
        "bound >= 0.8, alpha 0.0125"
    ) in text
    assert "| biased | ❔ inconclusive |" in text
    assert "| 0 passed, 1 inconclusive |" in text
