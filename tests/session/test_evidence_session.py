"""Interval gates in real sessions: the report's gate fields, the same outcomes and p-values
serially and under ``-n 2``, the exit policy, and ``fairmind check`` reproducing the session."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import REPORT, run_with_report

from pytest_fairmind import gating, report
from pytest_fairmind.cli import main

pytest.importorskip("xdist")

SUITE = """
    import numpy as np
    import pytest

    def data(seed, n, rates):
        rng = np.random.default_rng(seed)
        groups = np.repeat([f"g{i}" for i in range(len(rates))], n)
        y = rng.integers(0, 2, groups.size)
        pred = (rng.random(groups.size) < np.repeat(rates, n)).astype(int)
        return y, pred, groups

    @pytest.mark.fairmind(model="credit")
    @pytest.mark.parametrize("scope, seed, n, rates", [
        ("fair", 1, 3000, [0.5, 0.5]),
        ("biased", 2, 3000, [0.6, 0.3]),
        ("small", 3, 40, [0.5, 0.45, 0.4]),
    ])
    def test_assess(fairmind, scope, seed, n, rates):
        y, pred, groups = data(seed, n, rates)
        fairmind.assess(y, pred, sensitive_features=groups, scope=scope, n_boot=200)

    def test_plain(fairmind):
        fairmind.record({"calibration_gap": 0.02}, model="credit")
"""

GATES = (
    "--fairmind-gate=demographic_parity_difference <= 0.1",
    "--fairmind-gate=0.8 <= demographic_parity_ratio <= 1.25",
    "--fairmind-gate=calibration_gap <= 0.05",
)
INTERVAL_FIELDS = ("outcome", "evidence", "ci_low", "ci_high", "p_value", "p_adjusted", "alpha")


def _gates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{g['expr']} [{g['key']}]": g for g in doc["models"]["credit"]["gates"]}


def test_serial_and_xdist_give_the_same_outcomes_and_p_values(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    serial, serial_doc = run_with_report(pytester, "-p", "no:xdist", "--fairmind-evidence=interval", *GATES)
    parallel, parallel_doc = run_with_report(pytester, "-n", "2", "--fairmind-evidence=interval", *GATES)
    serial.assert_outcomes(passed=4)
    assert serial.ret == parallel.ret == 1  # the biased scope fails on evidence
    assert _gates(serial_doc) == _gates(parallel_doc)
    gates = _gates(serial_doc)
    dpd = "demographic_parity_difference <= 0.1"
    assert gates[f"{dpd} [fair/demographic_parity_difference]"]["outcome"] == "pass"
    assert gates[f"{dpd} [biased/demographic_parity_difference]"]["outcome"] == "fail"
    assert gates[f"{dpd} [small/demographic_parity_difference]"]["outcome"] == "inconclusive"
    for name, gate in gates.items():
        if "calibration_gap" in name:  # recorded without an interval: gated on its point
            assert gate.get("evidence", "point") == "point" and "p_value" not in gate
        else:
            assert gate["evidence"] == "interval" and 0 < gate["alpha"] <= 0.05, name
            assert gate["p_value"] is not None and gate["p_adjusted"] >= gate["p_value"]
    assert serial_doc["settings"]["evidence"] == "interval"
    assert any("no error control" in n and "credit: calibration_gap" in n for n in serial_doc["notices"])
    assert serial_doc["models"]["credit"]["verdict"] == "fail"


def test_the_report_redraws_to_the_same_p_values(pytester: pytest.Pytester) -> None:
    """The saved cells and the (model, scope) seeds reproduce the session: gating the loaded report
    again, and ``fairmind check`` of it, give what the session gave."""
    pytester.makepyfile(test_suite=SUITE)
    _, doc = run_with_report(pytester, "-p", "no:xdist", "--fairmind-evidence=interval", *GATES)
    session = report.load(str(pytester.path / REPORT))
    for model in session.models.values():
        model.gates = []
    gating.run([gating.parse_gate(g.partition("=")[2]) for g in GATES], session.models, evidence="interval")
    again = {f"{g.expr} [{g.key}]": g for g in session.models["credit"].gates}
    for name, gate in _gates(doc).items():
        assert again[name].outcome == gate["outcome"]
        assert again[name].p_value == gate.get("p_value")
    assert main(["check", str(pytester.path / REPORT)]) == 1  # the session's own policy: interval
    assert main(["check", str(pytester.path / REPORT), "--evidence", "point", "--gate",
                 "demographic_parity_difference <= 0.5"]) == 0  # fmt: skip


POLICY = [("fail", 1, "inconclusive"), ("warn", 0, "inconclusive"), ("pass", 0, "pass")]


@pytest.mark.parametrize(("inconclusive", "ret", "verdict"), POLICY)
def test_inconclusive_policy_in_a_session(
    pytester: pytest.Pytester, inconclusive: str, ret: int, verdict: str
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result, doc = run_with_report(
        pytester,
        "-p",
        "no:xdist",
        "-k",
        "small",
        "--fairmind-evidence=interval",
        f"--fairmind-inconclusive={inconclusive}",
        "--fairmind-gate=demographic_parity_difference <= 0.1",
    )
    [gate] = doc["models"]["credit"]["gates"]
    assert gate["outcome"] == "inconclusive" and gate["passed"] is True
    assert result.ret == ret and doc["models"]["credit"]["verdict"] == verdict
