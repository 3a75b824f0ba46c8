"""``gating.run``: the one gate pipeline of the plugin's session end and ``fairmind check``.

The exit policy as a matrix: gate action (fail / warn) x strict (on / off) x what happened (a
failed gate, a gate that matched nothing, a regression rule without a baseline, all passed).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_fairmind import gating, report
from pytest_fairmind.gating.baseline import NO_BASELINE
from pytest_fairmind.result import BOUND, FAIL, PASS, REGRESSION, ModelResult, SessionResult

EOD = "sex/equalized_odds_difference"

#: scenario -> (gates, the baseline file's value of EOD or None for no file)
SCENARIOS: dict[str, tuple[list[str], float | None]] = {
    "all passed": (["accuracy >= 0.5", "equalized_odds_difference ~ 0.05"], 0.1),
    "failed gate": (["accuracy >= 0.95"], None),
    "not evaluated": (["no_such_metric <= 1"], None),
    "missing baseline": (["equalized_odds_difference ~ 0.05"], None),
}

# (scenario, gate_action, strict) -> exit status from a passing session (0)
POLICY = {
    ("all passed", "fail", False): 0,
    ("all passed", "fail", True): 0,
    ("all passed", "warn", False): 0,
    ("all passed", "warn", True): 0,
    ("failed gate", "fail", False): 1,
    ("failed gate", "fail", True): 1,
    ("failed gate", "warn", False): 0,
    ("failed gate", "warn", True): 0,  # strict is about what could not be checked, not gate failures
    ("not evaluated", "fail", False): 0,
    ("not evaluated", "fail", True): 1,
    ("not evaluated", "warn", False): 0,
    ("not evaluated", "warn", True): 1,
    ("missing baseline", "fail", False): 0,
    ("missing baseline", "fail", True): 1,
    ("missing baseline", "warn", False): 0,
    ("missing baseline", "warn", True): 1,
}


def _models() -> dict[str, ModelResult]:
    return {"m": ModelResult("m", metrics={"accuracy": 0.9, EOD: 0.12})}


def _request(tmp_path: Path, baseline_value: float | None) -> gating.BaselineRequest:
    path = tmp_path / "base.json"
    if baseline_value is not None:
        session = SessionResult(id="b", project="p", started="2025-01-01T00:00:00+00:00")
        session.models = {"m": ModelResult("m", metrics={EOD: baseline_value})}
        path.write_text(report.dumps(session), encoding="utf-8")
    return gating.BaselineRequest(str(path), project="p", history_folder=tmp_path / ".fairmind")


@pytest.mark.parametrize(("scenario", "gate_action", "strict"), list(POLICY))
def test_exit_policy(tmp_path: Path, scenario: str, gate_action: str, strict: bool) -> None:
    exprs, baseline_value = SCENARIOS[scenario]
    models = _models()
    gates = [gating.parse_gate(e) for e in exprs]
    outcome = gating.run(
        gates,
        models,
        baseline=_request(tmp_path, baseline_value),
        strict=strict,
        gate_action=gate_action,
    )
    assert outcome.exitstatus == POLICY[(scenario, gate_action, strict)]
    assert outcome.strict_failure == (strict and scenario in ("not evaluated", "missing baseline"))
    failed_keys = [(name, g.key) for name, g in outcome.failed]
    if scenario == "failed gate":
        assert failed_keys == [("m", "accuracy")]
        assert models["m"].verdict == "fail"  # whatever the action: the verdict says what happened
    elif scenario == "missing baseline":
        [result] = models["m"].gates
        assert result.bound == NO_BASELINE and result.rule == REGRESSION
        assert result.outcome == (FAIL if strict else PASS)
        assert failed_keys == ([("m", EOD)] if strict else [])
        assert outcome.notices and outcome.notices[0].startswith("warning: no baseline")
    elif scenario == "not evaluated":
        assert outcome.not_evaluated == ["no_such_metric <= 1"] and not models["m"].gates
    else:
        assert failed_keys == [] and outcome.not_evaluated == [] and models["m"].verdict == "pass"


def test_results_say_which_rule_made_them(tmp_path: Path) -> None:
    models = _models()
    gates = [gating.parse_gate("accuracy >= 0.5"), gating.parse_gate("equalized_odds_difference ~ 0.05")]
    outcome = gating.run(gates, models, baseline=_request(tmp_path, 0.1))
    rules = {g.key: (g.rule, g.outcome) for g in models["m"].gates}
    assert rules == {"accuracy": (BOUND, PASS), EOD: (REGRESSION, PASS)}
    assert outcome.baseline is not None and outcome.baseline.models == {"m": {EOD: 0.1}}
    regression = next(g for g in models["m"].gates if g.rule == REGRESSION)
    assert regression.baseline == 0.1 and regression.direction == "lower"
    assert regression.change == pytest.approx(0.02)


def test_a_regression_past_its_tolerance_fails(tmp_path: Path) -> None:
    models = _models()
    outcome = gating.run(
        [gating.parse_gate("equalized_odds_difference ~ 0.01")], models, baseline=_request(tmp_path, 0.1)
    )
    assert outcome.exitstatus == 1
    [(name, result)] = outcome.failed
    assert (name, result.key, result.rule, result.outcome) == ("m", EOD, REGRESSION, FAIL)


@pytest.mark.parametrize(("given", "expected"), [(0, 1), (5, 1), (1, 1), (2, 2), (3, 3), (4, 4)])
def test_a_failure_escalates_only_success(given: int, expected: int) -> None:
    """Success and "no tests collected" become 1; an interrupted or errored session keeps its status."""
    outcome = gating.run([gating.parse_gate("accuracy >= 0.95")], _models(), exitstatus=given)
    assert outcome.exitstatus == expected
    assert gating.escalate(given) == expected


def test_a_passing_run_keeps_the_status_given() -> None:
    assert gating.run([gating.parse_gate("accuracy >= 0.5")], _models(), exitstatus=5).exitstatus == 5
    assert gating.run([], {}, exitstatus=0).exitstatus == 0


def test_baseline_read_only_when_a_regression_rule_needs_it(tmp_path: Path) -> None:
    request = _request(tmp_path, 0.1)
    outcome = gating.run([gating.parse_gate("accuracy >= 0.5")], _models(), baseline=request)
    assert outcome.baseline is None
    assert outcome.notices == [
        f"baseline {request.source!r} given but no regression rule uses it "
        "(add one such as 'equalized_odds_difference ~ 0.02')"
    ]
    no_source = gating.BaselineRequest(None, project="p", history_folder=tmp_path)
    assert gating.run([gating.parse_gate("accuracy >= 0.5")], _models(), baseline=no_source).notices == []


def test_without_a_baseline_request_regression_rules_are_not_evaluated() -> None:
    outcome = gating.run([gating.parse_gate("equalized_odds_difference ~ 0.05")], _models(), strict=True)
    assert outcome.not_evaluated == ["equalized_odds_difference ~ 0.05"]
    assert outcome.strict_failure and outcome.exitstatus == 1


def test_no_source_reason_and_nan_values(tmp_path: Path) -> None:
    models = {"m": ModelResult("m", metrics={"accuracy": math.nan})}
    request = gating.BaselineRequest(
        None, project="p", history_folder=tmp_path, no_source_reason="no --baseline given"
    )
    outcome = gating.run(
        [gating.parse_gate("accuracy >= 0.5"), gating.parse_gate("accuracy ~ 0.1")], models, baseline=request
    )
    assert [(g.rule, g.outcome) for g in models["m"].gates] == [(BOUND, FAIL), (REGRESSION, PASS)]
    assert "no baseline (no --baseline given)" in outcome.notices[0]
    assert outcome.exitstatus == 1


def test_unknown_gate_action_is_refused() -> None:
    with pytest.raises(ValueError, match="gate_action"):
        gating.run([], {}, gate_action="ignore")
