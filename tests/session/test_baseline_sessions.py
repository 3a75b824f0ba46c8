"""Regression rules in real pytest sessions (issue 8): a session, a worsened model, a second session.

Every inner session is a real pytester run, serial or under real xdist (``-n 2``); the baseline
comes from the first run's ``--fairmind-json`` file or from the local history (``last``). The
MLflow source is in ``test_baseline_mlflow.py``, ``fairmind check`` in ``test_baseline_cli.py``.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import load_report, usage_error

EOD = "sex/equalized_odds_difference"
DPR = "sex/demographic_parity_ratio"
ACC = "sex/accuracy"

#: The project under test: model "credit" (and whichever models ``model.json`` lists) assessed on
#: a toy data set where ``flips`` predictions of group b are wrong (2 -> EOD 0.1, 6 -> EOD 0.3),
#: plus custom metrics recorded as given. Several tests per model, so xdist splits them.
INNER = """
import json
import math
from pathlib import Path

import pytest

CONFIG = json.loads((Path(__file__).parent / "model.json").read_text())


def data(flips):
    y = [0, 1] * 20
    groups = ["a"] * 20 + ["b"] * 20
    pred = list(y)
    for i in range(20, 20 + flips):
        pred[i] = 1 - pred[i]
    return y, pred, groups


@pytest.mark.parametrize("model", CONFIG["models"])
def test_sex(fairmind, model):
    y, pred, groups = data(CONFIG["flips"].get(model, 0))
    fairmind.assess(y, pred, sensitive_features={"sex": groups}, model=model)


@pytest.mark.parametrize("model", CONFIG["models"])
def test_custom(fairmind, model):
    custom = {k: float(v) for k, v in CONFIG.get("custom", {}).get(model, {}).items()}
    if custom:
        fairmind.record(custom, model=model, scope="sex")


def test_unrelated():
    pass
"""


def write_project(pytester: pytest.Pytester, ini: str = "") -> None:
    pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
    pytester.makepyfile(test_fair=INNER)


def set_model(
    pytester: pytest.Pytester,
    flips: int | dict[str, int] = 2,
    *,
    custom: dict[str, dict[str, float]] | None = None,
) -> None:
    per_model = flips if isinstance(flips, dict) else {"credit": flips}
    models = sorted({*per_model, *(custom or {})})
    config = {"models": models, "flips": per_model, "custom": custom or {}}
    (pytester.path / "model.json").write_text(json.dumps(config), encoding="utf-8")


def run(pytester: pytest.Pytester, *args: str, xdist: bool = False) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *(("-n", "2") if xdist else ()), *args)


def report(pytester: pytest.Pytester, name: str = "report.json") -> dict[str, Any]:
    return load_report(pytester.path / name)


def regression_table(result: pytest.RunResult) -> dict[tuple[str, str], dict[str, str]]:
    """The regression table of the terminal summary: (model, metric) -> column -> cell."""
    lines = result.stdout.lines
    starts = [i for i, line in enumerate(lines) if re.match(r"model\s+metric\s+baseline", line)]
    if not starts:
        return {}
    [start] = starts
    header = re.split(r"\s{2,}", lines[start].strip())
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in lines[start + 1 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        row = dict(zip(header, cells, strict=True))
        rows[(row["model"], row["metric"])] = row
    return rows


def gates_of(doc: dict[str, Any], model: str = "credit") -> dict[str, dict[str, Any]]:
    return {g["key"]: g for g in doc["models"][model]["gates"] if g["rule"] == "regression"}


RULES = (
    "--fairmind-gate=equalized_odds_difference ~ 0.1",
    "--fairmind-gate=credit:demographic_parity_ratio ~ 10%",
)


# --- a worsened model fails, serial and under xdist, with each local source ----------------------


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_file_baseline_catches_a_worsened_model(pytester: pytest.Pytester, xdist: bool) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    first = run(pytester, "--fairmind-json=base.json", xdist=xdist)
    assert first.ret == 0
    assert report(pytester, "base.json")["models"]["credit"]["metrics"][EOD] == pytest.approx(0.1)

    set_model(pytester, 6)  # the "improved" model: EOD 0.1 -> 0.3
    second = run(
        pytester, *RULES, "--fairmind-baseline=base.json", "--fairmind-json=report.json", xdist=xdist
    )
    assert second.ret == 1, second.stdout.str()
    second.assert_outcomes(passed=3)  # every test passed: the gate failed the session
    table = regression_table(second)
    assert table[("credit", EOD)] == {
        "model": "credit",
        "metric": EOD,
        "baseline": "0.1",
        "current": "0.3",
        "change": "+0.2 (+200.0%)",
        "limit": "<= 0.2",
        "result": "WORSE",
    }
    assert table[("credit", DPR)]["result"] == "ok"  # selection rates are unchanged
    second.stdout.fnmatch_lines(
        [
            f"gate FAILED: credit: {EOD} = 0.3, bound <= 0.2 (baseline 0.1, tolerance 0.1, lower is better)"
            " [[]equalized_odds_difference ~ 0.1[]]"
        ]
    )
    doc = report(pytester)
    assert doc["session"]["exitstatus"] == 1
    assert doc["models"]["credit"]["verdict"] == "fail"
    gate = gates_of(doc)[EOD]
    assert gate["baseline"] == pytest.approx(0.1) and gate["change"] == pytest.approx(0.2)
    assert gate["value"] == pytest.approx(0.3) and gate["passed"] is False and gate["direction"] == "lower"
    assert gates_of(doc)[DPR]["direction"] == "higher" and gates_of(doc)[DPR]["passed"] is True
    assert doc["gates_not_evaluated"] == []

    set_model(pytester, 4)  # within the tolerance: 0.2 <= 0.1 + 0.1 (the boundary is allowed)
    third = run(pytester, *RULES, "--fairmind-baseline=base.json", "--fairmind-json=report.json", xdist=xdist)
    assert third.ret == 0, third.stdout.str()
    assert regression_table(third)[("credit", EOD)]["result"] == "ok"


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_last_baseline_catches_a_worsened_model_and_rerunning_does_not_hide_it(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    write_project(pytester, "fairmind_baseline = last\nfairmind_gates = equalized_odds_difference ~ 0.05\n")
    set_model(pytester, 2)
    first = run(pytester, xdist=xdist)
    assert first.ret == 0, first.stdout.str()
    assert regression_table(first)[("credit", EOD)]["baseline"] == "no baseline"
    first.stdout.fnmatch_lines(
        ["warning: no baseline (no earlier session of project 'fairmind' in *first run?)*"]
    )

    set_model(pytester, 6)
    second = run(pytester, "--fairmind-json=report.json", xdist=xdist)
    assert second.ret == 1, second.stdout.str()
    row = regression_table(second)[("credit", EOD)]
    assert (row["baseline"], row["current"], row["result"]) == ("0.1", "0.3", "WORSE")

    # Rerunning the regressed build compares with the last good value again, not with itself.
    again = run(pytester, xdist=xdist)
    assert again.ret == 1
    assert regression_table(again)[("credit", EOD)]["baseline"] == "0.1"

    # Accepting the new value: one run without a baseline source makes it the baseline.
    accept = run(pytester, "-o", "fairmind_baseline=", xdist=xdist)
    assert accept.ret == 0
    accept.stdout.fnmatch_lines(["warning: no baseline (no --fairmind-baseline given) for 1 metric(s)*"])
    after = run(pytester, xdist=xdist)
    assert after.ret == 0, after.stdout.str()
    assert regression_table(after)[("credit", EOD)]["baseline"] == "0.3"


def test_last_baseline_only_uses_sessions_of_the_same_project(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    set_model(pytester, 6)
    assert run(pytester, "--fairmind-project=other").ret == 0
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-project=mine").ret == 0
    set_model(pytester, 6)
    result = run(pytester, "--fairmind-project=mine", "--fairmind-baseline=last", RULES[0])
    assert result.ret == 1
    assert regression_table(result)[("credit", EOD)]["baseline"] == "0.1"


def test_baseline_from_env_and_marker_rules(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAIRMIND_BASELINE and a rule carried by a marker (applies to the marker's model)."""
    write_project(pytester)
    pytester.makepyfile(
        test_marker="""
        import pytest

        @pytest.mark.fairmind(model="credit", gates=["accuracy ~ 0.01"])
        def test_marked():
            pass
        """
    )
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 6)
    monkeypatch.setenv("FAIRMIND_BASELINE", "base.json")
    result = run(pytester, "--fairmind-json=report.json", xdist=True)
    assert result.ret == 1
    gate = gates_of(report(pytester))[ACC]
    assert gate["expr"] == "credit:accuracy ~ 0.01"
    assert (gate["baseline"], gate["value"], gate["passed"]) == (0.95, 0.85, False)


# --- missing baselines -------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_new_model_and_new_metric_have_no_baseline(pytester: pytest.Pytester, strict: bool) -> None:
    write_project(pytester, "fairmind_lower_is_better = calibration_gap\n")
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, {"credit": 2, "newcomer": 2}, custom={"credit": {"calibration_gap": 0.2}})
    args = [
        "--fairmind-baseline=base.json",
        "--fairmind-json=report.json",
        "--fairmind-gate=*_difference ~ 0.05",
    ]
    args.append("--fairmind-gate=calibration_gap ~ 0.01")
    result = run(pytester, *args, *(["--fairmind-strict"] if strict else []), xdist=True)
    table = regression_table(result)
    assert table[("credit", EOD)]["result"] == "ok"
    for key in [("newcomer", EOD), ("credit", "sex/calibration_gap")]:
        assert table[key]["baseline"] == "no baseline"
        assert table[key]["result"] == ("FAIL: no baseline" if strict else "no baseline")
    result.stdout.fnmatch_lines(
        [
            "warning: no baseline value in base.json (session *) for * metric(s): "
            "*newcomer: sex/equalized_odds_difference*(new model: not in the baseline)*"
            "credit: sex/calibration_gap (new metric: not in the baseline)*"
        ]
    )
    doc = report(pytester)
    new = gates_of(doc, "newcomer")[EOD]
    assert new["bound"] == "no baseline" and new["baseline"] is None and new["change"] is None
    assert new["passed"] is not strict
    if strict:
        assert result.ret == 1 and doc["session"]["exitstatus"] == 1
        assert doc["models"]["newcomer"]["verdict"] == "fail"
        assert "these regression rules FAILED (--fairmind-strict)" in result.stdout.str()
    else:
        assert result.ret == 0, result.stdout.str()
        assert doc["models"]["newcomer"]["verdict"] == "pass"
        assert "not compared, not a failure (it is with --fairmind-strict)" in result.stdout.str()


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_first_run_has_no_baseline(pytester: pytest.Pytester, strict: bool) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    args = ["--fairmind-baseline=main-report.json", RULES[0], "--fairmind-json=report.json"]
    result = run(pytester, *args, *(["--fairmind-strict"] if strict else []))
    assert result.ret == (1 if strict else 0), result.stdout.str()
    result.stdout.fnmatch_lines(
        ["warning: no baseline (main-report.json: no such file) for 1 metric(s): credit: *"]
    )
    gate = gates_of(report(pytester))[EOD]
    assert gate["bound"] == "no baseline" and gate["passed"] is not strict
    assert report(pytester)["notices"]  # the warning is in the report too


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_rules_without_a_baseline_source(pytester: pytest.Pytester, strict: bool) -> None:
    write_project(pytester, "fairmind_gates = equalized_odds_difference ~ 0.05\n")
    set_model(pytester, 2)
    result = run(pytester, *(["--fairmind-strict"] if strict else []))
    assert result.ret == (1 if strict else 0)
    result.stdout.fnmatch_lines(["warning: no baseline (no --fairmind-baseline given) for 1 metric(s)*"])


def test_a_baseline_without_rules_is_only_a_notice(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    result = run(pytester, "--fairmind-baseline=nothing-yet.json", "--fairmind-strict")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["baseline 'nothing-yet.json' given but no regression rule uses it*"])
    assert regression_table(result) == {}


# --- directions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_unknown_direction_is_reported_not_guessed(pytester: pytest.Pytester, strict: bool) -> None:
    write_project(pytester)
    set_model(pytester, 2, custom={"credit": {"calibration_gap": 0.1}})
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 2, custom={"credit": {"calibration_gap": 0.9}})
    args = [
        "--fairmind-baseline=base.json",
        "--fairmind-gate=calibration_gap ~ 0.01",
        "--fairmind-json=report.json",
    ]
    result = run(pytester, *args, *(["--fairmind-strict"] if strict else []))
    assert result.ret == (1 if strict else 0), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "gate not evaluated (no metric of known direction matched): calibration_gap ~ 0.01",
            "regression rule not applied to credit: sex/calibration_gap: direction unknown "
            "[[]calibration_gap ~ 0.01[]]*; declare its direction with the ini option "
            "fairmind_lower_is_better*",
        ]
    )
    doc = report(pytester)
    assert doc["gates_not_evaluated"] == ["calibration_gap ~ 0.01"]
    assert gates_of(doc) == {}


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
@pytest.mark.parametrize("how", ["ini", "marker"])
def test_declared_direction_makes_the_rule_apply(pytester: pytest.Pytester, how: str, xdist: bool) -> None:
    ini = "fairmind_lower_is_better = credit:calibration_gap\nfairmind_higher_is_better = auc*\n"
    write_project(pytester, ini if how == "ini" else "")
    if how == "marker":
        pytester.makepyfile(
            test_marker="""
            import pytest

            @pytest.mark.fairmind(
                model="credit", lower_is_better="calibration_gap", higher_is_better=["auc*"]
            )
            def test_declares():
                pass
            """
        )
    set_model(pytester, 2, custom={"credit": {"calibration_gap": 0.1, "auc": 0.8}})
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 2, custom={"credit": {"calibration_gap": 0.2, "auc": 0.9}})
    args = [
        "--fairmind-baseline=base.json",
        "--fairmind-gate=calibration_gap ~ 0.05",
        "--fairmind-gate=auc ~ 0",
    ]
    result = run(pytester, *args, "--fairmind-json=report.json", "--fairmind-strict", xdist=xdist)
    assert result.ret == 1, result.stdout.str()
    gates = gates_of(report(pytester))
    assert (
        gates["sex/calibration_gap"]["passed"] is False
        and gates["sex/calibration_gap"]["direction"] == "lower"
    )
    assert gates["sex/auc"]["passed"] is True and gates["sex/auc"]["direction"] == "higher"
    assert report(pytester)["gates_not_evaluated"] == []
    assert "direction unknown" not in result.stdout.str()


def test_marker_direction_without_a_model_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairmind(lower_is_better="gap")
        def test_it():
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*lower_is_better on a fairmind marker needs a model*"])


# --- zero baselines, NaN, gate action ------------------------------------------------------------


def test_relative_tolerance_with_a_zero_baseline(pytester: pytest.Pytester) -> None:
    write_project(pytester, "fairmind_lower_is_better = gap\n")
    set_model(pytester, 0, custom={"credit": {"gap": 0.0}})  # flips 0: EOD is 0 too
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    rules = [
        "--fairmind-baseline=base.json",
        "--fairmind-gate=gap ~ 50%",
        "--fairmind-gate=*_difference ~ 50%",
    ]

    same = run(pytester, *rules)
    assert same.ret == 0, same.stdout.str()
    assert regression_table(same)[("credit", "sex/gap")]["limit"] == "<= 0"

    set_model(pytester, 0, custom={"credit": {"gap": 0.001}})
    worse = run(pytester, *rules, "--fairmind-json=report.json")
    assert worse.ret == 1
    row = regression_table(worse)[("credit", "sex/gap")]
    assert (row["baseline"], row["change"], row["result"]) == (
        "0",
        "+0.001",
        "WORSE",
    )  # no relative change of 0
    assert regression_table(worse)[("credit", EOD)]["result"] == "ok"


def test_nan_current_value_fails_and_nan_baseline_is_no_baseline(pytester: pytest.Pytester) -> None:
    write_project(pytester, "fairmind_lower_is_better = gap*\n")
    set_model(pytester, 2, custom={"credit": {"gap_a": 0.1, "gap_b": math.nan}})
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 2, custom={"credit": {"gap_a": math.nan, "gap_b": 0.1}})
    result = run(
        pytester, "--fairmind-baseline=base.json", "--fairmind-gate=gap* ~ 1", "--fairmind-json=report.json"
    )
    assert result.ret == 1
    table = regression_table(result)
    assert table[("credit", "sex/gap_a")] == {
        "model": "credit",
        "metric": "sex/gap_a",
        "baseline": "0.1",
        "current": "nan",
        "change": "-",
        "limit": "<= 1.1",
        "result": "FAIL: nan",
    }
    assert table[("credit", "sex/gap_b")]["baseline"] == "no baseline"
    result.stdout.fnmatch_lines(["*credit: sex/gap_b (the baseline value is nan)*"])
    gates = gates_of(report(pytester))
    assert gates["sex/gap_a"]["value"] is None and gates["sex/gap_a"]["passed"] is False
    assert gates["sex/gap_a"]["baseline"] == 0.1 and gates["sex/gap_a"]["change"] is None
    assert gates["sex/gap_b"]["passed"] is True and gates["sex/gap_b"]["bound"] == "no baseline"


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_gate_action_warn_reports_without_failing(pytester: pytest.Pytester, xdist: bool) -> None:
    write_project(pytester, "fairmind_gate_action = warn\n")
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 6)
    result = run(
        pytester, "--fairmind-baseline=base.json", RULES[0], "--fairmind-json=report.json", xdist=xdist
    )
    assert result.ret == 0, result.stdout.str()
    assert regression_table(result)[("credit", EOD)]["result"] == "WORSE"
    result.stdout.fnmatch_lines([f"gate failed (warn only): credit: {EOD} = 0.3, bound <= 0.2 *"])
    doc = report(pytester)
    assert doc["session"]["exitstatus"] == 0 and gates_of(doc)[EOD]["passed"] is False


# --- usage errors and CI summaries ----------------------------------------------------------------


def test_an_unreadable_baseline_file_stops_pytest(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    (pytester.path / "base.json").write_text("<html>502 Bad Gateway</html>", encoding="utf-8")
    line = usage_error(run(pytester, "--fairmind-baseline=base.json", RULES[0]))
    assert "--fairmind-baseline: base.json: not a readable pytest-fairmind report" in line


@pytest.mark.parametrize("rule", ["x ~ -1", "x ~ abc", "x ~", "x ~ 5%%"])
def test_a_bad_rule_is_a_usage_error(pytester: pytest.Pytester, rule: str) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    line = usage_error(run(pytester, f"--fairmind-gate={rule}"))
    assert "--fairmind-gate" in line and repr(rule) in line


def test_github_step_summary_has_the_regression_table(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 6)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run(pytester, "--fairmind-baseline=base.json", RULES[0]).ret == 1
    text = summary.read_text(encoding="utf-8")
    assert "| model | metric | baseline | current | change | limit | result |" in text
    assert f"| credit | {EOD} | 0.1 | 0.3 | +0.2 (+200.0%) | <= 0.2 | WORSE |" in text


def test_history_entry_keeps_the_regression_results(pytester: pytest.Pytester) -> None:
    write_project(pytester)
    set_model(pytester, 2)
    assert run(pytester, "--fairmind-json=base.json").ret == 0
    set_model(pytester, 6)
    assert run(pytester, "--fairmind-baseline=base.json", RULES[0], "--fairmind-json=report.json").ret == 1
    entries = sorted((pytester.path / ".fairmind" / "sessions").glob("*.json"))
    doc = report(pytester)
    [entry] = [e for e in entries if e.stem.endswith(doc["session"]["id"])]
    assert gates_of(load_report(Path(entry)))[EOD] == gates_of(doc)[EOD]
