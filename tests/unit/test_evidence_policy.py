"""The exit policy of interval gates: what happened (pass, inconclusive, fail) x
``--fairmind-inconclusive`` x ``--fairmind-gate-action`` x ``--fairmind-strict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from pytest_fairmind import gating
from pytest_fairmind import result as results
from pytest_fairmind.gating import evidence
from pytest_fairmind.result import INTERRUPTED, ModelResult

KEY = "sex/demographic_parity_difference"
CENTERS = {"pass": 0.02, "inconclusive": 0.1, "fail": 0.3}

# (what happened, inconclusive action, gate action) -> (exit status, the model's verdict)
POLICY = {
    ("pass", "pass", "fail"): (0, "pass"),
    ("pass", "warn", "fail"): (0, "pass"),
    ("pass", "fail", "fail"): (0, "pass"),
    ("pass", "pass", "warn"): (0, "pass"),
    ("pass", "warn", "warn"): (0, "pass"),
    ("pass", "fail", "warn"): (0, "pass"),
    ("inconclusive", "pass", "fail"): (0, "pass"),
    ("inconclusive", "warn", "fail"): (0, "inconclusive"),
    ("inconclusive", "fail", "fail"): (1, "inconclusive"),
    ("inconclusive", "pass", "warn"): (0, "pass"),
    ("inconclusive", "warn", "warn"): (0, "inconclusive"),
    ("inconclusive", "fail", "warn"): (0, "inconclusive"),  # warn: every failure is only a line
    ("fail", "pass", "fail"): (1, "fail"),
    ("fail", "warn", "fail"): (1, "fail"),
    ("fail", "fail", "fail"): (1, "fail"),
    ("fail", "pass", "warn"): (0, "fail"),
    ("fail", "warn", "warn"): (0, "fail"),
    ("fail", "fail", "warn"): (0, "fail"),
}


def replicates(payload: Mapping[str, Any], key: str, *, resolution: float, seed: int) -> evidence.Replicates:
    return evidence.Replicates.of(payload["replicates"][key])


def models_for(center: float, tests: list[results.TestOutcome] | None = None) -> dict[str, ModelResult]:
    payload = {"keys": [KEY], "replicates": {KEY: list(np.linspace(center - 0.05, center + 0.05, 999))}}
    return {"m": ModelResult("m", metrics={KEY: center}, evidence={"sex": payload}, tests=tests or [])}


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("happened", "inconclusive", "gate_action"), list(POLICY))
def test_exit_policy(happened: str, inconclusive: str, gate_action: str, strict: bool) -> None:
    models = models_for(CENTERS[happened])
    gated = gating.run(
        [gating.parse_gate("demographic_parity_difference <= 0.1")],
        models,
        evidence="interval",
        inconclusive=inconclusive,
        gate_action=gate_action,
        strict=strict,  # strict is about what could not be checked: it leaves inconclusive alone
        distribution=replicates,
    )
    [result] = models["m"].gates
    assert result.outcome == happened
    assert (gated.exitstatus, models["m"].verdict) == POLICY[(happened, inconclusive, gate_action)]
    assert not gated.strict_failure
    assert [g.key for _, g in gated.inconclusive] == ([KEY] if happened == "inconclusive" else [])
    assert [g.key for _, g in gated.failed] == ([KEY] if happened == "fail" else [])
    assert gated.inconclusive_failure == (happened == "inconclusive" and inconclusive == "fail")


def test_a_failed_test_beats_an_inconclusive_gate_even_under_pass() -> None:
    models = models_for(CENTERS["inconclusive"], [results.TestOutcome("t.py::test", "failed")])
    gating.run([gating.parse_gate("demographic_parity_difference <= 0.1")], models, evidence="interval",
               inconclusive="pass", distribution=replicates)  # fmt: skip
    assert models["m"].verdict == "fail"


def test_interrupted_stays_interrupted() -> None:
    models = models_for(CENTERS["inconclusive"])
    models["m"].verdict = INTERRUPTED
    gating.run([gating.parse_gate("demographic_parity_difference <= 0.1")], models, evidence="interval",
               inconclusive="pass", distribution=replicates)  # fmt: skip
    assert models["m"].verdict == INTERRUPTED


def test_inconclusive_fail_keeps_statuses_other_than_success() -> None:
    gated = gating.run([gating.parse_gate("demographic_parity_difference <= 0.1")],
                       models_for(CENTERS["inconclusive"]), evidence="interval", inconclusive="fail",
                       distribution=replicates, exitstatus=3)  # fmt: skip
    assert gated.exitstatus == 3
