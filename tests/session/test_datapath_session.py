"""Scans and evidence through a whole session: amended by a hook, into the report and the history
entry, and back with every non-finite number as it was."""

from __future__ import annotations

import math

import pytest
from helpers import history_entries, run_with_report

from pytest_fairmind import report

CONFTEST = """
import math

def pytest_fairmind_model_result(result, session):
    rows = [{"conditions": {"sex": "f"}, "count": 3, "value": math.nan, "ratio": math.inf, "p_value": None}]
    result.scans["sex"] = {"metric": "selection_rate", "subgroups_tested": 1, "rows": rows}
    result.evidence["sex/age"] = {"version": 1, "kind": "grid", "quantiles": {"a": [-math.inf, 0.5]}}
"""


def test_scans_and_evidence_reach_the_report_and_the_history(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"a": 0.5}, model="m", scope="sex")
        """
    )
    result, doc = run_with_report(pytester)  # validated against the schema
    result.assert_outcomes(passed=1)
    entry = doc["models"]["m"]
    assert entry["scans"]["sex"]["rows"][0]["value"] is None
    assert entry["scans"]["sex"]["rows"][0]["p_value"] is None
    assert entry["nonfinite_paths"] == {
        "/scans/sex/rows/0/value": "nan",
        "/scans/sex/rows/0/ratio": "inf",
        "/evidence/sex~1age/quantiles/a/0": "-inf",
    }
    [saved] = history_entries(pytester.path / ".fairmind")
    model = report.load(str(saved)).models["m"]
    row = model.scans["sex"]["rows"][0]
    assert math.isnan(row["value"]) and row["ratio"] == math.inf and row["p_value"] is None
    assert model.evidence == {"sex/age": {"version": 1, "kind": "grid", "quantiles": {"a": [-math.inf, 0.5]}}}
    assert model.metrics == {"sex/a": 0.5}
