"""SPEC section 5: the gate grammar (unit and property tests) and gating in a session."""

from __future__ import annotations

import math
import operator
import re
import unicodedata

import pytest
from helpers import (
    gate_results,
    run_with_report,
)
from hypothesis import given
from hypothesis import strategies as st

from pytest_fairmind import result as fm_result
from pytest_fairmind.gating.evaluate import evaluate, failed_gates
from pytest_fairmind.gating.grammar import Bound, GateSyntaxError, parse_gate
from pytest_fairmind.result import ModelResult

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}

# --- grammar: unit tests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "model", "metric", "bounds"),
    [
        ("demographic_parity_ratio>=0.8", None, "demographic_parity_ratio", ((">=", 0.8),)),
        ("demographic_parity_ratio >= 0.8", None, "demographic_parity_ratio", ((">=", 0.8),)),
        ("  accuracy<1  ", None, "accuracy", (("<", 1.0),)),
        ("eod <= 1e-1", None, "eod", (("<=", 0.1),)),
        ("x > -0.5", None, "x", ((">", -0.5),)),
        ("x > .5", None, "x", ((">", 0.5),)),
        ("x<=+2.", None, "x", (("<=", 2.0),)),
        ("x < inf", None, "x", (("<", math.inf),)),
        (
            "0.8<=demographic_parity_ratio<=1.25",
            None,
            "demographic_parity_ratio",
            ((">=", 0.8), ("<=", 1.25)),
        ),
        ("0.8 < r < 1.25", None, "r", ((">", 0.8), ("<", 1.25))),
        ("1.25 >= r >= 0.8", None, "r", (("<=", 1.25), (">=", 0.8))),
        ("credit:accuracy>=0.7", "credit", "accuracy", ((">=", 0.7),)),
        ("credit model v2 : accuracy >= 0.7", "credit model v2", "accuracy", ((">=", 0.7),)),
        ("Modèle crédit:sex/dp ratio>=0.7", "Modèle crédit", "sex/dp ratio", ((">=", 0.7),)),
        ("team:model:acc>=0.5", "team:model", "acc", ((">=", 0.5),)),  # the text before the LAST ':'
        ("credit*:0 <= sex/*_difference <= 0.1", "credit*", "sex/*_difference", ((">=", 0.0), ("<=", 0.1))),
    ],
)
def test_parse_gate_forms(
    expr: str, model: str | None, metric: str, bounds: tuple[tuple[str, float], ...]
) -> None:
    gate = parse_gate(expr)
    assert gate.model == model
    assert gate.metric == metric
    assert gate.bounds == tuple(Bound(op, number) for op, number in bounds)
    assert gate.expr == expr.strip()


def test_marker_model_applies_only_without_a_prefix() -> None:
    assert parse_gate("acc>=1", model="m").model == "m"
    assert parse_gate("other:acc>=1", model="m").model == "other"


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "   ",
        "accuracy",
        "accuracy >= ",
        ">= 0.8",
        "accuracy == 0.8",
        "accuracy = 0.8",
        "accuracy => 0.8",
        "accuracy != 0.8",
        "accuracy >= high",
        "accuracy >= nan",
        "0.8 <= 1",
        "0.1 <= 0.5 <= 1",
        "0.1 <= acc >= 0.5",
        "0.1 < a < b < 1",
        ":acc >= 1",
        "acc >> 1",
    ],
)
def test_bad_gates_raise_gate_syntax_error(expr: str) -> None:
    with pytest.raises(GateSyntaxError):
        parse_gate(expr)


def test_gate_syntax_error_is_a_value_error_naming_the_expression() -> None:
    with pytest.raises(ValueError, match="accuracy >= high"):
        parse_gate("accuracy >= high")


def _model(name: str, **metrics: float) -> ModelResult:
    return ModelResult(
        name=name, metrics=dict(metrics), tests=[fm_result.TestOutcome(f"t.py::{name}", "passed")]
    )


def test_last_segment_match_checks_every_scope_of_every_model() -> None:
    models = {
        "a": _model("a", **{"sex/demographic_parity_ratio": 0.9, "age/demographic_parity_ratio": 0.7}),
        "b": _model("b", **{"demographic_parity_ratio": 0.85, "sex/demographic_parity_ratio_x": 0.1}),
    }
    assert evaluate([parse_gate("demographic_parity_ratio>=0.8")], models) == []
    checked = {(name, g.key): g.passed for name, m in models.items() for g in m.gates}
    assert checked == {
        ("a", "age/demographic_parity_ratio"): False,
        ("a", "sex/demographic_parity_ratio"): True,
        ("b", "demographic_parity_ratio"): True,
    }
    assert models["a"].verdict == "fail" and models["b"].verdict == "pass"


def test_metric_with_slash_matches_whole_keys_only() -> None:
    models = {"a": _model("a", **{"sex/acc": 0.9, "x/sex/acc": 0.1})}
    evaluate([parse_gate("sex/acc>=0.5")], models)
    assert [(g.key, g.passed) for g in models["a"].gates] == [("sex/acc", True)]


def test_globs_match_whole_keys_and_last_segments() -> None:
    models = {
        "a": _model("a", **{"sex/dp_ratio": 0.9, "sex/eo_ratio": 0.7, "sex/dp_difference": 0.1, "acc": 1.0})
    }
    evaluate([parse_gate("*_ratio>=0.8")], models)
    assert sorted((g.key, g.passed) for g in models["a"].gates) == [
        ("sex/dp_ratio", True),
        ("sex/eo_ratio", False),
    ]
    models = {"a": _model("a", **{"sex/dp_ratio": 0.9, "age/dp_ratio": 0.7})}
    evaluate([parse_gate("sex/*>=0.8")], models)
    assert [g.key for g in models["a"].gates] == ["sex/dp_ratio"]
    models = {"a": _model("a", **{"sex/dp_ratio": 0.9, "acc": 0.7})}
    evaluate([parse_gate("a:?cc>=0.8")], models)
    assert [(g.key, g.passed) for g in models["a"].gates] == [("acc", False)]


def test_model_prefix_restricts_and_may_be_a_glob() -> None:
    models = {n: _model(n, acc=0.5) for n in ("credit v1", "credit v2", "fraud")}
    evaluate([parse_gate("credit v1:acc>=0.6"), parse_gate("credit*:acc<=0.4")], models)
    assert [g.expr for g in models["credit v1"].gates] == ["credit v1:acc>=0.6", "credit*:acc<=0.4"]
    assert [g.expr for g in models["credit v2"].gates] == ["credit*:acc<=0.4"]
    assert models["fraud"].gates == []


def test_nan_fails_every_gate_and_infinities_compare() -> None:
    models = {"a": _model("a", nan_metric=math.nan, big=math.inf, small=-math.inf)}
    evaluate(
        [
            parse_gate("nan_metric<=1"),
            parse_gate("nan_metric>=1"),
            parse_gate("big>=0"),
            parse_gate("small<0"),
        ],
        models,
    )
    assert [(g.key, g.passed) for g in models["a"].gates] == [
        ("nan_metric", False),
        ("nan_metric", False),
        ("big", True),
        ("small", True),
    ]


def test_bounds_are_inclusive_or_strict_as_written() -> None:
    models = {"a": _model("a", r=0.8)}
    evaluate(
        [parse_gate(e) for e in ("r>=0.8", "r>0.8", "r<=0.8", "r<0.8", "0.8<=r<=0.8", "0.8<r<=1")], models
    )
    assert [g.passed for g in models["a"].gates] == [True, False, True, False, True, False]


def test_unmatched_gates_are_returned_not_evaluated() -> None:
    models = {"a": _model("a", acc=0.9)}
    not_evaluated = evaluate(
        [parse_gate("nothing>=1"), parse_gate("b:acc>=1"), parse_gate("acc>=0.5")], models
    )
    assert not_evaluated == ["nothing>=1", "b:acc>=1"]
    assert failed_gates(models) == []


def test_repeated_gate_is_evaluated_once() -> None:
    models = {"a": _model("a", acc=0.9)}
    evaluate([parse_gate("acc>=0.5"), parse_gate(" acc >= 0.50 "), parse_gate("a:acc>=0.5")], models)
    assert len([g for g in models["a"].gates if g.expr != "a:acc>=0.5"]) == 1


def test_verdict_fails_on_a_failed_test_without_gates() -> None:
    model = ModelResult(
        name="m",
        metrics={"acc": 1.0},
        tests=[fm_result.TestOutcome("t::a", "passed"), fm_result.TestOutcome("t::b", "failed")],
    )
    evaluate([], {"m": model})
    assert model.verdict == "fail"
    model.tests[1] = fm_result.TestOutcome("t::b", "error")
    assert model.recompute_verdict() == "fail"
    for word in ("passed", "skipped", "xfailed", "xpassed"):
        model.tests[1] = fm_result.TestOutcome("t::b", word)
        assert model.recompute_verdict() == "pass", word


# --- grammar: property tests ---------------------------------------------------------------------

_METRIC_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./ éß"
_SPACES = st.sampled_from(["", " ", "  ", "\t"])


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


metrics = (
    st.text(_METRIC_ALPHABET, min_size=1, max_size=40)
    .map(str.strip)
    .filter(lambda m: m != "" and _not_a_number(m) and "~" not in m)
)
models = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=":~"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(lambda m: m != "" and not any(unicodedata.category(c) == "Zs" for c in m[:1] + m[-1:]))
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
).filter(lambda t: re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?inf", t) is not None)
ops = st.sampled_from(["<=", "<", ">=", ">"])


@given(
    model=st.one_of(st.none(), models),
    metric=metrics,
    op=ops,
    number=numbers,
    s1=_SPACES,
    s2=_SPACES,
    s3=_SPACES,
)
def test_single_bound_form_roundtrips(
    model: str | None, metric: str, op: str, number: str, s1: str, s2: str, s3: str
) -> None:
    prefix = "" if model is None else f"{model}{s1}:"
    expr = f"{prefix}{s1}{metric}{s2}{op}{s3}{number}"
    gate = parse_gate(expr)
    assert gate.model == model
    assert gate.metric == metric
    assert gate.bounds == (Bound(op, float(number)),)


@given(
    model=st.one_of(st.none(), models),
    metric=metrics,
    low=numbers,
    high=numbers,
    ascending=st.booleans(),
    strict=st.tuples(st.booleans(), st.booleans()),
    s1=_SPACES,
    s2=_SPACES,
)
def test_range_form_roundtrips(
    model: str | None,
    metric: str,
    low: str,
    high: str,
    ascending: bool,
    strict: tuple[bool, bool],
    s1: str,
    s2: str,
) -> None:
    base = "<" if ascending else ">"
    op1, op2 = (base if s else base + "=" for s in strict)
    prefix = "" if model is None else f"{model}:"
    gate = parse_gate(f"{prefix}{low}{s1}{op1}{s2}{metric}{s1}{op2}{s2}{high}")
    assert gate.model == model
    assert gate.metric == metric
    assert gate.bounds == (Bound(FLIP[op1], float(low)), Bound(op2, float(high)))


@given(
    op=ops,
    bound=st.floats(allow_nan=False, allow_infinity=False, width=32),
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan)),
)
def test_check_agrees_with_python_comparison_and_nan_fails(op: str, bound: float, value: float) -> None:
    gate = parse_gate(f"m {op} {bound!r}")
    expected = not math.isnan(value) and OPS[op](value, bound)
    assert gate.check(value) is expected


@given(st.text(max_size=60))
def test_parser_only_raises_gate_syntax_error(text: str) -> None:
    try:
        gate = parse_gate(text)
    except GateSyntaxError:
        return
    assert gate.metric and gate.metric == gate.metric.strip()
    assert all(b.op in OPS and not math.isnan(b.number) for b in gate.bounds) or gate.tolerance is not None


# --- gates in a session --------------------------------------------------------------------------

SUITE = """
    import pytest

    def test_credit(fairmind):
        fairmind.record(
            {"demographic_parity_ratio": 0.85, "equalized_odds_difference": 0.12, "accuracy": 0.9},
            model="credit",
            scope="sex",
        )
        fairmind.record({"demographic_parity_ratio": 0.75}, model="credit", scope="age")

    def test_fraud(fairmind):
        metrics = {"demographic_parity_ratio": 0.95, "accuracy": 0.8}
        fairmind.record(metrics, model="fraud model é", scope="sex")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _checked(doc: dict[str, object]) -> dict[tuple[str, str], bool]:
    models = doc["models"]
    assert isinstance(models, dict)
    return {(name, g["key"]): g["passed"] for name in models for g in gate_results(doc, name)}


def test_failed_gate_exits_1_though_all_tests_passed(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(suite, "--fairmind-gate=demographic_parity_ratio>=0.8")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert doc["session"]["exitstatus"] == 1
    assert _checked(doc) == {
        ("credit", "age/demographic_parity_ratio"): False,
        ("credit", "sex/demographic_parity_ratio"): True,
        ("fraud model é", "sex/demographic_parity_ratio"): True,
    }
    assert doc["models"]["credit"]["verdict"] == "fail"
    assert doc["models"]["fraud model é"]["verdict"] == "pass"
    gate = next(g for g in gate_results(doc, "credit") if not g["passed"])
    assert gate == {
        "expr": "demographic_parity_ratio>=0.8",
        "key": "age/demographic_parity_ratio",
        "value": 0.75,
        "bound": ">= 0.8",
        "passed": False,
        "outcome": "fail",
        "rule": "bound",
    }
    # one readable summary line: model, key, value and bound
    result.stdout.fnmatch_lines(["gate FAILED: credit: age/demographic_parity_ratio = 0.75, bound >= 0.8*"])
    result.stdout.fnmatch_lines(["credit*FAIL*", "fraud model é*PASS*"])


def test_passing_gates_keep_exit_0(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(
        suite,
        "--fairmind-gate=0.7 <= demographic_parity_ratio <= 1",
        "--fairmind-gate",
        "equalized_odds_difference   <   0.2",
    )
    assert result.ret == 0
    assert doc["session"]["exitstatus"] == 0
    assert all(_checked(doc).values()) and len(_checked(doc)) == 4
    assert "gate FAILED" not in result.stdout.str()


def test_model_prefix_with_spaces_and_unicode(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(suite, "--fairmind-gate=fraud model é : accuracy >= 0.85")
    assert result.ret == 1
    assert _checked(doc) == {("fraud model é", "sex/accuracy"): False}
    result.stdout.fnmatch_lines(["gate FAILED: fraud model é: sex/accuracy = 0.8, bound >= 0.85*"])


def test_glob_gates(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(suite, "--fairmind-gate=credit:*_ratio>=0.7", "--fairmind-gate=sex/* <= 1")
    assert result.ret == 0
    assert _checked(doc) == {
        ("credit", "age/demographic_parity_ratio"): True,
        ("credit", "sex/demographic_parity_ratio"): True,
        ("credit", "sex/accuracy"): True,
        ("credit", "sex/equalized_odds_difference"): True,
        ("fraud model é", "sex/accuracy"): True,
        ("fraud model é", "sex/demographic_parity_ratio"): True,
    }


def test_ini_gates_and_command_line_gates_both_apply(suite: pytest.Pytester) -> None:
    suite.makeini(
        """
        [pytest]
        fairmind_gates =
            credit:accuracy >= 0.95
            # a comment line
            fraud model é:accuracy >= 0.5
        """
    )
    result, doc = run_with_report(suite, "--fairmind-gate=equalized_odds_difference<=0.1")
    assert result.ret == 1
    assert _checked(doc) == {
        ("credit", "sex/accuracy"): False,
        ("credit", "sex/equalized_odds_difference"): False,
        ("fraud model é", "sex/accuracy"): True,
    }


def test_same_gate_from_ini_and_command_line_is_evaluated_once(suite: pytest.Pytester) -> None:
    suite.makeini("[pytest]\nfairmind_gates = credit:accuracy>=0.5\n")
    _, doc = run_with_report(suite, "--fairmind-gate=credit:accuracy>=0.5")
    assert len(gate_results(doc, "credit")) == 1


def test_marker_gates_apply_to_the_marked_tests_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairmind(model="m", gates=["equalized_odds_difference<=0.1", "accuracy >= 0.5"])
        def test_marked(fairmind):
            fairmind.record({"equalized_odds_difference": 0.2, "accuracy": 0.9}, scope="sex")

        def test_other(fairmind):
            fairmind.record({"equalized_odds_difference": 0.5}, model="other", scope="sex")

        @pytest.mark.fairmind(model="n", gates="accuracy >= 0.95")
        def test_single_string_gate(fairmind):
            fairmind.record({"accuracy": 0.9})
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=3)
    assert result.ret == 1
    assert _checked(doc) == {
        ("m", "sex/equalized_odds_difference"): False,
        ("m", "sex/accuracy"): True,
        ("n", "accuracy"): False,
    }
    assert doc["models"]["other"]["gates"] == []  # a marker's gates are for its model only
    assert doc["models"]["other"]["verdict"] == "pass"
    result.stdout.fnmatch_lines(["gate FAILED: m: sex/equalized_odds_difference = 0.2, bound <= 0.1*"])


def test_marker_gates_are_evaluated_once_for_many_marked_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fairmind(model="m", gates=["acc >= 0.5"])

        @pytest.mark.parametrize("i", range(3))
        def test_marked(fairmind, i):
            fairmind.record({"acc": 0.9})
        """
    )
    _, doc = run_with_report(pytester)
    assert len(gate_results(doc, "m")) == 1


def test_bad_marker_gate_errors_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairmind(model="m", gates=["accuracy => 0.5"])
        def test_bad(fairmind):
            fairmind.record({"accuracy": 0.9})

        @pytest.mark.fairmind(gates=["accuracy >= 0.5"])
        def test_no_model(fairmind):
            fairmind.record({"accuracy": 0.9}, model="x")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*accuracy => 0.5*", "*needs a model*"])


def test_nan_value_fails_its_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_nan(fairmind):
            fairmind.record({"equal_opportunity_ratio": float("nan")}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-gate=equal_opportunity_ratio>=0.8")
    assert result.ret == 1
    assert gate_results(doc, "m") == [
        {"expr": "equal_opportunity_ratio>=0.8", "key": "equal_opportunity_ratio", "value": None,
         "bound": ">= 0.8", "passed": False, "outcome": "fail", "rule": "bound"}
    ]  # fmt: skip
    result.stdout.fnmatch_lines(["gate FAILED: m: equal_opportunity_ratio = nan, bound >= 0.8*"])


def test_unmatched_gate_is_listed_not_evaluated_and_fails_only_when_strict(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(
        suite, "--fairmind-gate=no_such_metric>=0.5", "--fairmind-gate=nomodel:accuracy>=0"
    )
    assert result.ret == 0
    assert doc["gates_not_evaluated"] == ["no_such_metric>=0.5", "nomodel:accuracy>=0"]
    result.stdout.fnmatch_lines(
        [
            "gate not evaluated (matched no metric): no_such_metric>=0.5",
            "gate not evaluated (matched no metric): nomodel:accuracy>=0",
        ]
    )
    result, doc = run_with_report(suite, "--fairmind-gate=no_such_metric>=0.5", "--fairmind-strict")
    assert result.ret == 1
    assert doc["session"]["exitstatus"] == 1


def test_gates_without_any_record_are_not_evaluated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result, doc = run_with_report(pytester, "--fairmind-gate=accuracy>=0.5")
    assert result.ret == 0
    assert doc["models"] == {}
    assert doc["gates_not_evaluated"] == ["accuracy>=0.5"]
    assert pytester.runpytest("--fairmind-gate=accuracy>=0.5", "--fairmind-strict").ret == 1


def test_gate_action_warn_reports_without_failing(suite: pytest.Pytester) -> None:
    result, doc = run_with_report(suite, "--fairmind-gate=accuracy>=0.95", "--fairmind-gate-action=warn")
    assert result.ret == 0
    assert doc["session"]["exitstatus"] == 0
    assert not any(_checked(doc).values())
    assert doc["models"]["credit"]["verdict"] == "fail"  # the verdict still says what happened
    result.stdout.fnmatch_lines(["gate failed (warn only): credit: sex/accuracy = 0.9, bound >= 0.95*"])


def test_failed_test_fails_the_verdict_and_gates_do_not_hide_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_records_then_fails(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
            assert False, "model misbehaves"

        @pytest.mark.fairmind(model="n")
        def test_fails_before_recording(fairmind):
            raise RuntimeError("data missing")

        def test_ok(fairmind):
            fairmind.record({"accuracy": 0.9}, model="ok")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-gate=accuracy>=0.5")
    result.assert_outcomes(failed=2, passed=1)
    assert result.ret == 1
    assert doc["models"]["m"]["verdict"] == "fail"
    assert doc["models"]["n"]["verdict"] == "fail"
    assert doc["models"]["n"]["metrics"] == {}
    assert doc["models"]["ok"]["verdict"] == "pass"
    assert all(_checked(doc).values())


def test_gate_failure_with_precise_bound(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"ratio": 0.79995}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-gate=ratio>=0.8")
    assert result.ret == 1
    line = next(line for line in result.stdout.lines if line.startswith("gate FAILED"))
    # the line must not claim "0.8, bound >= 0.8": value and bound are shown precisely enough
    value_text = line.split(" = ")[1].split(",")[0]
    assert float(value_text) < 0.8, line
    assert gate_results(doc, "m")[0]["value"] == 0.79995


@pytest.mark.parametrize(
    ("value", "expr", "shown"),
    [
        (0.30000000000000004, "r<=0.2", "0.3"),  # short when rounding cannot mislead
        (0.79995, "r>=0.8", "0.79995"),  # never rounded onto the bound
        (0.7999999761581421, "r>=0.8", "0.79999998"),  # a float32 value
        (1.2000001, "0.8<=r<=1.2", "1.2000001"),
        (math.nan, "r>=0.8", "nan"),
    ],
)
def test_failure_line_value_text(value: float, expr: str, shown: str) -> None:
    from pytest_fairmind.result import SessionResult
    from pytest_fairmind.summary import markdown, verdict_lines

    models = {"m": _model("m", r=value)}
    evaluate([parse_gate(expr)], models)
    session = SessionResult(id="s", project="p", started="2024-01-01T00:00:00+00:00", models=models)
    line = next(line for line in verdict_lines(session) if line.startswith("gate FAILED"))
    assert line.startswith(f"gate FAILED: m: r = {shown}, bound ")
    assert f"= {shown}, bound" in markdown(session)


def test_marker_gates_use_the_tests_model_from_class_module_or_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfairmind_model = ini-model\n")
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fairmind(gates=["module_gate_key >= 0"])

        def test_ini_model(fairmind):
            fairmind.record({"module_gate_key": 1})

        @pytest.mark.fairmind(model="class-model")
        class TestClass:
            @pytest.mark.fairmind(gates=["class_gate_key <= 0"])
            def test_in_class(self, fairmind):
                fairmind.record({"class_gate_key": 1, "module_gate_key": 1})
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    assert _checked(doc) == {
        ("ini-model", "module_gate_key"): True,
        ("class-model", "class_gate_key"): False,
        ("class-model", "module_gate_key"): True,
    }
