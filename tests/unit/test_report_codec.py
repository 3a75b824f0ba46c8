"""The one report codec: symmetric for non-finite values, shared by the report and provider children."""

from __future__ import annotations

import gc
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_fairmind
from pytest_fairmind import report
from pytest_fairmind.result import (
    GateResult,
    ModelResult,
    ProviderOutcome,
    RunRef,
    SessionResult,
)
from pytest_fairmind.result import TestOutcome as Outcome

SCHEMA = json.loads(
    (Path(pytest_fairmind.__file__).parent / "report.schema.json").read_text(encoding="utf-8")
)
# checked once: jsonschema.validate checks the schema itself on every call (most of a test's time)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def _row(label: str, count: int, rates: dict[str, float]) -> dict[str, Any]:
    return {"group": {"sex": label}, "count": count, **rates}


def _session(model: ModelResult, providers: dict[str, ProviderOutcome] | None = None) -> SessionResult:
    return SessionResult(
        id="s-1",
        project="bias",
        started="2025-01-02T03:04:05+00:00",
        finished="2025-01-02T03:04:06+00:00",
        exitstatus=1,
        models={model.name: model},
        providers=providers or {},
    )


def _round_trip(session: SessionResult) -> tuple[str, SessionResult]:
    text = report.dumps(session)
    doc = json.loads(text)
    VALIDATOR.validate(doc)
    return text, report.session_from_dict(doc)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# -- group rows -------------------------------------------------------------------------------------


def test_a_nan_group_value_is_null_in_the_report_and_nan_again_after_decoding() -> None:
    rates = {
        "selection_rate": math.nan,
        "true_positive_rate": 0.25,
        "false_positive_rate": 0.0,
        "accuracy": 1.0,
    }
    model = ModelResult("m", groups={"sex": [_row("f", 4, rates)]})
    text, back = _round_trip(_session(model))
    assert json.loads(text)["models"]["m"]["groups"]["sex"][0]["selection_rate"] is None
    row = back.models["m"].groups["sex"][0]
    assert math.isnan(row["selection_rate"]) and row["true_positive_rate"] == 0.25
    assert row["group"] == {"sex": "f"} and row["count"] == 4
    assert report.dumps(back) == text


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=8),
            st.integers(min_value=0, max_value=10**6),
            st.lists(st.one_of(st.just(math.nan), st.floats(0.0, 1.0)), min_size=4, max_size=4),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_group_rows_survive_the_round_trip(rows: list[tuple[str, int, list[float]]]) -> None:
    groups = [_row(label, count, dict(zip(RATES, values, strict=True))) for label, count, values in rows]
    model = ModelResult("m", groups={"scope": groups})
    _, back = _round_trip(_session(model))
    decoded = back.models["m"].groups["scope"]
    assert len(decoded) == len(groups)
    for original, again in zip(groups, decoded, strict=True):
        assert again["group"] == original["group"] and again["count"] == original["count"]
        assert all(_same(again[rate], original[rate]) for rate in RATES)


# -- gates ------------------------------------------------------------------------------------------


def test_gate_entries_carry_outcome_and_rule() -> None:
    model = ModelResult(
        "m",
        metrics={"a": 0.9, "b": 0.3},
        gates=[
            GateResult("a>=0.8", "a", 0.9, ">= 0.8", "pass"),
            GateResult("b~0.1", "b", 0.3, "<= 0.2 (...)", "fail", "regression", 0.1, 0.2, "lower"),
        ],
    )
    text, back = _round_trip(_session(model))
    entries = json.loads(text)["models"]["m"]["gates"]
    assert entries[0] == {
        "expr": "a>=0.8", "key": "a", "value": 0.9, "bound": ">= 0.8", "passed": True,
        "outcome": "pass", "rule": "bound",
    }  # fmt: skip
    assert entries[1]["outcome"] == "fail" and entries[1]["rule"] == "regression"
    assert entries[1]["passed"] is False
    assert (entries[1]["baseline"], entries[1]["change"], entries[1]["direction"]) == (0.1, 0.2, "lower")
    assert back.models["m"].gates == model.gates


def test_a_non_finite_gate_value_decodes_to_the_models_own_value() -> None:
    model = ModelResult(
        "m",
        metrics={"big": math.inf, "undefined": math.nan},
        gates=[
            GateResult("big>=1", "big", math.inf, ">= 1", "pass"),
            GateResult("undefined>=1", "undefined", math.nan, ">= 1", "fail"),
        ],
    )
    text, back = _round_trip(_session(model))
    assert [g["value"] for g in json.loads(text)["models"]["m"]["gates"]] == [None, None]
    big, undefined = back.models["m"].gates
    assert big.value == math.inf and big.passed
    assert undefined.value is not None and math.isnan(undefined.value) and not undefined.passed


@pytest.mark.parametrize(
    ("entry", "outcome", "rule"),
    [
        ({"expr": "a>=1", "key": "a", "value": 2.0, "bound": ">= 1", "passed": True}, "pass", "bound"),
        ({"expr": "a>=1", "key": "a", "value": 0.0, "bound": ">= 1", "passed": False}, "fail", "bound"),
        (
            {"expr": "a~0.1", "key": "a", "value": 0.3, "bound": "<= 0.2", "passed": False,
             "baseline": 0.1, "change": 0.2, "direction": "lower"},
            "fail",
            "regression",
        ),
        (
            {"expr": "a~0.1", "key": "a", "value": 0.3, "bound": "no baseline", "passed": True},
            "pass",
            "regression",
        ),
    ],
)  # fmt: skip
def test_entries_written_before_outcome_and_rule_still_decode(
    entry: dict[str, Any], outcome: str, rule: str
) -> None:
    gate = report.gate_from_dict(entry)
    assert (gate.outcome, gate.rule, gate.passed) == (outcome, rule, entry["passed"])
    assert gate.key == "a" and gate.bound == entry["bound"]


# -- provider outcomes ------------------------------------------------------------------------------


def test_provider_outcomes_round_trip_with_skipped_runs() -> None:
    outcome = ProviderOutcome(
        ok=False,
        error="model 'n': boom",
        runs={"m": RunRef("r1", "https://x/1", None, skipped=True), "n": RunRef("r2", None, "/store")},
        target="https://x",
        note="view with: ...",
    )
    plain = report.provider_to_dict(outcome)
    assert plain["runs"] == {
        "m": {"id": "r1", "url": "https://x/1", "path": None, "skipped": True},
        "n": {"id": "r2", "url": None, "path": "/store"},  # skipped is written only when true
    }
    assert report.provider_from_dict(json.loads(json.dumps(plain))) == outcome
    _, back = _round_trip(_session(ModelResult("m", tests=[Outcome("t.py::t", "passed")]), {"p": outcome}))
    assert back.providers == {"p": outcome}


def test_provider_outcomes_without_optional_fields_stay_minimal() -> None:
    plain = report.provider_to_dict(ProviderOutcome(ok=True))
    assert plain == {"ok": True, "error": None, "runs": {}}
    assert report.provider_from_dict(plain) == ProviderOutcome(ok=True)


# -- scans, evidence and settings -------------------------------------------------------------------


def _same_data(a: Any, b: Any) -> bool:
    """Equal plain data, NaN equal to NaN, and of the same types (1 is not 1.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_data(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_data(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return _same(a, b)
    return type(a) is type(b) and a == b


def _scan_entry() -> dict[str, Any]:
    row = {
        "conditions": {"sex": "f", "age": None},
        "count": 12,
        "value": 0.0,
        "complement_value": 0.5,
        "ratio": 0.0,
        "difference": -0.5,
        "p_value": 0.01,
        "q_value": 0.02,
        "significant": True,
    }
    undefined = {**row, "conditions": {"sex": "m", "age": "young"}, "value": math.nan, "ratio": math.inf}
    return {"metric": "selection_rate", "subgroups_tested": 2, "rows": [row, undefined]}


def _evidence_payload() -> dict[str, Any]:
    return {
        "version": 1,
        "kind": "grid",
        "n_boot": 200,
        "probs": [0.001, 0.5, 0.999],
        "quantiles": {"sex/demographic_parity_ratio": [-math.inf, 0.7, math.nan]},
    }


def test_scans_and_evidence_round_trip_with_non_finite_values_spelled_out() -> None:
    scope = "sex/age~band"  # '/' and '~' are escaped in the pointers
    model = ModelResult("m", scans={scope: _scan_entry()}, evidence={scope: _evidence_payload()})
    text, back = _round_trip(_session(model))
    entry = json.loads(text)["models"]["m"]
    assert entry["scans"][scope]["rows"][1]["value"] is None
    assert entry["scans"][scope]["rows"][0]["conditions"] == {"sex": "f", "age": None}  # None stays null
    assert entry["nonfinite_paths"] == {
        "/scans/sex~1age~0band/rows/1/value": "nan",
        "/scans/sex~1age~0band/rows/1/ratio": "inf",
        "/evidence/sex~1age~0band/quantiles/sex~1demographic_parity_ratio/0": "-inf",
        "/evidence/sex~1age~0band/quantiles/sex~1demographic_parity_ratio/2": "nan",
    }
    assert _same_data(back.models["m"].scans, model.scans)
    assert _same_data(back.models["m"].evidence, model.evidence)
    assert back.models["m"].scans[scope]["rows"][0]["conditions"]["age"] is None
    assert report.dumps(back) == text


_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
_JSON_DATA = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.text(max_size=4).filter(lambda k: k not in ("kind", "version", "n_boot")), _JSON_DATA, max_size=4
    ),
    st.sampled_from(["cells", "grid", "mixed"]),
)
def test_any_plain_evidence_payload_survives_the_round_trip(payload: dict[str, Any], kind: str) -> None:
    payload = {**payload, "kind": kind}  # the schema requires a kind, as metrics.evidence writes
    model = ModelResult("m", evidence={"scope": payload})
    text, back = _round_trip(_session(model))
    assert _same_data(back.models["m"].evidence, {"scope": payload})
    assert report.dumps(back) == text


def test_decoding_leaves_the_document_untouched() -> None:
    doc = json.loads(report.dumps(_session(ModelResult("m", evidence={"s": _evidence_payload()}))))
    before = json.dumps(doc)
    report.session_from_dict(doc)
    assert json.dumps(doc) == before  # the non-finite values went into copies


@pytest.mark.parametrize(
    ("pointer", "word", "problem"),
    [
        ("/scans/s/rows/0/count", "nan", "not null"),
        ("/metrics/a", "nan", "not a pointer into scans or evidence"),
        ("/scans/s/rows/7/value", "nan", "no such place"),
        ("/scans/s/rows/0/value", "NaN", "is not one of"),
    ],
)
def test_a_wrong_nonfinite_path_is_a_report_error(pointer: str, word: str, problem: str) -> None:
    scan = {"metric": "selection_rate", "subgroups_tested": 1, "rows": [{"count": 3, "value": None}]}
    doc = json.loads(report.dumps(_session(ModelResult("m", scans={"s": scan}))))
    doc["models"]["m"]["nonfinite_paths"] = {pointer: word}
    with pytest.raises(report.ReportError, match=problem):
        report.session_from_dict(doc)


def test_interval_gates_carry_their_evidence_and_non_finite_ends_as_words() -> None:
    gate = GateResult(
        "dpr>=0.8", "dpr", 0.85, ">= 0.8", "inconclusive",
        evidence="interval", ci_low=0.74, ci_high=math.inf, p_value=math.nan, p_adjusted=0.12, alpha=0.05,
    )  # fmt: skip
    point = GateResult("dpr>=0.8", "dpr", 0.85, ">= 0.8", "pass")
    text, back = _round_trip(_session(ModelResult("m", metrics={"dpr": 0.85}, gates=[gate, point])))
    entry, point_entry = json.loads(text)["models"]["m"]["gates"]
    assert entry["evidence"] == "interval"
    assert (entry["ci_low"], entry["ci_high"], entry["p_value"]) == (0.74, "inf", "nan")
    assert (entry["p_adjusted"], entry["alpha"]) == (0.12, 0.05)
    assert not {"evidence", *report._INTERVAL_FIELDS} & set(point_entry)  # point gates: as before
    decoded, decoded_point = back.models["m"].gates
    assert decoded_point == point
    assert decoded.p_value is not None and math.isnan(decoded.p_value)
    assert decoded == GateResult(**{**gate.__dict__, "p_value": decoded.p_value})


def test_an_interval_gate_without_some_numbers_omits_them() -> None:
    gate = GateResult("a<=0.1", "a", 0.05, "<= 0.1", "pass", evidence="interval", ci_high=0.09)
    text, back = _round_trip(_session(ModelResult("m", metrics={"a": 0.05}, gates=[gate])))
    entry = json.loads(text)["models"]["m"]["gates"][0]
    assert entry["ci_high"] == 0.09 and "ci_low" not in entry and "p_value" not in entry
    assert back.models["m"].gates == [gate]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("evidence", "maybe", "is not one of"),
        ("ci_low", "low", "is not one of"),
        ("alpha", [0.05], "a number"),
    ],
)
def test_wrong_interval_fields_are_report_errors(field: str, value: Any, problem: str) -> None:
    entry = {"expr": "a>=1", "key": "a", "value": 2.0, "bound": ">= 1", "passed": True, field: value}
    with pytest.raises(report.ReportError, match=f"gate.{field}: .*{problem}"):
        report.gate_from_dict(entry)


def test_the_settings_the_session_ran_with_round_trip() -> None:
    session = _session(ModelResult("m"))
    session.settings = {
        "evidence": "interval", "inconclusive": "warn", "multiple_testing": "holm",
        "ci": 0.95, "gate_action": "fail", "strict": True,
    }  # fmt: skip
    text, back = _round_trip(session)
    assert json.loads(text)["settings"] == session.settings
    assert back.settings == session.settings
    older = json.loads(text)
    del older["settings"]
    assert report.session_from_dict(older).settings == {}  # reports written before settings existed


def test_a_secret_in_a_scan_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = 'tok"en\\with-escapes'  # JSON escapes it: the quick check must still find it
    monkeypatch.setenv("SCAN_TOKEN", secret)
    entry = _scan_entry()
    entry["rows"][0]["conditions"]["sex"] = f"label {secret}"
    doc = json.loads(report.dumps(_session(ModelResult("m", scans={"s": entry}))))
    assert doc["models"]["m"]["scans"]["s"]["rows"][0]["conditions"]["sex"] == "label ***"
    assert report.session_to_dict(_session(ModelResult("m", scans={"s": entry})))["models"] == doc["models"]


# -- what a document may hold -----------------------------------------------------------------------


def _nested(levels: int) -> Any:
    """A number inside ``levels`` arrays and objects."""
    doc: Any = 1.5
    for level in range(levels):
        doc = {"k": doc} if level % 2 else [doc]
    return doc


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"a": [1.0, {"b": math.inf}]}, "a non-finite number"),
        ({"a": [1.0, [2.0, math.nan]]}, "a non-finite number"),
        ({"a": [0.5, 10**400]}, "a number with 401 digits"),
        ({"a": {"ok": 1.0, "bad\udc80": 2.0}}, "a lone surrogate"),  # in a key
        ({"a": ["fine", "bad\ud800"]}, "a lone surrogate"),
        ({"a": {(1, 2): 1.0}}, "a tuple value: not JSON data"),
        ({"a": [1.0, {1, 2}]}, "a set value: not JSON data"),
        (_nested(33), "nested deeper than 32 levels"),
        (math.nan, "a non-finite number"),  # a document that is only a leaf
    ],
)
def test_documents_that_are_not_plain_json_are_refused(doc: Any, problem: str) -> None:
    with pytest.raises(report.ReportError, match=problem):
        report.check_plain(doc)


@pytest.mark.parametrize(
    "doc",
    [_nested(32), {"a": {1: 0.5, "b": [True, None, -(2**62), "é"]}}, [], "text"],
    ids=["32 levels", "int keys and every leaf kind", "empty", "a leaf"],
)
def test_plain_json_documents_pass(doc: Any) -> None:
    report.check_plain(doc)


def test_the_garbage_collector_is_left_as_it_was() -> None:
    text = report.dumps(_session(ModelResult("m", metrics={"a": 0.5})))
    assert gc.isenabled()
    report.loads(text)
    assert gc.isenabled()
    with pytest.raises(report.ReportError):
        report.loads(text.replace('"pytest-fairmind/1"', '"other/1"'))
    assert gc.isenabled()
    gc.disable()
    try:
        report.loads(text)
        assert not gc.isenabled()  # a caller's choice stays
    finally:
        gc.enable()
