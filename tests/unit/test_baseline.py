"""Regression rules (issue 8) without pytest sessions: the grammar, tolerances, directions,
:meth:`Baseline.compare`, the sources read from files and the history, and the summary table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from pytest_fairmind import history, report
from pytest_fairmind.gating.baseline import NO_BASELINE, Baseline
from pytest_fairmind.gating.directions import (
    HIGHER,
    LOWER,
    Declaration,
    Directions,
    declarations,
    recorded_directions,
)
from pytest_fairmind.gating.evaluate import evaluate
from pytest_fairmind.gating.grammar import GateSyntaxError, Tolerance, parse_gate
from pytest_fairmind.gating.sources import BaselineError, BaselineRequest, check_source, read_baseline
from pytest_fairmind.result import GateResult, ModelResult, SessionResult
from pytest_fairmind.summary import markdown, regression_rows, verdict_lines

EOD = "sex/equalized_odds_difference"
DPR = "sex/demographic_parity_ratio"


# --- grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "model", "metric", "amount", "relative"),
    [
        ("equalized_odds_difference ~ 0.02", None, "equalized_odds_difference", 0.02, False),
        ("equalized_odds_difference~0.02", None, "equalized_odds_difference", 0.02, False),
        ("m:*_ratio ~ 5%", "m", "*_ratio", 5.0, True),
        ("m:*_ratio ~ 5 %", "m", "*_ratio", 5.0, True),
        ("team:credit-v2:sex/accuracy ~ 1e-2", "team:credit-v2", "sex/accuracy", 0.01, False),
        ("x ~ 0", None, "x", 0.0, False),
        ("x ~ 0%", None, "x", 0.0, True),
        ("x ~ +.5", None, "x", 0.5, False),
    ],
)
def test_regression_rule_grammar(
    expr: str, model: str | None, metric: str, amount: float, relative: bool
) -> None:
    gate = parse_gate(expr)
    assert (gate.model, gate.metric, gate.bounds) == (model, metric, ())
    assert gate.tolerance == Tolerance(amount, relative)
    assert gate.expr == expr


def test_marker_model_applies_to_a_rule_without_one() -> None:
    assert parse_gate("x ~ 1", model="m").model == "m"
    assert parse_gate("n:x ~ 1", model="m").model == "n"


def test_ordinary_gates_are_unchanged() -> None:
    gate = parse_gate("m:0.8 <= demographic_parity_ratio <= 1")
    assert gate.tolerance is None and gate.model == "m" and len(gate.bounds) == 2


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("x ~ -1", "finite number >= 0"),
        ("x ~ -5%", "finite number >= 0"),
        ("x ~ inf", "finite number >= 0"),
        ("x ~ abc", "'abc' is not a tolerance"),
        ("x ~ nan", "'nan' is not a tolerance"),
        ("x ~ 5%%", "'5%%' is not a tolerance"),
        ("x ~ %", "'%' is not a tolerance"),
        ("x ~", "the tolerance is missing"),
        ("x ~   ", "the tolerance is missing"),
        ("~ 0.1", "[MODEL:]METRIC ~ TOLERANCE"),
        ("m: ~ 0.1", "[MODEL:]METRIC ~ TOLERANCE"),
        ("x <= 0.1 ~ 0.2", "[MODEL:]METRIC ~ TOLERANCE"),
        ("x ~ 0.1 ~ 0.2", "[MODEL:]METRIC ~ TOLERANCE"),
        ("x ~= 0.1", "is not a tolerance"),
        ("0.5 ~ 0.1", "is a number, not a metric name"),
        (":x ~ 0.1", "empty model name"),
    ],
)
def test_regression_rule_syntax_errors(expr: str, message: str) -> None:
    with pytest.raises(GateSyntaxError) as info:
        parse_gate(expr)
    assert message in str(info.value)
    assert repr(expr) in str(info.value) or expr.startswith(":")


# --- Tolerance -------------------------------------------------------------------------------


def test_absolute_tolerance_ignores_the_baseline() -> None:
    tol = Tolerance(0.02)
    assert tol.allowed(0.1) == 0.02 and tol.allowed(-3.0) == 0.02 and tol.allowed(0.0) == 0.02
    assert str(tol) == "0.02"


def test_relative_tolerance_is_a_share_of_the_baseline_magnitude() -> None:
    tol = Tolerance(10, relative=True)
    assert tol.allowed(0.5) == pytest.approx(0.05)
    assert tol.allowed(-0.5) == pytest.approx(0.05)  # |baseline|: never a negative allowance
    assert tol.allowed(0.0) == 0.0  # zero baseline: no worsening allowed
    assert str(tol) == "10%"


@pytest.mark.parametrize("amount", [-0.1, math.inf, math.nan])
def test_tolerance_rejects_bad_amounts(amount: float) -> None:
    with pytest.raises(ValueError):
        Tolerance(amount)


# --- directions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "direction"),
    [
        ("equalized_odds_difference", LOWER),
        ("sex/demographic_parity_difference", LOWER),
        ("sex.age/equal_opportunity_difference", LOWER),
        ("sex/demographic_parity_ratio", HIGHER),
        ("sex/equalized_odds_ratio.ci_low", HIGHER),
        ("sex/equalized_odds_difference.ci_high", LOWER),
        ("accuracy", HIGHER),
        ("sex/accuracy", HIGHER),
        ("sex/roc_auc_score_group_min", HIGHER),
        ("sex/f1_score_group_min", HIGHER),
        ("sex/zero_one_loss_group_max", LOWER),
        ("sex/log_loss_group_max", LOWER),
        ("sex/mean_absolute_error", LOWER),
        ("sex/mean_squared_error.ci_high", LOWER),
        ("sex/selection_rate", None),
        ("sex/count", None),
        ("calibration_gap", None),
        ("accuracy_drop", None),
    ],
)
def test_builtin_directions(key: str, direction: str | None) -> None:
    assert Directions().lookup("m", key)[0] == direction


def test_declared_directions_match_like_gate_metrics() -> None:
    directions = Directions.of_globs(lower=["calib*", "m2:latency"], higher=["sex/auc"])
    assert directions.lookup("m", "sex/calibration_gap") == (LOWER, "")  # last segment
    assert directions.lookup("m", "calibration_gap") == (LOWER, "")
    assert directions.lookup("m", "sex/auc") == (HIGHER, "")
    assert directions.lookup("m", "age/auc")[0] is None  # a pattern with "/" matches whole keys
    assert directions.lookup("m2", "latency") == (LOWER, "")
    assert directions.lookup("m", "latency") == (None, "direction unknown")  # model-scoped


def test_declarations_override_builtins_and_conflicts_are_not_guessed() -> None:
    assert Directions.of_globs(higher=["*_difference"]).lookup("m", EOD)[0] == HIGHER
    both = Directions.of_globs(lower=["score"], higher=["sc*"])
    assert both.lookup("m", "score") == (None, "declared both lower and higher is better")


def test_the_first_layer_that_declares_wins() -> None:
    marker = declarations(["score"], HIGHER, model="m")
    ini = declarations(["score"], LOWER)
    directions = Directions.layered(marker, ini)
    assert directions.lookup("m", "score")[0] == HIGHER
    assert directions.lookup("other", "score")[0] == LOWER


def test_declarations_parse_model_prefixes() -> None:
    assert declarations(["a", " m:b ", "", "x:y:c*"], LOWER) == [
        Declaration("a", LOWER),
        Declaration("b", LOWER, "m"),
        Declaration("c*", LOWER, "x:y"),
    ]
    with pytest.raises(ValueError):
        declarations(["a"], "sideways")


# --- Baseline.compare ------------------------------------------------------------------------


def _compare(
    expr: str, value: float, base: float | None, *, strict: bool = False, key: str = EOD, **kw: object
) -> tuple[GateResult | None, Baseline]:
    models = {} if base is None else {"m": {key: base}}
    baseline = Baseline(source="b.json", models=models, description="b.json", strict=strict, **kw)  # type: ignore[arg-type]
    return baseline.compare(parse_gate(expr), "m", key, value), baseline


@pytest.mark.parametrize(
    ("expr", "value", "base", "passed", "limit"),
    [
        ("eod ~ 0.02", 0.11, 0.1, True, "<= 0.12"),
        ("eod ~ 0.02", 0.12, 0.1, True, "<= 0.12"),  # the boundary is allowed
        ("eod ~ 0.02", 0.1201, 0.1, False, "<= 0.12"),
        ("eod ~ 0.02", 0.05, 0.1, True, "<= 0.12"),  # better is always fine
        ("eod ~ 0.1", 0.8, 0.7, True, "<= 0.8"),  # 0.7 + 0.1 < 0.8 in floats: still the boundary
        ("eod ~ 0", 0.1, 0.1, True, "<= 0.1"),
        ("eod ~ 0", 0.1000001, 0.1, False, "<= 0.1"),
        ("eod ~ 10%", 0.11, 0.1, True, "<= 0.11"),
        ("eod ~ 10%", 0.111, 0.1, False, "<= 0.11"),
        ("eod ~ 10%", 0.0, 0.0, True, "<= 0"),  # zero baseline: staying at 0 passes
        ("eod ~ 10%", 1e-9, 0.0, False, "<= 0"),  # ... any worsening fails
        ("eod ~ 0.02", math.nan, 0.1, False, "<= 0.12"),  # NaN fails
        ("eod ~ 0.02", math.inf, 0.1, False, "<= 0.12"),
    ],
)
def test_compare_lower_is_better(expr: str, value: float, base: float, passed: bool, limit: str) -> None:
    result, baseline = _compare(expr.replace("eod", "equalized_odds_difference"), value, base)
    assert result is not None
    assert result.passed is passed
    assert result.bound.startswith(limit + " (baseline ")
    assert "lower is better" in result.bound
    assert result.baseline == base and result.direction == LOWER
    if math.isfinite(value):
        assert result.change == pytest.approx(value - base)
    else:
        assert result.change is None
    assert not baseline.problems


@pytest.mark.parametrize(
    ("expr", "value", "base", "passed"),
    [
        ("demographic_parity_ratio ~ 0.05", 0.85, 0.9, True),
        ("demographic_parity_ratio ~ 0.05", 0.84, 0.9, False),
        ("demographic_parity_ratio ~ 0.05", 1.0, 0.9, True),
        ("demographic_parity_ratio ~ 10%", 0.81, 0.9, True),
        ("demographic_parity_ratio ~ 10%", 0.80, 0.9, False),
        ("demographic_parity_ratio ~ 50%", 0.0, 0.0, True),
        ("demographic_parity_ratio ~ 50%", -0.001, 0.0, False),
    ],
)
def test_compare_higher_is_better(expr: str, value: float, base: float, passed: bool) -> None:
    result, _ = _compare(expr, value, base, key=DPR)
    assert result is not None and result.passed is passed
    assert result.bound.startswith(">= ") and "higher is better" in result.bound
    assert result.direction == HIGHER


@pytest.mark.parametrize(
    ("models", "why"),
    [
        ({}, "new model: not in the baseline"),
        ({"m": {"other": 1.0}}, "new metric: not in the baseline"),
        ({"m": {EOD: math.nan}}, "the baseline value is nan"),
        ({"m": {EOD: math.inf}}, "the baseline value is inf"),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_missing_baseline_values(models: dict[str, dict[str, float]], why: str, strict: bool) -> None:
    baseline = Baseline(source="b.json", models=models, description="b.json", strict=strict)
    result = baseline.compare(parse_gate("*_difference ~ 0.02"), "m", EOD, 0.3)
    assert result is not None
    assert result.bound == NO_BASELINE and result.baseline is None and result.change is None
    assert result.passed is not strict
    assert baseline.missing == {("m", EOD): why}
    assert baseline.problems
    [notice] = baseline.notices()
    assert notice.startswith("warning: no baseline value in b.json for 1 metric(s): m: " + EOD)
    assert why in notice
    assert ("FAILED (--fairmind-strict)" in notice) is strict


def test_unavailable_source_gives_no_baseline_for_everything() -> None:
    baseline = Baseline(source=None, available=False, reason="no --fairmind-baseline given")
    result = baseline.compare(parse_gate("accuracy ~ 0.01"), "m", "accuracy", 0.9)
    assert result is not None and result.bound == NO_BASELINE and result.passed
    [notice] = baseline.notices()
    assert notice.startswith(
        "warning: no baseline (no --fairmind-baseline given) for 1 metric(s): m: accuracy"
    )


def test_unknown_direction_is_not_guessed() -> None:
    result, baseline = _compare("sel* ~ 0.01", 0.5, 0.4, key="sex/selection_rate")
    assert result is None
    assert baseline.undirected == {"sel* ~ 0.01": {("m", "sex/selection_rate"): "direction unknown"}}
    assert baseline.problems
    [notice] = baseline.notices()
    assert "m: sex/selection_rate: direction unknown [sel* ~ 0.01]" in notice
    assert "fairmind_lower_is_better" in notice and "higher_is_better=" in notice


def test_missing_is_listed_once_per_metric_however_many_rules_hit_it() -> None:
    baseline = Baseline(source="b", available=False, reason="nothing")
    for expr in ("*_difference ~ 0.01", "equalized_odds_difference ~ 5%"):
        baseline.compare(parse_gate(expr), "m", EOD, 0.2)
    assert list(baseline.missing) == [("m", EOD)]


def test_notices_list_at_most_five_metrics() -> None:
    baseline = Baseline(source="b", available=False, reason="nothing")
    for i in range(7):
        baseline.compare(parse_gate("*_difference ~ 0.01"), "m", f"s{i}/x_difference", 0.2)
    [notice] = baseline.notices()
    assert "for 7 metric(s)" in notice and "and 2 more" in notice and "s5/" not in notice


# --- evaluate() with a baseline --------------------------------------------------------------


def _models(**metrics: dict[str, float]) -> dict[str, ModelResult]:
    return {name: ModelResult(name=name, metrics=dict(values)) for name, values in metrics.items()}


def test_evaluate_applies_rules_per_model_and_metric_glob() -> None:
    models = _models(a={EOD: 0.2, DPR: 0.9, "sex/count": 100}, b={EOD: 0.1})
    baseline = Baseline(source="f", models={"a": {EOD: 0.1, DPR: 0.9}, "b": {EOD: 0.1}}, description="f")
    gates = [parse_gate("a:* ~ 0.05"), parse_gate("b:equalized_odds_difference ~ 0.05")]
    not_evaluated = evaluate(gates, models, baseline=baseline)
    assert not_evaluated == []
    a = {g.key: g for g in models["a"].gates}
    assert set(a) == {EOD, DPR}  # sex/count has no known direction
    assert not a[EOD].passed and a[DPR].passed
    assert models["a"].verdict == "fail" and models["b"].verdict == "pass"
    assert baseline.undirected == {"a:* ~ 0.05": {("a", "sex/count"): "direction unknown"}}


def test_evaluate_lists_rules_that_evaluated_nothing() -> None:
    models = _models(m={"sex/selection_rate": 0.3})
    baseline = Baseline(source="f", models={}, description="f")
    gates = [parse_gate("selection_rate ~ 0.1"), parse_gate("nothing_here ~ 0.1")]
    assert evaluate(gates, models, baseline=baseline) == ["selection_rate ~ 0.1", "nothing_here ~ 0.1"]
    assert models["m"].gates == []


def test_evaluate_without_a_baseline_object_does_not_evaluate_rules() -> None:
    models = _models(m={EOD: 0.1})
    assert evaluate([parse_gate("eq* ~ 0.1"), parse_gate("eq* <= 0.2")], models) == ["eq* ~ 0.1"]
    assert [g.expr for g in models["m"].gates] == ["eq* <= 0.2"]


# --- sources ---------------------------------------------------------------------------------


def _session(sid: str, started: str, project: str = "p", /, **models: ModelResult) -> SessionResult:
    return SessionResult(id=sid, project=project, started=started, models=dict(models))


def _save(folder: Path, session: SessionResult) -> Path:
    return history.save(folder, session, keep=100)


def test_file_source(tmp_path: Path) -> None:
    session = _session(
        "s1", "2025-01-01T00:00:00+00:00", m=ModelResult("m", metrics={EOD: 0.1, "x": math.nan})
    )
    path = tmp_path / "base.json"
    path.write_text(report.dumps(session), encoding="utf-8")
    baseline = read_baseline(
        BaselineRequest("base.json", project="other", history_folder=tmp_path, workdir=str(tmp_path))
    )
    assert baseline.available and baseline.models["m"][EOD] == 0.1 and math.isnan(baseline.models["m"]["x"])
    assert baseline.description == "base.json (session s1)"
    missing = read_baseline(
        BaselineRequest("nope.json", project="p", history_folder=tmp_path, workdir=str(tmp_path))
    )
    assert not missing.available and missing.reason == "nope.json: no such file"


def test_check_source(tmp_path: Path) -> None:
    check_source("last")
    check_source("does-not-exist-yet.json", workdir=str(tmp_path))  # first run: fine
    (tmp_path / "bad.json").write_text("<html>404</html>", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"bad\.json: not a readable pytest-fairmind report"):
        check_source("bad.json", workdir=str(tmp_path))
    (tmp_path / "other.json").write_text(json.dumps({"schema": "x"}), encoding="utf-8")
    with pytest.raises(BaselineError, match="not a readable pytest-fairmind report"):
        check_source(str(tmp_path / "other.json"))
    with pytest.raises(BaselineError, match="a folder"):
        check_source(str(tmp_path))


def test_last_source_takes_each_metrics_newest_usable_value(tmp_path: Path) -> None:
    folder = tmp_path / ".fairmind"
    # oldest: both metrics of m; model z
    s1 = ModelResult("m", metrics={EOD: 0.10, DPR: 0.9})
    _save(folder, _session("s1", "2025-01-01T00:00:01+00:00", m=s1, z=ModelResult("z", metrics={EOD: 0.5})))
    # a run of a few tests: only one metric, NaN
    _save(folder, _session("s2", "2025-01-01T00:00:02+00:00", m=ModelResult("m", metrics={DPR: math.nan})))
    # another project: ignored
    _save(folder, _session("s3", "2025-01-01T00:00:03+00:00", "q", m=ModelResult("m", metrics={EOD: 9.0})))
    # a regression: EOD failed its rule against a real baseline, so it is not the next baseline
    regressed = ModelResult(
        "m",
        metrics={EOD: 0.30, DPR: 0.8},
        gates=[
            GateResult(
                "eq* ~ 0.02", EOD, 0.30, "<= 0.12 (...)", "fail", "regression", baseline=0.1, change=0.2
            ),
            GateResult(
                "dem* ~ 0.2", DPR, 0.8, ">= 0.7 (...)", "pass", "regression", baseline=0.9, change=-0.1
            ),
        ],
    )
    _save(folder, _session("s4", "2025-01-01T00:00:04+00:00", m=regressed))
    # the session being evaluated now (excluded by id)
    _save(folder, _session("now", "2025-01-01T00:00:05+00:00", m=ModelResult("m", metrics={EOD: 7.0})))

    baseline = read_baseline(
        BaselineRequest("last", project="p", history_folder=folder, exclude_session="now")
    )
    assert baseline.available
    assert baseline.models == {"m": {EOD: 0.10, DPR: 0.8}, "z": {EOD: 0.5}}
    assert baseline.description.startswith("last (3 earlier session(s) in ")

    # fairmind check of s2: only sessions up to its start count
    older = read_baseline(
        BaselineRequest(
            "last",
            project="p",
            history_folder=folder,
            exclude_session="s2",
            before="2025-01-01T00:00:02+00:00",
        )
    )
    assert older.models == {"m": {EOD: 0.10, DPR: 0.9}, "z": {EOD: 0.5}}


def test_last_source_keeps_a_nan_when_nothing_finite_is_known(tmp_path: Path) -> None:
    folder = tmp_path / ".fairmind"
    _save(folder, _session("s1", "2025-01-01T00:00:01+00:00", m=ModelResult("m", metrics={EOD: math.nan})))
    baseline = read_baseline(BaselineRequest("last", project="p", history_folder=folder))
    assert math.isnan(baseline.models["m"][EOD])
    assert baseline.value("m", EOD) == (None, "the baseline value is nan")


def test_no_failed_no_baseline_results_are_skipped_under_strict(tmp_path: Path) -> None:
    """A strict first run fails its rules with "no baseline": its values still become the baseline."""
    folder = tmp_path / ".fairmind"
    first = ModelResult(
        "m", metrics={EOD: 0.1}, gates=[GateResult("eq* ~ 0.02", EOD, 0.1, NO_BASELINE, "fail", "regression")]
    )
    _save(folder, _session("s1", "2025-01-01T00:00:01+00:00", m=first))
    assert read_baseline(BaselineRequest("last", project="p", history_folder=folder)).models == {
        "m": {EOD: 0.1}
    }


def test_last_source_orders_sessions_of_the_same_second_by_write_time(tmp_path: Path) -> None:
    folder = tmp_path / ".fairmind"
    stamp = "2025-01-01T00:00:01+00:00"
    # ids chosen so that the later session sorts first by name
    late = _save(folder, _session("aaaa", stamp, m=ModelResult("m", metrics={EOD: 0.2})))
    early = _save(folder, _session("zzzz", stamp, m=ModelResult("m", metrics={EOD: 0.1})))
    os.utime(early, (1_000_000, 1_000_000))
    os.utime(late, (2_000_000, 2_000_000))
    assert read_baseline(BaselineRequest("last", project="p", history_folder=folder)).models["m"][EOD] == 0.2


def test_last_source_with_no_history(tmp_path: Path) -> None:
    baseline = read_baseline(BaselineRequest("last", project="p", history_folder=tmp_path / "none"))
    assert not baseline.available
    assert "no earlier session of project 'p'" in baseline.reason and "first run?" in baseline.reason


def test_no_source() -> None:
    baseline = read_baseline(
        BaselineRequest(None, project="p", history_folder=Path("x"), no_source_reason="no --baseline given")
    )
    assert not baseline.available and baseline.reason == "no --baseline given"


def test_recorded_directions_come_back_from_a_report() -> None:
    model = ModelResult(
        "m*",
        metrics={"sex/gap[1]": 0.1},
        gates=[GateResult("gap* ~ 1", "sex/gap[1]", 0.1, NO_BASELINE, "pass", "regression", direction=LOWER)],
    )
    session = report.session_from_dict(json.loads(report.dumps(_session("s", "2025", **{"m*": model}))))
    assert session.models["m*"].gates[0].direction == LOWER
    directions = Directions.layered(recorded_directions(session))
    assert directions.lookup("m*", "sex/gap[1]")[0] == LOWER
    assert directions.lookup("mx", "sex/gap[1]")[0] is None  # exact model and key only
    assert directions.lookup("m*", "sex/gap1")[0] is None


# --- the summary table and the report fields ---------------------------------------------------


def _evaluated_session() -> SessionResult:
    models = _models(
        a={EOD: 0.15, DPR: 0.9, "sex/new_difference": 0.1}, b={"sex/equal_opportunity_difference": math.nan}
    )
    baseline = Baseline(
        source="f",
        models={"a": {EOD: 0.1, DPR: 0.8}, "b": {"sex/equal_opportunity_difference": 0.0}},
        description="f",
    )
    session = _session("s", "2025-01-01T00:00:00+00:00", **models)
    session.gates_not_evaluated = evaluate([parse_gate("*_difference ~ 0.02"), parse_gate("*_ratio ~ 10%")],
                                           models, baseline=baseline)  # fmt: skip
    session.notices = baseline.notices()
    return session


def test_regression_table_rows() -> None:
    rows = regression_rows(_evaluated_session())
    assert rows == [
        ["a", EOD, "0.1", "0.15", "+0.05 (+50.0%)", "<= 0.12", "WORSE"],
        ["a", "sex/new_difference", "no baseline", "0.1", "-", "-", "no baseline"],
        ["a", DPR, "0.8", "0.9", "+0.1 (+12.5%)", ">= 0.72", "ok"],
        ["b", "sex/equal_opportunity_difference", "0", "nan", "-", "<= 0.02", "FAIL: nan"],
    ]


def test_verdict_lines_show_the_table_failures_and_the_warning() -> None:
    lines = verdict_lines(_evaluated_session())
    text = "\n".join(lines)
    header = next(line for line in lines if line.startswith("model  metric"))
    assert header.split() == ["model", "metric", "baseline", "current", "change", "limit", "result"]
    assert (
        f"gate FAILED: a: {EOD} = 0.15, bound <= 0.12 (baseline 0.1, tolerance 0.02, lower is better) "
        "[*_difference ~ 0.02]" in lines
    )
    assert "gate FAILED: b: sex/equal_opportunity_difference = nan" in text
    assert "warning: no baseline value in f for 1 metric(s): a: sex/new_difference (new metric" in text


def test_markdown_has_the_regression_table() -> None:
    text = markdown(_evaluated_session())
    assert "| model | metric | baseline | current | change | limit | result |" in text
    assert f"| a | {EOD} | 0.1 | 0.15 | +0.05 (+50.0%) | <= 0.12 | WORSE |" in text


def test_report_fields_of_regression_gates() -> None:
    doc = json.loads(report.dumps(_evaluated_session()))
    gates = {g["key"]: g for g in doc["models"]["a"]["gates"]}
    assert gates[EOD]["baseline"] == 0.1 and gates[EOD]["change"] == pytest.approx(0.05)
    assert gates[EOD]["direction"] == "lower" and gates[EOD]["passed"] is False
    assert gates["sex/new_difference"]["bound"] == NO_BASELINE
    assert gates["sex/new_difference"]["baseline"] is None and gates["sex/new_difference"]["change"] is None
    [nan_gate] = doc["models"]["b"]["gates"]
    assert nan_gate["value"] is None and nan_gate["change"] is None and nan_gate["baseline"] == 0.0
    plain = json.loads(
        report.dumps(
            _session("s", "x", m=ModelResult("m", gates=[GateResult("x<=1", "x", 0.5, "<= 1", "pass")]))
        )
    )
    fields = {"expr", "key", "value", "bound", "passed", "outcome", "rule"}
    assert set(plain["models"]["m"]["gates"][0]) == fields
