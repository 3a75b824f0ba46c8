"""Simulated sessions of interval gates on real evidence payloads (``metrics.evidence`` cells,
redrawn by ``distribution``): the family's false-fail rate under Holm, and its power.

Each simulated model is two groups of ``n`` rows whose confusion cells are drawn afresh; the
payload is what ``assess(n_boot=...)`` records, with the drawn cells. ``slow``: about a minute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from pytest_fairmind import gating
from pytest_fairmind.result import FAIL, GateResult, ModelResult

pytestmark = pytest.mark.slow

KEY = "sex/demographic_parity_difference"
GATE = "demographic_parity_difference <= 0.1"
GATES = 20


def template(n: int) -> dict[str, Any]:
    """The cells payload ``assess`` records for two groups of ``n`` rows (cells replaced per draw)."""
    from pytest_fairmind.metrics import assess

    rng = np.random.default_rng(0)
    groups = np.repeat(["a", "b"], n)
    y, pred = rng.integers(0, 2, 2 * n), rng.integers(0, 2, 2 * n)
    payload = assess(y, pred, sensitive_features={"sex": groups}, n_boot=400).evidence
    assert payload is not None and payload["kind"] == "cells" and KEY in payload["keys"]
    return payload


def draw_model(
    name: str, rates: Sequence[float], n: int, payload: dict[str, Any], rng: np.random.Generator
) -> ModelResult:
    """A model whose groups select at ``rates`` (labels independent, half positive)."""
    cells = [rng.multinomial(n, [0.5 * (1 - r), 0.5 * r, 0.5 * (1 - r), 0.5 * r]).tolist() for r in rates]
    selected = [(c[1] + c[3]) / sum(c) for c in cells]
    return ModelResult(
        name, metrics={KEY: max(selected) - min(selected)}, evidence={"sex": {**payload, "cells": cells}}
    )


def session(
    rates: Sequence[Sequence[float]],
    n: int,
    payload: dict[str, Any],
    rng: np.random.Generator,
    **options: Any,
) -> list[GateResult]:
    models = {f"m{i}": draw_model(f"m{i}", r, n, payload, rng) for i, r in enumerate(rates)}
    gating.run([gating.parse_gate(GATE)], models, evidence="interval", **options)
    return [m.gates[0] for m in models.values()]


def tolerance(rate: float, draws: int) -> float:
    """One-sided binomial tolerance: ``rate + 2.5 SE``."""
    return rate + 2.5 * math.sqrt(rate * (1 - rate) / draws)


def test_false_fail_rate_of_a_20_gate_session_at_the_bound_is_at_most_5_percent() -> None:
    """Every model exactly at its bound (the least favourable fair case: a difference of 0.1 with
    bound <= 0.1): a session with any ``fail`` is a false alarm. Holm keeps that at 5%."""
    n, sessions = 500, 400
    payload, rng = template(n), np.random.default_rng(20261202)
    at_bound = [(0.5, 0.4)] * GATES
    alarms = sum(any(g.outcome == FAIL for g in session(at_bound, n, payload, rng)) for _ in range(sessions))
    print(
        f"false-fail rate, {GATES} gates at the bound, Holm: {alarms / sessions:.3f} over {sessions} sessions"
    )
    assert alarms / sessions <= tolerance(0.05, sessions)


def test_without_adjustment_the_same_sessions_fail_often() -> None:
    """The guard above has teeth: unadjusted, 20 gates at the bound raise false alarms in most sessions."""
    n, sessions = 500, 100
    payload, rng = template(n), np.random.default_rng(7)
    at_bound = [(0.5, 0.4)] * GATES
    alarms = sum(
        any(g.outcome == FAIL for g in session(at_bound, n, payload, rng, multiple_testing="none"))
        for _ in range(sessions)
    )
    print(f"false-fail rate, {GATES} gates at the bound, no adjustment: {alarms / sessions:.2f}")
    assert alarms / sessions > 0.3  # about 1 - 0.95 ** 20 = 0.64


@pytest.mark.parametrize(("bound", "least"), [(0.1, 0.5), (0.05, 0.97)])
def test_power_on_a_planted_gap_of_0_15_at_2000_rows_per_group(bound: float, least: float) -> None:
    """One model with selection rates 0.5 and 0.35 among 19 fair ones (rates equal), n = 2000 per
    group: how often its gate fails. Normal approximation at Holm's 0.05 / 20: 0.67 for bound 0.1
    (a gap 0.05 past it), 1.00 for bound 0.05."""
    n, sessions = 2000, 200
    payload, rng = template(n), np.random.default_rng(15)
    rates = [(0.5, 0.35)] + [(0.4, 0.4)] * (GATES - 1)
    gate = f"demographic_parity_difference <= {bound}"
    caught = 0
    for _ in range(sessions):
        models = {f"m{i}": draw_model(f"m{i}", r, n, payload, rng) for i, r in enumerate(rates)}
        gating.run([gating.parse_gate(gate)], models, evidence="interval")
        caught += models["m0"].gates[0].outcome == FAIL
    print(
        f"power, planted gap 0.15, n=2000/group, bound {bound}, {GATES} gates Holm: {caught / sessions:.3f}"
    )
    assert caught / sessions >= least
