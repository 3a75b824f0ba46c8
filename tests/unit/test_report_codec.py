"""The one report codec: symmetric for non-finite values, shared by the report and provider children."""

from __future__ import annotations

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
    jsonschema.validate(doc, SCHEMA)
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
